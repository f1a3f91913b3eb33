"""What a user would otherwise reach for: baseline interpretations, as listenable as L2I's.

Book: chapter "Evaluating interpretations". Every method here has the interface of
:meth:`l2i.Interpreter.explain`, ``explain(waveform, target=None, threshold=0.2) -> Explanation``,
and turns its attribution into a mask over the same log1p spectrogram ``X`` and into audio the same
way (``expm1(M * X)`` with the input's phase, inverse STFT), so :func:`l2i.metrics.evaluate` scores
them all alike:

* :class:`RandomComponents`: as many NMF components as L2I keeps, chosen at random (L2I's soft mask);
* :class:`Saliency`: ``|d f_c / d X|`` (Captum), the bins above ``threshold * max`` kept;
* :class:`IntegratedGradients`: Captum's IG from silence (``X = 0``), the positive attributions
  above ``threshold * max`` kept;
* :class:`SLIME`: LIME (or KernelSHAP) over a time x frequency grid of segments of ``X``, 1000
  samples as in audioLIME; the segments above ``threshold * max`` kept;
* :class:`IdealRatioMask`: for mixtures, the oracle ``|S_c| / sum_s |S_s|`` from the true sources
  (the upper bound; needs ``sources=``).

The gradient methods differentiate ``f`` through the inverse STFT: ``f(istft(expm1(X), phase))``.
The classifier is read in evaluation mode with its parameters frozen and left as it was.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from .audio import Spectrogram, as_batch
from .explanation import EPS, Analysis, Explanation, Units, check_binarize, check_threshold, explanation_from_mask, select, soft_mask
from .models import resolve_targets
from .reading import check_logits, frozen, logits_of

__all__ = ["RandomComponents", "Saliency", "IntegratedGradients", "SLIME", "IdealRatioMask", "methods"]



class _SpectrogramMethod:
    """Shared by the methods that read the classifier ``f`` on the log1p spectrogram ``X``.

    Parameters
    ----------
    classifier : nn.Module
        Waveforms ``(batch, samples)`` to logits ``(batch, classes)``.
    spectrogram : Spectrogram
        The ``X`` the mask lives on (use the interpreter's to compare with L2I).
    classes : tuple of str, optional
        Class names for display.
    """

    name = "baseline"
    needs_sources = False

    @property
    def family(self) -> str:
        return self.name

    def __init__(self, classifier: nn.Module, spectrogram: Spectrogram, classes: tuple[str, ...] | None = None):
        if not isinstance(classifier, nn.Module):
            raise TypeError(f"classifier must be an nn.Module (waveforms to logits), got {type(classifier).__name__}")
        if not isinstance(spectrogram, Spectrogram):
            raise TypeError(f"spectrogram must be an l2i.Spectrogram, got {type(spectrogram).__name__}")
        self.classifier, self.spectrogram, self.classes = classifier, spectrogram, classes

    @classmethod
    def from_interpreter(cls, interpreter, **kwargs):
        """The method on the interpreter's classifier, spectrogram and class names."""
        return cls(interpreter.classifier, interpreter.spectrogram, interpreter.classes, **kwargs)

    @property
    def device(self) -> torch.device:
        return next((p.device for p in self.classifier.parameters()), torch.device("cpu"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(classifier={type(self.classifier).__name__})"

    @torch.no_grad()
    def classify(self, waveform: Tensor) -> Tensor:
        """``f``'s logits ``(batch, classes)``, the classifier in evaluation mode."""
        x = as_batch(waveform).to(self.device)
        with frozen(self.classifier):
            logits = logits_of(self.classifier(x))
        check_logits(logits, x.shape[0])
        return logits

    def _logits_of_spectrogram(self, X: Tensor, phase: Tensor, length: int) -> Tensor:
        """``f(istft(expm1(X), phase))``, differentiable in ``X``; ``phase`` broadcasts over a batch."""
        if phase.shape[0] != X.shape[0]:
            phase = phase.expand(X.shape[0], -1, -1)
        return logits_of(self.classifier(self.spectrogram.synthesize(X, phase, length=length)))

    def _prepare(self, waveform: Tensor, target, threshold: float):
        check_threshold(threshold)
        x = as_batch(waveform).to(self.device)
        self.spectrogram.check_length(x)
        spectrogram = self.spectrogram.to(x.device)
        X, phase = spectrogram.analyze(x)
        logits = self.classify(x)
        return x, X, phase, logits, resolve_targets(target, logits)

    def _finish(self, x, X, phase, logits, mask, target, threshold, units: Units | None = None) -> Explanation:
        analysis = Analysis(x, X, phase, logits, self.spectrogram.to(x.device), self.classes)
        return explanation_from_mask(analysis, mask, target, threshold, self.name, units=units)


def _threshold_map(attribution: Tensor, threshold: float) -> Tensor:
    """Binary mask of the bins whose attribution exceeds ``threshold`` times the item's maximum."""
    peak = attribution.flatten(1).amax(dim=1).view(-1, 1, 1)
    return ((attribution > threshold * peak) & (peak > 0)).to(attribution.dtype)


class Saliency(_SpectrogramMethod):
    """Gradient saliency ``|d f_c(x) / d X|`` on the log1p spectrogram, through Captum.

    Book: chapter "Evaluating interpretations". ``explain`` keeps the bins whose saliency exceeds
    ``threshold`` times the clip's maximum (a binary mask on ``X``).
    """

    name = "Saliency"

    def attribute(self, X: Tensor, phase: Tensor, target: Tensor, length: int) -> Tensor:
        """Saliency ``(batch, freq, frames)`` for ``X``, ``phase`` of that shape and ``(batch,)`` targets."""
        from captum.attr import Saliency as CaptumSaliency

        method = CaptumSaliency(self._logits_of_spectrogram)
        with frozen(self.classifier), torch.enable_grad():
            X = X.detach().requires_grad_(True)
            return method.attribute(X, target=target, abs=True, additional_forward_args=(phase, length)).detach()

    def explain(self, waveform: Tensor, target=None, threshold: float = 0.2) -> Explanation:
        """Listenable saliency interpretations of ``(batch, samples)`` or ``(samples,)`` audio."""
        x, X, phase, logits, target = self._prepare(waveform, target, threshold)
        A = self.attribute(X, phase, target, x.shape[-1])
        return self._finish(x, X, phase, logits, _threshold_map(A, threshold), target, threshold)


class IntegratedGradients(_SpectrogramMethod):
    """Integrated Gradients on the log1p spectrogram from silence (``X = 0``), through Captum.

    Book: chapter "Evaluating interpretations". Positive attributions (evidence for the target)
    above ``threshold`` times the clip's maximum make the mask.

    Parameters
    ----------
    n_steps : int
        Points on the path from silence to ``X`` (Captum's default, 50).
    internal_batch_size : int
        Path points evaluated at once; lower it if memory is short.
    """

    name = "Integrated Gradients"

    def __init__(self, classifier, spectrogram, classes=None, n_steps: int = 50, internal_batch_size: int = 256):
        super().__init__(classifier, spectrogram, classes)
        if n_steps < 1:
            raise ValueError(f"n_steps must be at least 1, got {n_steps}")
        self.n_steps, self.internal_batch_size = int(n_steps), int(internal_batch_size)

    def attribute(self, X: Tensor, phase: Tensor, target: Tensor, length: int) -> Tensor:
        """IG attributions ``(batch, freq, frames)``; they sum to ``f_c(X) - f_c(0)`` per item."""
        from captum.attr import IntegratedGradients as CaptumIG

        method = CaptumIG(self._logits_of_spectrogram)
        with frozen(self.classifier), torch.enable_grad():
            A = method.attribute(
                X, baselines=torch.zeros_like(X), target=target, additional_forward_args=(phase, length),
                n_steps=self.n_steps, internal_batch_size=self.internal_batch_size,
            )
        return A.detach()

    def explain(self, waveform: Tensor, target=None, threshold: float = 0.2) -> Explanation:
        """Listenable IG interpretations of ``(batch, samples)`` or ``(samples,)`` audio."""
        x, X, phase, logits, target = self._prepare(waveform, target, threshold)
        A = self.attribute(X, phase, target, x.shape[-1]).clamp_min(0)
        return self._finish(x, X, phase, logits, _threshold_map(A, threshold), target, threshold)


class SLIME(_SpectrogramMethod):
    """SLIME-style occlusion: LIME weights of time x frequency segments of ``X`` (Captum).

    Book: chapter "Evaluating interpretations". ``X`` is cut into ``n_time`` x ``n_freq`` rectangles
    (equal frames, equal frequency bins); a perturbed input keeps a random subset of them and sets
    the others to silence (``X = 0``); a linear model fitted to ``f_c`` over ``n_samples`` such
    inputs weights each segment. The segments whose weight exceeds ``threshold`` times the largest
    (at most ``top_k``) make the mask.

    Parameters
    ----------
    n_time, n_freq : int
        The segment grid (SLIME's time-frequency segmentation).
    n_samples : int
        Perturbed inputs per clip: 1000 as in audioLIME. The cost of the method.
    method : {"lime", "kernelshap"}
        LIME with a ridge model (alpha 1, as the ``lime`` package) or Captum's KernelShap.
    batch_size : int
        Perturbed inputs evaluated at once.
    seed : int
        Seeds the perturbations of each call, so an explanation is reproducible.
    """

    name = "SLIME"

    def __init__(
        self, classifier, spectrogram, classes=None, n_time: int = 10, n_freq: int = 8, n_samples: int = 1000,
        method: str = "lime", batch_size: int = 100, seed: int = 0,
    ):
        super().__init__(classifier, spectrogram, classes)
        if method not in ("lime", "kernelshap"):
            raise ValueError(f"method must be 'lime' or 'kernelshap', got {method!r}")
        if min(n_time, n_freq) < 1 or n_samples < 2:
            raise ValueError("n_time and n_freq must be at least 1 and n_samples at least 2")
        if n_freq > spectrogram.n_freq:
            raise ValueError(f"n_freq={n_freq} is more bands than the spectrogram's {spectrogram.n_freq} bins")
        self.n_time, self.n_freq, self.n_samples = int(n_time), int(n_freq), int(n_samples)
        self.method, self.batch_size, self.seed = method, int(batch_size), int(seed)

    def segments(self, n_frames: int) -> Tensor:
        """Segment index of every bin, ``(freq, frames)`` long integers in ``[0, n_time * n_freq)``."""
        n_time = min(self.n_time, n_frames)
        band = torch.arange(self.spectrogram.n_freq) * self.n_freq // self.spectrogram.n_freq
        span = torch.arange(n_frames) * n_time // n_frames
        return band.unsqueeze(1) * n_time + span.unsqueeze(0)

    def attribute(self, X: Tensor, phase: Tensor, target: Tensor, length: int) -> Tensor:
        """Segment weights ``(batch, n_segments)`` of each item's target class, on ``X``'s device."""
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import KernelShap, Lime

        segments = self.segments(X.shape[-1]).to(X.device)
        weights = []
        # The seeding below must not move the caller's random streams, the GPU's included.
        gpus = [X.device] if X.device.type == "cuda" else []
        with frozen(self.classifier), torch.no_grad(), torch.random.fork_rng(devices=gpus):
            for i in range(X.shape[0]):
                torch.manual_seed(self.seed)  # the same perturbations for every clip and call
                forward = lambda Xb, i=i: self._logits_of_spectrogram(Xb, phase[i : i + 1], length)  # noqa: E731
                if self.method == "lime":
                    explainer = Lime(forward, interpretable_model=SkLearnRidge(alpha=1.0))
                else:
                    explainer = KernelShap(forward)
                a = explainer.attribute(
                    X[i : i + 1], baselines=0.0, target=int(target[i]), feature_mask=segments.unsqueeze(0),
                    n_samples=self.n_samples, perturbations_per_eval=self.batch_size, return_input_shape=False,
                )
                weights.append(a.reshape(-1).float())
        return torch.stack(weights).to(X.device)  # captum's linear model answers on the CPU

    def explain(self, waveform: Tensor, target=None, threshold: float = 0.2, top_k: int | None = None) -> Explanation:
        """Listenable SLIME interpretations of ``(batch, samples)`` or ``(samples,)`` audio."""
        x, X, phase, logits, target = self._prepare(waveform, target, threshold)
        weights = self.attribute(X, phase, target, x.shape[-1])
        rel, selected = select(weights, threshold, top_k)
        segments = self.segments(X.shape[-1]).to(X.device)
        mask = selected.to(X.dtype)[:, segments]  # (batch, freq, frames)
        return self._finish(x, X, phase, logits, mask, target, threshold, Units(rel, selected, "segment"))


class RandomComponents:
    """As many of the interpreter's NMF components as L2I keeps for the clip, chosen at random.

    Book: chapter "Evaluating interpretations". The control for L2I's choice of components: same
    dictionary, same activations ``H``, same soft mask and same count, only the choice is random.
    """

    name = "Random components"
    family = "Random components"
    needs_sources = False

    def __init__(self, interpreter, seed: int = 0):
        self.interpreter, self.seed = interpreter, int(seed)
        self.classify = interpreter.classify
        self._calls = 0

    def __repr__(self) -> str:
        return f"RandomComponents(K={self.interpreter.n_components}, seed={self.seed})"

    def explain(self, waveform: Tensor, target=None, threshold: float = 0.2, top_k: int | None = None) -> Explanation:
        """L2I's explanation with its components replaced by as many random ones.

        Calls are seeded by ``seed`` and a call counter: a fresh object repeats the same sequence.
        """
        e = self.interpreter.explain(waveform, target=target, threshold=threshold, top_k=top_k)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self._calls)
        self._calls += 1
        K = e.selected.shape[1]
        count = e.selected.sum(dim=1)
        rank = torch.rand(len(e), K, generator=generator).argsort(dim=1).argsort(dim=1)
        selected = rank < count.unsqueeze(1)
        relevance = selected.float()  # no ranking among the chosen
        mask = soft_mask(e.W, e.H, selected.to(e.H.dtype))
        analysis = Analysis(e.waveform, e.X, e.phase, e.logits, e.spectrogram, e.classes)
        return explanation_from_mask(analysis, mask, e.target, threshold, self.name,
                                     units=Units(relevance, selected, "component", e.H, e.W))


class IdealRatioMask(_SpectrogramMethod):
    """The oracle for mixtures: ``M_c = sum_{s in c} |S_s| / sum_s |S_s|`` from the true sources.

    Book: chapter "Evaluating interpretations". Not an interpretation of ``f``: the best a mask on
    the mixture can do for a class, given the sources, the upper bound of the SI-SDR columns. The
    ratio is applied to the linear magnitude; the Explanation's ``mask`` is its equivalent on the
    log1p ``X`` (``log1p(M_c |Y|) / X``), so audio is made exactly as for the other methods. A class
    absent from the sources (the classifier decided for a class that is not in the mixture) has
    nothing to explain.
    """

    name = "Oracle IRM"
    needs_sources = True

    def explain(
        self, waveform: Tensor, target=None, threshold: float = 0.2, *, sources: Tensor | None = None,
        source_labels: Tensor | None = None,
    ) -> Explanation:
        """Parameters: ``waveform`` (batch, samples) mixtures; ``sources`` (batch, n_sources,
        samples) that sum to them; ``source_labels`` (batch, n_sources) their classes (-1 for noise).
        ``threshold`` is unused (the mask is not thresholded) and kept for the common interface."""
        if sources is None or source_labels is None:
            raise ValueError("the oracle needs the mixture's true sources: explain(mixtures, sources=(batch, n_sources, "
                             "samples), source_labels=(batch, n_sources)), as l2i.datasets.Mixtures items hold them")
        x, X, phase, logits, target = self._prepare(waveform, target, threshold)
        sources = torch.as_tensor(sources).to(x.device)
        labels = torch.as_tensor(source_labels).to(x.device).long()
        if sources.ndim != 3 or sources.shape[0] != x.shape[0] or sources.shape[-1] != x.shape[-1]:
            raise ValueError(
                f"sources must be (batch, n_sources, samples) = ({x.shape[0]}, S, {x.shape[-1]}), "
                f"got {tuple(sources.shape)}"
            )
        if labels.shape != sources.shape[:2]:
            raise ValueError(f"source_labels must be (batch, n_sources) = {tuple(sources.shape[:2])}, got {tuple(labels.shape)}")
        spec = self.spectrogram.to(x.device)
        magnitudes = torch.stack([torch.expm1(spec.analyze(sources[:, s])[0]) for s in range(sources.shape[1])], 1)
        wanted = (labels == target.unsqueeze(1)).to(magnitudes.dtype).view(*labels.shape, 1, 1)
        ratio = (wanted * magnitudes).sum(1) / magnitudes.sum(1).clamp_min(EPS)
        mask = torch.log1p(ratio * torch.expm1(X)) / X.clamp_min(EPS)
        return self._finish(x, X, phase, logits, mask, target, threshold)


def methods(
    interpreter,
    input_fidelity=None,
    slime_samples: int = 1000,
    seed: int = 0,
    magnitude: bool = True,
    output_fidelity=None,
    binarize: float | None = None,
    lmac=None,
    slime: bool = True,
    ig_steps: int = 50,
) -> dict:
    """``{name: explainer}`` (:class:`l2i.explainers.Explainer`) for the comparison of the book and
    the benchmark, on one classifier.

    Book: chapter "Evaluating interpretations". ``interpreter`` is L2I; ``input_fidelity`` an
    optional second interpreter trained with the input-fidelity term. ``magnitude`` adds each
    interpreter again with its mask applied to the linear magnitude (``domain="magnitude"``, see
    :mod:`l2i.explanation`), named "..., magnitude mask". ``output_fidelity``, an optional third
    interpreter trained with the input and output terms (``Interpreter.fit(lam_out=...)``), is
    listed with its mask on the magnitude only, as "L2I + input/output fidelity, magnitude mask".
    ``binarize``, a share in (0, 1], adds the last interpreter given (output, else input fidelity,
    else L2I) again with a binary mask (``explain(..., binarize=...)``), named "..., binary mask".
    ``lmac``, a trained :class:`l2i.lmac.LMAC` on the same classifier, is listed as "L-MAC";
    ``slime=False`` leaves SLIME out (to run it on a subset of the items); ``ig_steps``: Integrated
    Gradients' steps along the path. Every baseline reads the interpreter's classifier and spectrogram.
    """
    check_binarize(binarize)
    interpreters = [interpreter] + ([input_fidelity] if input_fidelity is not None else [])
    listed = [i.explainer() for i in interpreters]
    if magnitude:
        listed += [i.explainer("magnitude") for i in interpreters]
    if output_fidelity is not None:
        listed.append(output_fidelity.explainer("magnitude"))
        interpreters.append(output_fidelity)
    if binarize is not None:  # a binary mask is the same in both domains (see l2i.explanation)
        listed.append(interpreters[-1].explainer(binarize=binarize))
    if lmac is not None:
        listed.append(lmac)
    listed += [RandomComponents(interpreter, seed=seed), Saliency.from_interpreter(interpreter),
               IntegratedGradients.from_interpreter(interpreter, n_steps=ig_steps)]
    if slime:
        listed.append(SLIME.from_interpreter(interpreter, n_samples=slime_samples, seed=seed))
    listed.append(IdealRatioMask.from_interpreter(interpreter))
    out = {}
    for method in listed:
        if method.name in out:
            raise ValueError(f"two methods are named {method.name!r}: the interpreters given were trained the same way")
        out[method.name] = method
    return out
