"""Listenable interpretations: what :meth:`Interpreter.explain` returns.

Book: chapter "Listening to interpretations". For a target class ``c`` (the classifier's decision
by default):

1. relevance ``r_k = z_k * theta_{c,k}`` with ``z`` the time-pooled activations, normalised by its
   maximum;
2. the components ``L = {k : r_k > threshold}`` (optionally only the ``top_k`` most relevant);
3. the soft mask ``M = (W_L H_L) / (W H + eps)`` and the interpretation spectrogram ``M * X``;
4. the interpretation audio: ``expm1(M * X)`` with the input's phase, inverse STFT.

Beyond the original, ``domain="magnitude"`` applies the same mask to the linear magnitude instead
(``M |S|``, as a ratio mask is used in source separation; ``log1p(M |S|)`` is then the
interpretation spectrogram). In the log1p domain a share ``M`` of a bin keeps ``(1 + |S|)^M - 1``:
a bin half explained by the kept components is played 20 dB down when ``|S|`` is 100, so the
interpretation of a source that shares its bins with another comes out quieter and thinner than the
source. Binary masks are the same in both domains. Chapter "Evaluating interpretations" measures both.

Also beyond the original, ``binarize=c`` turns the soft mask into a binary one: a bin is kept whole
where the kept components explain at least a share ``c`` of it (``M >= c``) and removed elsewhere,
as occlusion methods such as SLIME remove whole segments. A soft mask leaves part of every bin it
touches in the residual, so removing the interpretation changes the decision less (lower FF);
``benchmarks/binary_mask.py`` measures the trade against SI-SDR on validation data.

The residual is the input minus the interpretation audio (the linear-magnitude complement with the
same phase), so ``interpretation + residual == input``.

The baselines of :mod:`l2i.baselines` return the same object, built from their own mask by
:func:`explanation_from_mask`; their "units" are NMF components, time-frequency segments or none.
"""

from __future__ import annotations

import html
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .audio import Spectrogram

__all__ = [
    "EPS", "MASK_DOMAINS", "Analysis", "Explanation", "Units", "apply_mask", "binary_mask", "check_binarize", "check_domain",
    "check_threshold", "explanation_from_mask", "select", "soft_mask",
]

EPS = 1e-8
"""The floor of every ratio of magnitudes l2i divides (masks, relevances)."""
MASK_DOMAINS = ("log1p", "magnitude")


def soft_mask(W: Tensor, H: Tensor, weights: Tensor) -> Tensor:
    """``M = W (w * H) / (W H + eps)``, the share of each bin that the weighted components explain.

    Shapes: ``W`` (freq, K), ``H`` (..., K, frames), ``weights`` (..., K) in [0, 1] (1 for the
    selected components); returns (..., freq, frames) in [0, 1].
    """
    return (W @ (weights.unsqueeze(-1) * H)) / (W @ H + EPS)


def check_binarize(binarize: float | None) -> None:
    """Raise unless ``binarize`` is None (a soft mask) or a share in (0, 1]."""
    if binarize is not None and not 0 < binarize <= 1:
        raise ValueError(
            f"binarize is the share of a bin the kept components must explain for the bin to be kept, "
            f"in (0, 1], or None for the soft mask; got {binarize}"
        )


def binary_mask(mask: Tensor, binarize: float | None) -> Tensor:
    """``1`` where ``mask >= binarize``, else ``0`` (same shape and dtype); ``mask`` itself when
    ``binarize`` is None."""
    check_binarize(binarize)
    return mask if binarize is None else (mask >= binarize).to(mask.dtype)


def check_domain(domain: str) -> None:
    """Raise unless ``domain`` is one of :data:`MASK_DOMAINS`."""
    if domain not in MASK_DOMAINS:
        raise ValueError(f"domain must be one of {MASK_DOMAINS} (where the mask is applied), got {domain!r}")


def apply_mask(X: Tensor, mask: Tensor, domain: str = "log1p") -> Tensor:
    """The interpretation spectrogram (log1p magnitude) of a mask in [0, 1] on ``X``.

    ``"log1p"``: ``mask * X``, the method's step 3. ``"magnitude"``: ``log1p(mask * expm1(X))``, the
    mask on the linear magnitude ``|S| = expm1(X)``. Shapes: ``X`` and ``mask`` (..., freq, frames).
    """
    check_domain(domain)
    if domain == "log1p":
        return mask * X
    return torch.log1p(mask * torch.expm1(X))


@dataclass
class Explanation:
    """A batch of listenable interpretations. Tensors are on the CPU; ``B`` is the batch size.

    Attributes
    ----------
    waveform : (B, samples)  the inputs
    sample_rate : int
    target : (B,)  explained class
    decision : (B,)  the classifier's argmax
    logits : (B, classes)  of ``f``
    interpreter_logits : (B, classes)  of ``Theta(H)``; None for methods without an interpreter
    relevance : (B, K)  ``r / max(r)`` for the target over the method's K units (NMF components
        for L2I; K = 0 for methods that score bins, not units); 0 for silent clips
    selected : (B, K)  bool, the units kept
    H : (B, K, frames)  activations; None for methods without a dictionary
    X, phase : (B, freq, frames)  input log1p magnitude and phase
    mask : (B, freq, frames)  soft mask in [0, 1] (0 or 1 where ``binarize`` is set)
    X_in : (B, freq, frames)  the interpretation's log1p magnitude, ``apply_mask(X, mask, domain)``
        (``mask * X`` by default)
    audio : (B, samples)  the interpretation, listenable
    residual : (B, samples)  input minus interpretation
    silent : (B,)  bool, True where there was nothing to explain (silent input or no positive
        relevance); those items have an empty selection and silent audio
    threshold : float
    W : (freq, K)  the dictionary; None for methods without one
    spectrogram : Spectrogram  the front end of ``X`` (and of the audio)
    classes : tuple of str, optional  class names
    method : str  who made it ("L2I", or a baseline's name)
    unit : str  what ``relevance`` scores ("component", "segment")
    domain : str  where the mask was applied: "log1p" (the method) or "magnitude"
    binarize : float, optional  the share of a bin at or above which a binary mask keeps it; None for a
        soft mask
    """

    waveform: Tensor
    sample_rate: int
    target: Tensor
    decision: Tensor
    logits: Tensor
    interpreter_logits: Tensor | None
    relevance: Tensor
    selected: Tensor
    H: Tensor | None
    X: Tensor
    phase: Tensor
    mask: Tensor
    X_in: Tensor
    audio: Tensor
    residual: Tensor
    silent: Tensor
    threshold: float
    W: Tensor | None
    spectrogram: Spectrogram
    classes: tuple[str, ...] | None = None
    method: str = "L2I"
    unit: str = "component"
    domain: str = "log1p"
    binarize: float | None = None

    def __len__(self) -> int:
        return self.waveform.shape[0]

    def __repr__(self) -> str:
        targets = ", ".join(self.class_name(t) for t in self.target[:4].tolist())
        more = ", ..." if len(self) > 4 else ""
        return (
            f"Explanation(method={self.method!r}, batch={len(self)}, targets=[{targets}{more}], "
            f"threshold={self.threshold:g}, "
            + (f"{self.unit}s kept={self.selected.sum(1).tolist()[:4]}{more}, " if self.selected.shape[1] else
               f"mask mean={[round(float(m), 3) for m in self.mask.flatten(1).mean(1)[:4]]}{more}, ")
            + (f"domain={self.domain!r}, " if self.domain != "log1p" else "")
            + (f"binarize={self.binarize:g}, " if self.binarize is not None else "")
            + f"sample_rate={self.sample_rate})"
        )

    def __getitem__(self, index: int) -> Explanation:
        """The ``index``-th item as an Explanation of batch size 1."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} explanations")
        sl = slice(index, index + 1) if index >= 0 else slice(len(self) + index, len(self) + index + 1)
        fields = {k: (v[sl] if isinstance(v, Tensor) and k != "W" else v) for k, v in self.__dict__.items()}
        return Explanation(**fields)

    def class_name(self, c: int) -> str:
        return self.classes[c] if self.classes else str(int(c))

    def components(self, index: int = 0) -> list[int]:
        """Indices of the selected components of item ``index``, most relevant first."""
        sel = self.selected[index].nonzero().flatten()
        return sel[self.relevance[index, sel].argsort(descending=True)].tolist()

    def component_audio(self, k: int, index: int = 0) -> Tensor:
        """Audio of component ``k`` alone in item ``index``: mask ``W_k H_k / (W H)`` on the input,
        in the explanation's ``domain``. Always the component's soft share, even in a binarized
        explanation: one component alone seldom explains most of a bin."""
        if self.W is None or self.H is None:
            raise ValueError(f"{self.method} explanations have no NMF components to play one by one")
        if not 0 <= k < self.W.shape[1]:
            raise ValueError(f"component {k} is outside the dictionary's {self.W.shape[1]} components")
        weights = torch.zeros(self.W.shape[1])
        weights[k] = 1.0
        mask = soft_mask(self.W, self.H[index], weights)
        interp = apply_mask(self.X[index], mask, self.domain)
        return self.spectrogram.synthesize(interp, self.phase[index], length=self.waveform.shape[-1])

    def plot(self, index: int = 0, n_components: int = 3):
        """Input, interpretation and relevances of item ``index`` (see :func:`l2i.plotting.plot_explanation`)."""
        from .plotting import plot_explanation

        return plot_explanation(self, index, n_components=n_components)

    def players(self, index: int = 0, n_components: int = 3):
        """Players for the input, the interpretation, the residual and the top components."""
        from .widgets import players

        clips = {
            "input": self.waveform[index],
            f"interpretation ({self.class_name(self.target[index])})": self.audio[index],
            "residual": self.residual[index],
        }
        for k in self.components(index)[:n_components] if self.W is not None else []:
            clips[f"component {k} (r={self.relevance[index, k]:.2f})"] = self.component_audio(k, index)
        return players(clips, self.sample_rate, columns=3)

    def save(self, folder: str | os.PathLike, n_components: int = 3, overwrite: bool = False) -> list[Path]:
        """Write every item as 16-bit WAV files in ``folder``, for listening outside a notebook.

        Item ``i`` gives ``{i}_input.wav``, ``{i}_interpretation_{class}.wav``, ``{i}_residual.wav``
        and, for methods with NMF components, its ``n_components`` most relevant ones,
        ``{i}_component_{k}.wav``, at the explanation's sample rate and loudness: clips are not
        normalised one by one; where one of an item's clips peaks above 1, all of that item's are
        scaled by the same factor (with a warning), as :func:`l2i.widgets.players` does. Existing
        files are refused unless ``overwrite=True``: the names are checked before anything is
        written, and each file is written whole or not at all. Book: chapter "Listening to
        interpretations".

        Returns
        -------
        list of Path
            The files written, item by item.
        """
        from .audio import save

        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 0:
            raise ValueError(f"n_components is how many of each item's components to write, 0 or more; got {n_components!r}")
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file: give Explanation.save a folder to write the WAV files in")
        clips = {}
        for i in range(len(self)):
            name = re.sub(r"[^A-Za-z0-9]+", "-", self.class_name(self.target[i])).strip("-") or str(int(self.target[i]))
            item = {f"{i}_input.wav": self.waveform[i], f"{i}_interpretation_{name}.wav": self.audio[i],
                    f"{i}_residual.wav": self.residual[i]}
            for k in self.components(i)[:n_components] if self.W is not None else []:
                item[f"{i}_component_{k}.wav"] = self.component_audio(k, i)
            peak = max(float(c.abs().max()) for c in item.values())
            if peak > 1:
                warnings.warn(f"item {i}'s clips peak at {peak:.2f}: all of them scaled by {1 / peak:.2f} to fit [-1, 1]")
                item = {n: c / peak for n, c in item.items()}
            clips.update(item)
        existing = [n for n in clips if (folder / n).exists()]
        if existing and not overwrite:
            raise FileExistsError(
                f"{folder / existing[0]} exists ({len(existing)} of the {len(clips)} files would be replaced): "
                "pass overwrite=True or another folder"
            )
        folder.mkdir(parents=True, exist_ok=True)
        return [save(folder / n, clip, self.sample_rate) for n, clip in clips.items()]

    def summary(self, index: int = 0) -> str:
        """One line: target, decision, interpreter's agreement, components kept."""
        t, d = int(self.target[index]), int(self.decision[index])
        if bool(self.silent[index]):
            return f"{self.class_name(t)}: nothing to explain (silent input or nothing relevant)"
        decided = f"classifier: {self.class_name(d)}"
        if self.interpreter_logits is not None:
            agree = int(self.interpreter_logits[index].argmax()) == d
            decided += f"; interpreter {'agrees' if agree else 'disagrees'}"
        kept = f"mask over {float((self.mask[index] > 0.5).double().mean()):.0%} of the bins"
        n = int(self.selected[index].sum())
        if self.relevance.shape[1]:
            kept = f"{n} {self.unit}{'' if n == 1 else 's'} above {self.threshold:g}: {self.components(index)}"
        method = "" if self.method == "L2I" else f"{self.method}: "
        return f"{method}target {self.class_name(t)} ({decided}), {kept}"

    def _repr_html_(self) -> str:
        items = []
        for i in range(min(len(self), 4)):
            items.append(
                f'<div style="margin:6px 0"><div style="font:13px sans-serif">{html.escape(self.summary(i))}</div>'
                f"{self.players(i)._repr_html_()}</div>"
            )
        more = f'<div style="font:12px sans-serif">... and {len(self) - 4} more</div>' if len(self) > 4 else ""
        return "".join(items) + more


def check_threshold(threshold: float) -> None:
    """Raise unless ``threshold`` (on relevances normalised to a maximum of 1) is in [0, 1)."""
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")


def select(relevance: Tensor, threshold: float, top_k: int | None = None) -> tuple[Tensor, Tensor]:
    """Normalise ``(batch, K)`` relevances by their maximum (negatives to 0) and keep those above
    ``threshold``, at most ``top_k``; returns ``(relevance, selected)``. All-zero where no unit
    has positive relevance."""
    r_max = relevance.amax(dim=1, keepdim=True)
    rel = torch.where(r_max > 0, relevance / r_max.clamp_min(EPS), torch.zeros_like(relevance)).clamp_min(0)
    selected = rel > threshold
    if top_k is not None:
        rank = rel.argsort(dim=1, descending=True).argsort(dim=1)
        selected &= rank < top_k
    return rel, selected


@dataclass
class Analysis:
    """What every method computes of its input before its mask.

    ``waveform`` (B, samples); ``X``, ``phase`` (B, freq, frames) of ``spectrogram``; ``logits``
    (B, classes), the classifier's; ``classes``, the class names (optional)."""

    waveform: Tensor
    X: Tensor
    phase: Tensor
    logits: Tensor
    spectrogram: Spectrogram
    classes: tuple[str, ...] | None = None

    @classmethod
    def of(cls, waveform: Tensor, spectrogram: Spectrogram, logits: Tensor, classes=None) -> Analysis:
        X, phase = spectrogram.analyze(waveform)
        return cls(waveform, X, phase, logits, spectrogram, classes)


@dataclass
class Units:
    """What a method scores, where it scores units: ``relevance`` and ``selected`` (B, K) over its
    ``unit`` ("component", "segment"), and for NMF components ``H`` (B, K, frames) and ``W``."""

    relevance: Tensor
    selected: Tensor
    unit: str = "component"
    H: Tensor | None = None
    W: Tensor | None = None


def explanation_from_mask(
    analysis: Analysis,
    mask: Tensor,
    target: Tensor,
    threshold: float,
    method: str,
    domain: str = "log1p",
    binarize: float | None = None,
    units: Units | None = None,
    interpreter_logits: Tensor | None = None,
) -> Explanation:
    """An :class:`Explanation` from a mask in [0, 1] over the spectrogram (step 4 onwards).

    Shapes: ``mask`` (B, freq, frames); ``target`` (B,). ``domain``: where the mask is applied
    (:func:`apply_mask`); ``binarize``: recorded, the share that made ``mask`` binary
    (:func:`binary_mask`), if one did; ``units``: what the method scored, if units. Items whose
    input is silent or whose mask is empty are marked ``silent`` ("nothing to explain") and get
    silent audio.
    """
    waveform, X, phase, logits, spectrogram = analysis.waveform, analysis.X, analysis.phase, analysis.logits, analysis.spectrogram
    B = waveform.shape[0]
    units = units or Units(torch.zeros(B, 0, device=X.device), torch.zeros(B, 0, dtype=torch.bool, device=X.device), "bin")
    relevance, selected, H, W = units.relevance, units.selected, units.H, units.W
    check_domain(domain)
    mask = mask.clamp(0, 1)
    nothing = X.flatten(1).amax(dim=1) <= 1e-6  # a silent input: no unit is relevant
    if relevance.shape[1]:
        nothing |= ~selected.any(dim=1)
    relevance = torch.where(nothing.unsqueeze(1), torch.zeros_like(relevance), relevance)
    selected = selected & ~nothing.unsqueeze(1)
    # Units kept whose mask is empty (components inactive in this clip) also leave nothing to hear.
    silent = nothing | (mask.flatten(1).amax(dim=1) <= 0)
    mask = torch.where(silent.view(-1, 1, 1), torch.zeros_like(mask), mask)
    interp = apply_mask(X, mask, domain)
    audio = spectrogram.synthesize(interp, phase, length=waveform.shape[-1])
    audio = torch.where(silent.unsqueeze(1), torch.zeros_like(audio), audio)
    cpu = lambda t: None if t is None else t.detach().cpu()  # noqa: E731
    return Explanation(
        waveform=cpu(waveform),
        sample_rate=spectrogram.sample_rate,
        target=cpu(target),
        decision=cpu(logits.argmax(dim=1)),
        logits=cpu(logits),
        interpreter_logits=cpu(interpreter_logits),
        relevance=cpu(relevance),
        selected=cpu(selected),
        H=cpu(H),
        X=cpu(X),
        phase=cpu(phase),
        mask=cpu(mask),
        X_in=cpu(interp),
        audio=cpu(audio),
        residual=cpu(waveform - audio),
        silent=cpu(silent),
        threshold=float(threshold),
        W=cpu(W),
        spectrogram=Spectrogram(**spectrogram.config()),
        classes=analysis.classes,
        method=method,
        unit=units.unit,
        domain=domain,
        binarize=binarize,
    )
