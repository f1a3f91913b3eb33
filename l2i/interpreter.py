"""The L2I interpreter: from a classifier's hidden layers to activations of a fixed dictionary.

Book: chapter "Training the interpreter". ``Psi`` reads the hidden activations of the classifier
``f`` (forward hooks on named layers) and predicts ``H >= 0`` (K x frames) for the dictionary ``W``
learnt by NMF; ``Theta`` pools ``H`` over time (attention) and maps it to the classes with a
bias-free linear layer. Training makes ``W H`` reconstruct the input's log1p spectrogram and
``Theta(H)`` mimic ``f``'s decision.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from . import distributed
from .audio import Spectrogram, as_batch
from .datasets import collate
from .explanation import (
    Analysis, Explanation, Units, apply_mask, binary_mask, check_binarize, check_domain, check_threshold,
    explanation_from_mask, select, soft_mask,
)
from .losses import (
    fidelity_loss, input_fidelity_loss, output_fidelity_loss, reconstruction_loss, removal_loss, soft_selection, sparsity_loss,
)
from .models import resolve_targets
from .networks import Psi, Theta
from .nmf import NMF
from .persistence import load_model, save_model
from .reading import Layer, ReadsClassifier, frozen, logits_of
from .training import History, finite_gradient

__all__ = ["Interpreter", "hidden_layers", "removal_loss"]

_FORMAT = "l2i.interpreter"
_FORMAT_VERSION = 3


def hidden_layers(model: nn.Module) -> list[str]:
    """Names of the sub-modules of ``model`` that can be hooked (``model.named_modules()``)."""
    return [name for name, _ in model.named_modules() if name]


# What Interpreter.fit records per epoch: the mean loss and its terms, then validation.
HISTORY = ("loss", "reconstruction", "fidelity_loss", "sparsity", "input_fidelity_loss", "output_fidelity_loss",
           "val_fidelity", "val_reconstruction")


class Interpreter(ReadsClassifier):
    """Listen to Interpret: an interpreter for a trained audio classifier.

    Book: chapters "Training the interpreter" and "Listening to interpretations".

    Parameters
    ----------
    classifier : nn.Module
        Waveforms ``(batch, samples)`` to logits ``(batch, classes)``. It is never changed: it is
        used in evaluation mode with gradients off, hooks are attached only during each call and
        removed after, and its parameters are not part of the interpreter's.
    layers : list of str or l2i.reading.Layer
        The classifier's sub-modules to read (:func:`l2i.reading.describe_layers` lists every one
        with its shape and the layout found). Each layer's batch and time axes are found by dry runs
        and every layer is read as ``(batch, features, time)``; where they cannot be found (a model
        that pads every clip to one length, patch tokens), a clear error says how to declare them
        with :class:`l2i.reading.Layer`.
    dictionary : NMF or Tensor
        A fitted :class:`l2i.nmf.NMF` or a ``(freq, K)`` non-negative matrix ``W``.
    spectrogram : Spectrogram, optional
        Front end of ``X``; by default the one the dictionary was learnt with. Both must agree.
    n_classes : int, optional
        Checked against the classifier's output (found by a dry run otherwise).
    multilabel : bool
        Mimic ``sigmoid(f)`` with binary cross-entropy instead of ``softmax(f)``.
    hidden : int
        Width of Psi.
    example_length : int, optional
        Length in samples of the dry runs' clips (default: one second; the longer one is 1.5 times
        that). Once built, the interpreter takes clips of any length the classifier accepts.
    """

    family = "L2I"
    needs_sources = False

    def __init__(
        self,
        classifier: nn.Module,
        layers: list[str],
        dictionary: NMF | Tensor,
        spectrogram: Spectrogram | None = None,
        n_classes: int | None = None,
        multilabel: bool = False,
        hidden: int = 64,
        example_length: int | None = None,
        classes: tuple[str, ...] | None = None,
    ):
        if not isinstance(classifier, nn.Module):
            raise ValueError(f"classifier must be a torch.nn.Module, got {type(classifier).__name__}")
        W, learnt = _dictionary_matrix(dictionary)
        super().__init__(classifier, layers, _matching_spectrogram(spectrogram, learnt, W), example_length, classes)
        self.multilabel = bool(multilabel)
        self.register_buffer("W", W.clone().float())
        if n_classes is not None and self.n_classes != n_classes:
            raise ValueError(f"the classifier returns {self.n_classes} logits but n_classes={n_classes}")
        self.hidden = int(hidden)
        self.psi = Psi(self.layouts, self.n_components, self.hidden)
        self.objective = {"lam_in": 0.0, "lam_out": 0.0}  # the extra terms it was trained with (fit)
        self.theta = Theta(self.n_components, self.n_classes)
        self.history = History(*HISTORY)

    @property
    def n_components(self) -> int:
        return self.W.shape[1]

    @property
    def name(self) -> str:
        """"L2I", "L2I + input fidelity" or "L2I + input/output fidelity": the terms it was trained with."""
        if self.objective.get("lam_out", 0) > 0:
            return "L2I + input/output fidelity"
        return "L2I + input fidelity" if self.objective.get("lam_in", 0) > 0 else "L2I"

    def explainer(self, domain: str = "log1p", binarize: float | None = None):
        """This interpreter with its masks rendered one way, as an :class:`l2i.explainers.L2IExplainer`."""
        from .explainers import L2IExplainer

        return L2IExplainer(self, domain, binarize)

    # ------------------------------------------------------------------ forward
    def activations(self, waveform: Tensor, X: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``H`` (batch, K, frames), the classifier's logits and ``X``, for ``(batch, samples)``."""
        self._follow_classifier()
        waveform = waveform.to(self.device)
        if X is None:
            X = self.spectrogram(waveform)
        with torch.no_grad():
            logits, acts = self.classify(waveform, hidden=True)
        H = self.psi([a.detach() for a in acts], X.shape[-1])
        return H, logits, X

    def forward(self, waveform: Tensor) -> Tensor:
        """Theta(Psi(hidden(x))): the interpreter's logits ``(batch, classes)``."""
        waveform = as_batch(waveform)
        H, _, _ = self.activations(waveform)
        return self.theta(H)

    def relevance(self, H: Tensor, target: Tensor) -> Tensor:
        """``r_k = z_k * theta_{c,k}`` for each item's target class: ``(batch, K)``."""
        z = self.theta.pool(H)
        return z * self.theta.linear.weight[target]

    def soft_mask(self, H: Tensor, weights: Tensor) -> Tensor:
        """``M = W (w * H) / (W H + eps)`` with this interpreter's dictionary (see
        :func:`l2i.explanation.soft_mask`)."""
        return soft_mask(self.W, H, weights)

    # ------------------------------------------------------------------ explaining
    @torch.no_grad()
    def explain(
        self,
        waveform: Tensor,
        target: int | list[int] | Tensor | None = None,
        threshold: float = 0.2,
        top_k: int | None = None,
        sample_rate: int | None = None,
        domain: str = "log1p",
        binarize: float | None = None,
    ) -> Explanation:
        """Listenable interpretations of the classifier's decisions on ``waveform``.

        Parameters
        ----------
        waveform : Tensor
            ``(samples,)`` or ``(batch, samples)`` at the interpreter's sample rate.
        target : int, sequence or Tensor, optional
            Class to explain per item (default: the classifier's decision, ``argmax f(x)``).
        threshold : float
            Keep the components whose normalised relevance exceeds it (0.2 in the original).
        top_k : int, optional
            Keep at most this many of them.
        sample_rate : int, optional
            The waveform's rate, checked against the interpreter's.
        domain : {"log1p", "magnitude"}
            Where the mask is applied: on the log1p spectrogram as in the original method, or on
            the linear magnitude (see :mod:`l2i.explanation`).
        binarize : float, optional
            Make the mask binary: keep a bin whole where the kept components explain at least this
            share of it, remove it elsewhere (see :mod:`l2i.explanation`). None: the soft mask.

        Returns
        -------
        Explanation
            Batched; see :mod:`l2i.explanation`. Book: chapter "Listening to interpretations".
        """
        check_threshold(threshold)
        check_domain(domain)
        check_binarize(binarize)
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if sample_rate is not None:
            self._check_rate(sample_rate)
        x = as_batch(waveform)
        self.spectrogram.check_length(x)
        self._follow_classifier()
        x = x.to(self.device)
        was_training = self.training
        self.eval()
        try:
            analysis = Analysis.of(x, self.spectrogram, None, self.classes)
            H, analysis.logits, _ = self.activations(x, analysis.X)
            out = self.theta(H)
        finally:
            self.train(was_training)
        target = resolve_targets(target, analysis.logits)
        relevance, selected = select(self.relevance(H, target), threshold, top_k)
        mask = binary_mask(self.soft_mask(H, selected.to(H.dtype)).clamp(0, 1), binarize)
        return explanation_from_mask(analysis, mask, target, threshold, "L2I", domain, binarize,
                                     Units(relevance, selected, "component", H, self.W), interpreter_logits=out)

    # ------------------------------------------------------------------ training
    def fit(
        self,
        train: Dataset,
        val: Dataset,
        epochs: int = 35,
        batch_size: int = 32,
        lr: float = 2e-4,
        lam_rec: float = 5.0,
        lam_fid: float = 1.0,
        lam_fid_start: float = 0.5,
        ramp_epoch: int | None = None,
        lam_spa: float = 0.4,
        lam_in: float = 0.0,
        lam_out: float = 0.0,
        domain: str = "log1p",
        threshold: float = 0.2,
        augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        temperature: float = 1.0,
        seed: int = 0,
        progress: bool = True,
        on_epoch: Callable[[int, "Interpreter", History], None] | None = None,
    ) -> History:
        """Train Psi and Theta; keep the epoch with the best validation fidelity.

        Loss per batch: ``lam_rec * mean((X - WH)^2) + lam_fid * L_fid + lam_spa * mean|H|``
        ``(+ lam_in * L_in + lam_out * L_out)``. ``L_fid`` is the cross-entropy of ``softmax(Theta(H))`` against
        ``softmax(f(x))`` (binary cross-entropy against ``sigmoid(f(x))`` when multi-label).
        ``lam_fid`` is ``lam_fid_start`` until ``ramp_epoch`` (19 of 35 in the original, the same
        share of ``epochs`` by default), then ``lam_fid``. ``temperature`` ``T`` > 1 softens both sides
        of ``L_fid`` (``Theta(H) / T`` against ``f(x) / T``, the loss scaled by ``T^2``), as in
        knowledge distillation: Theta then learns how ``f`` ranks the other classes too, not only
        its top class; 1 (the default) is the original loss.

        ``lam_in > 0`` adds the input-fidelity term, beyond the original method: the soft-masked
        interpretation (components weighted by a sigmoid of their normalised relevance around
        ``threshold``), turned back into audio and passed through ``f``, should keep ``f``'s
        decision (cross-entropy to ``argmax f(x)``). ``lam_out > 0`` adds the output term: the input
        minus that interpretation should lose it (``-log(1 - p_c)`` of the residual, the loss of
        L-MAC's "mask out"; FF measures the same). ``domain`` is where the mask is applied when
        these terms render the interpretation (:func:`l2i.explanation.apply_mask`).

        ``augment``, a function ``(waveforms (batch, samples), generator) -> waveforms``, changes
        each training batch before anything reads it; the targets are ``f``'s decisions on the
        changed clips, and validation clips are never changed. :func:`l2i.models.perturb` teaches
        the interpreter to mimic ``f`` over the wider range of inputs ``f`` was trained on (other
        speakers, levels, noise); ``functools.partial(l2i.models.mix_pairs, p=...)`` shows it
        mixtures of two clips, the inputs it is later asked to take apart.

        ``on_epoch(epoch, interpreter, history)``, when given, is called after each epoch's
        validation, with that epoch's weights: to score another set at every epoch
        (``interpreter.fidelity(other)``), log, or plot as training goes. What it returns is
        ignored; the epoch kept is still chosen on ``val``.

        Training runs on the classifier's device (move the classifier to the GPU first, then build
        the interpreter). Book: chapter "Training the interpreter".
        """
        check_domain(domain)
        if not temperature > 0:
            raise ValueError(f"temperature divides the logits of the fidelity term: give a number above 0, got {temperature}")
        if lam_in < 0 or lam_out < 0:
            raise ValueError(f"lam_in and lam_out are weights, 0 or more; got {lam_in} and {lam_out}")
        self.objective = {"lam_in": float(lam_in), "lam_out": float(lam_out)}
        ramp = round(epochs * 19 / 35) if ramp_epoch is None else int(ramp_epoch)
        self.history = history = History(*HISTORY)

        def step(x, epoch):
            X, phase = self.spectrogram.analyze(x)
            H, logits, _ = self.activations(x, X)
            terms = {"reconstruction": reconstruction_loss(X, self.W, H),
                     "fidelity_loss": fidelity_loss(self.theta(H), logits, self.multilabel, temperature),
                     "sparsity": sparsity_loss(H)}
            w_fid = lam_fid_start if epoch < ramp else lam_fid
            loss = lam_rec * terms["reconstruction"] + w_fid * terms["fidelity_loss"] + lam_spa * terms["sparsity"]
            terms["input_fidelity_loss"] = terms["output_fidelity_loss"] = torch.zeros((), device=x.device)
            if lam_in > 0 or lam_out > 0:
                audio = finite_gradient(self._soft_interpretation(x, X, phase, H, logits, threshold, domain))
                with frozen(self.classifier):
                    terms["input_fidelity_loss"] = input_fidelity_loss(logits_of(self.classifier(audio)), logits, self.multilabel)
                    if lam_out > 0:
                        terms["output_fidelity_loss"] = output_fidelity_loss(
                            logits_of(self.classifier(x - audio)), logits, self.multilabel)
                loss = loss + lam_in * terms["input_fidelity_loss"] + lam_out * terms["output_fidelity_loss"]
            return {"loss": loss, **terms}

        def end_epoch(epoch, means):
            for name, value in means.items():
                getattr(history, name).append(value)
            fid, rec = self._validate(val)
            history.val_fidelity.append(fid)
            history.val_reconstruction.append(rec)
            # Fidelity first; among equal fidelities the better reconstruction (often fidelity
            # is 1.0 from the first epoch, when H is still a poor description of the input).
            return (fid, -rec)

        history.best_epoch = self._fit(
            train, epochs, batch_size, lr, seed, augment, step, end_epoch, "interpreter", progress, on_epoch,
            lambda: {"loss": f"{history.loss[-1]:.3f}", "val_fidelity": f"{history.val_fidelity[-1]:.3f}"},
            [p for p in self.parameters() if p.requires_grad],
        )
        return history

    def _soft_interpretation(self, x, X, phase, H, logits, threshold: float, domain: str) -> Tensor:
        """The interpretation audio the fidelity terms render, differentiable: components weighted
        by :func:`l2i.losses.soft_selection` of their relevance to ``f``'s decision."""
        weights = soft_selection(self.relevance(H, logits.argmax(dim=1)), threshold)
        return self.spectrogram.synthesize(apply_mask(X, self.soft_mask(H, weights), domain), phase, length=x.shape[-1])

    def fidelity(self, data: Dataset, batch_size: int = 64) -> float:
        """Share of clips where ``argmax Theta(H) == argmax f(x)`` (agreement with the classifier,
        not with the labels; multi-label: the same classes above 0.5). Book: chapter "Training the
        interpreter"."""
        return self._validate(data, batch_size)[0]

    @torch.no_grad()
    def _validate(self, data: Dataset, batch_size: int = 64) -> tuple[float, float]:
        """Fidelity and the relative reconstruction error ``||X - WH|| / ||X||`` over ``data``."""
        was_training = self.training
        self.eval()
        agree, total, err, norm = 0, 0, 0.0, 0.0
        for batch in DataLoader(distributed.part_of(data), batch_size=batch_size, collate_fn=collate):
            x = batch.waveforms.to(self.device)
            H, logits, X = self.activations(x)
            out = self.theta(H)
            if self.multilabel:  # the same set of classes decided (sigmoid > 0.5)
                agree += int(((out > 0) == (logits > 0)).all(1).sum())
            else:
                agree += int((out.argmax(1) == logits.argmax(1)).sum())
            total += x.shape[0]
            err += float((X - self.W @ H).pow(2).sum())
            norm += float(X.pow(2).sum())
        self.train(was_training)
        if distributed.active():  # every rank's part counted, so every rank keeps the same epoch
            agree, total, err, norm = distributed.all_reduce(torch.tensor([agree, total, err, norm], dtype=torch.float64)).tolist()
        return agree / total, (err / max(norm, 1e-12)) ** 0.5

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        return {
            "layers": [layer.config() for layer in self.layers],
            "multilabel": self.multilabel,
            "hidden": self.hidden,
            "example_length": self.example_length,
            "n_classes": self.n_classes,
            "classes": list(self.classes) if self.classes else None,
            "spectrogram": self.spectrogram.config(),
            "features": [layout.features for layout in self.layouts],
            "objective": self.objective,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Save the interpreter (Psi, Theta, dictionary, settings; not the classifier), atomically."""
        return save_model(path, _FORMAT, _FORMAT_VERSION, self.config(), self.state_dict(), self.history.state())

    @classmethod
    def load(cls, path: str | os.PathLike, classifier: nn.Module, map_location="cpu",
             layers: list[str | Layer] | None = None) -> Interpreter:
        """Load an interpreter saved with :meth:`save` for ``classifier`` (``weights_only=True``).

        The classifier's layers must give the features seen when the interpreter was trained.
        ``layers``: the same layers again, needed only where one was read with a ``read=`` function.
        """
        payload = load_model(path, _FORMAT, _FORMAT_VERSION, "interpreter", map_location)
        config, state = payload["config"], payload["state"]
        if payload.get("format_version", 1) == 1:  # layer names, and shapes (channels, [freq,] time)
            config["layers"] = [Layer(name).config() for name in config["layers"]]
            config["features"] = [math.prod(s[:-1]) if len(s) > 1 else s[0] for s in config.pop("layer_shapes")]
        if layers is None:
            layers = [Layer.from_config(c) for c in config["layers"]]
        model = cls(
            classifier,
            layers,
            state["W"],
            spectrogram=Spectrogram(**config["spectrogram"]),
            n_classes=config["n_classes"],
            multilabel=config["multilabel"],
            hidden=config["hidden"],
            example_length=config["example_length"],
            classes=config["classes"],
        )
        model._check_features(config["features"])
        model.objective = dict(config.get("objective", model.objective))
        model.load_state_dict(state)
        model.history = History.from_state(payload["history"])
        model.eval()
        return model


def _dictionary_matrix(dictionary) -> tuple[Tensor, Spectrogram | None]:
    if isinstance(dictionary, NMF):
        if dictionary.W is None:
            raise ValueError("the NMF dictionary is not fitted: call fit() or NMF.load() first")
        return dictionary.W.detach().cpu(), dictionary.spectrogram
    if isinstance(dictionary, Tensor):
        if dictionary.ndim != 2 or (dictionary < 0).any() or not torch.isfinite(dictionary).all():
            raise ValueError("a dictionary tensor must be a finite, non-negative (freq, K) matrix")
        return dictionary.detach().cpu(), None
    raise ValueError(f"dictionary must be a fitted l2i.nmf.NMF or a (freq, K) tensor, got {type(dictionary).__name__}")


def _matching_spectrogram(spectrogram: Spectrogram | None, learnt: Spectrogram | None, W: Tensor) -> Spectrogram:
    if spectrogram is None:
        if learnt is None:
            raise ValueError("pass spectrogram=Spectrogram(...): the dictionary does not record its front end")
        spectrogram = Spectrogram(**learnt.config())  # a copy: moving the interpreter leaves the NMF's as it is
    elif learnt is not None:
        for key in ("sample_rate", "n_fft", "hop_length"):
            if getattr(learnt, key) != getattr(spectrogram, key):
                raise ValueError(
                    f"the dictionary was learnt with {key}={getattr(learnt, key)} but the interpreter's spectrogram "
                    f"has {key}={getattr(spectrogram, key)}: use the dictionary's (nmf.spectrogram) or learn a "
                    "new dictionary"
                )
    if W.shape[0] != spectrogram.n_freq:
        raise ValueError(
            f"the dictionary has {W.shape[0]} frequency bins but the spectrogram has {spectrogram.n_freq} "
            f"(n_fft={spectrogram.n_fft})"
        )
    return spectrogram
