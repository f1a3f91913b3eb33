"""L-MAC: Listenable Maps for Audio Classifiers (Paissan, Ravanelli, Subakan, ICML 2024).

Book: chapter "The crying baby and the dog". A decoder reads the classifier's hidden layers (the
same reading as L2I's, :mod:`l2i.reading`) and the class to explain, and predicts a mask
``M`` in [0, 1] over the linear magnitude spectrogram ``|S|`` of the input. It is trained, the
classifier frozen, so that

* the masked input ``x_in = istft(M |S|, phase)`` keeps the classifier's decision ``c``
  (mask-in: ``CE(f(x_in), c)``, weight ``lam_in``),
* what is left, ``x_out = istft((1 - M) |S|, phase)``, loses it (mask-out: ``-CE(f(x_out), c)``,
  weight ``lam_out``),
* the mask stays small (``mean |M|``, weight ``lam_l1``).

The defaults are the published recipe's weights (4, 0.2, 0.4). Where L2I explains with a
dictionary's patterns, L-MAC's mask is free over every time-frequency bin: its interpretation is
the mask itself, no threshold chooses among units.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from . import distributed
from .audio import Spectrogram, as_batch
from .datasets import collate
from .explanation import Analysis, Explanation, apply_mask, binary_mask, check_binarize, check_threshold, explanation_from_mask
from .losses import mask_in_loss, mask_out_loss
from .models import resolve_targets
from .networks import Psi
from .persistence import load_model, save_model
from .reading import Layer, ReadsClassifier, frozen, logits_of
from .training import History, finite_gradient

__all__ = ["LMAC"]

_FORMAT = "l2i.lmac"
_FORMAT_VERSION = 1


# What LMAC.fit records per epoch: the mean loss and its terms, then validation.
HISTORY = ("loss", "mask_in", "mask_out", "l1", "val_loss", "val_input_fidelity")


class LMAC(ReadsClassifier):
    """Listenable Maps for Audio Classifiers: a mask decoder for a trained audio classifier.

    Book: chapter "The crying baby and the dog".

    Parameters
    ----------
    classifier : nn.Module
        Waveforms ``(batch, samples)`` to logits (never changed; as for :class:`l2i.Interpreter`).
    layers : list of str or l2i.reading.Layer
        The hidden layers the decoder reads.
    spectrogram : Spectrogram
        The STFT the mask lives on (its magnitude).
    hidden : int
        Width of the decoder.
    example_length : int, optional
        Samples of the dry runs' clips (default: one second).
    classes : tuple of str, optional
        Class names for display.
    """

    name = "L-MAC"
    family = "L-MAC"
    needs_sources = False

    def __init__(self, classifier: nn.Module, layers: Sequence[str | Layer], spectrogram: Spectrogram,
                 hidden: int = 64, example_length: int | None = None, classes: tuple[str, ...] | None = None):
        if not isinstance(spectrogram, Spectrogram):
            raise ValueError(f"spectrogram must be an l2i.Spectrogram, got {type(spectrogram).__name__}")
        super().__init__(classifier, layers, spectrogram, example_length, classes)
        self.hidden = int(hidden)
        self.decoder = Psi(self.reader.layouts, spectrogram.n_freq, self.hidden, n_classes=self.n_classes, nonnegative=False)
        self.history = History(*HISTORY)

    def mask(self, waveform: Tensor, target: Tensor | None = None, X: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``M`` (batch, freq, frames) in [0, 1] for ``target`` (default: the classifier's
        decision), the classifier's logits and the targets."""
        self._follow_classifier()
        x = as_batch(waveform).to(self.device)
        X = self.spectrogram(x) if X is None else X
        with torch.no_grad():
            logits, acts = self.reader.read(x)
        target = resolve_targets(target, logits)
        return torch.sigmoid(self.decoder(acts, X.shape[-1], target)), logits, target

    def _losses(self, x: Tensor, lam_in: float, lam_out: float, lam_l1: float) -> dict[str, Tensor]:
        """The loss and its terms on waveforms ``x`` (and whether ``f(x_in)`` keeps the decision)."""
        X, phase = self.spectrogram.analyze(x)
        M, logits, target = self.mask(x, X=X)
        audio_in = finite_gradient(self.spectrogram.synthesize(apply_mask(X, M, "magnitude"), phase, length=x.shape[-1]))
        audio_out = finite_gradient(self.spectrogram.synthesize(apply_mask(X, 1 - M, "magnitude"), phase, length=x.shape[-1]))
        with frozen(self.classifier):
            out_in = logits_of(self.classifier(audio_in))
            out_out = logits_of(self.classifier(audio_out))
        terms = {"mask_in": mask_in_loss(out_in, target), "mask_out": mask_out_loss(out_out, target), "l1": M.abs().mean()}
        loss = lam_in * terms["mask_in"] + lam_out * terms["mask_out"] + lam_l1 * terms["l1"]
        return {"loss": loss, **terms, "input_fidelity": (out_in.argmax(1) == target).float().mean()}

    def fit(
        self,
        train: Dataset,
        val: Dataset,
        epochs: int = 20,
        batch_size: int = 32,
        lr: float = 1e-3,
        lam_in: float = 4.0,
        lam_out: float = 0.2,
        lam_l1: float = 0.4,
        augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        seed: int = 0,
        progress: bool = True,
        on_epoch: Callable[[int, "LMAC", History], None] | None = None,
    ) -> History:
        """Train the decoder; keep the epoch with the lowest validation loss.

        ``augment(waveforms, generator)`` changes each training batch (e.g.
        ``functools.partial(l2i.models.mix_pairs, p=...)``: the published recipe trains on
        mixtures); validation clips are never changed. ``on_epoch(epoch, lmac, history)`` is
        called after each epoch's validation.
        """
        for name, value in (("lam_in", lam_in), ("lam_out", lam_out), ("lam_l1", lam_l1)):
            if not value >= 0:
                raise ValueError(f"{name} is a weight, 0 or more; got {value}")
        self.history = history = History(*HISTORY)

        def step(x, epoch):
            terms = self._losses(x, lam_in, lam_out, lam_l1)
            terms.pop("input_fidelity")
            return terms

        def end_epoch(epoch, means):
            for name, value in means.items():
                getattr(history, name).append(value)
            val_loss, val_fid = self._validate(val, batch_size, lam_in, lam_out, lam_l1)
            history.val_loss.append(val_loss)
            history.val_input_fidelity.append(val_fid)
            return (-val_loss,)

        history.best_epoch = self._fit(
            train, epochs, batch_size, lr, seed, augment, step, end_epoch, "L-MAC decoder", progress, on_epoch,
            lambda: {"loss": f"{history.loss[-1]:.3f}", "val_loss": f"{history.val_loss[-1]:.3f}"},
            self.decoder.parameters(),
        )
        return history

    @torch.no_grad()
    def _validate(self, data: Dataset, batch_size: int, lam_in: float, lam_out: float, lam_l1: float) -> tuple[float, float]:
        was_training = self.training
        self.eval()
        loss = fid = 0.0
        n = 0
        for batch in DataLoader(distributed.part_of(data), batch_size=batch_size, collate_fn=collate):
            x = batch.waveforms.to(self.device)
            terms = self._losses(x, lam_in, lam_out, lam_l1)
            loss += float(terms["loss"]) * x.shape[0]
            fid += float(terms["input_fidelity"]) * x.shape[0]
            n += x.shape[0]
        self.train(was_training)
        if distributed.active():
            loss, fid, n = distributed.all_reduce(torch.tensor([loss, fid, n], dtype=torch.float64)).tolist()
        return loss / n, fid / n

    @torch.no_grad()
    def explain(self, waveform: Tensor, target=None, threshold: float = 0.2, binarize: float | None = None) -> Explanation:
        """Listenable interpretations: ``M |S|`` with the input's phase, for ``target`` (default:
        the classifier's decision). ``threshold`` is taken for the interface every method shares
        and not used: L-MAC's mask is its own, over every bin. ``binarize=c`` keeps the bins where
        ``M >= c`` whole and removes the others."""
        check_threshold(threshold)
        check_binarize(binarize)
        x = as_batch(waveform).to(self.device)
        self.spectrogram.check_length(x)
        was_training = self.training
        self.eval()
        try:
            X, phase = self.spectrogram.analyze(x)
            M, logits, target = self.mask(x, target, X)
        finally:
            self.train(was_training)
        analysis = Analysis(x, X, phase, logits, self.spectrogram.to(x.device), self.classes)
        return explanation_from_mask(analysis, binary_mask(M, binarize), target, threshold, self.name, "magnitude", binarize)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Save the decoder and its settings (not the classifier), atomically."""
        config = {"layers": [layer.config() for layer in self.layers], "hidden": self.hidden,
                  "example_length": self.example_length, "classes": list(self.classes) if self.classes else None,
                  "spectrogram": self.spectrogram.config(), "features": [layout.features for layout in self.layouts]}
        return save_model(path, _FORMAT, _FORMAT_VERSION, config, self.decoder.state_dict(), self.history.state())

    @classmethod
    def load(cls, path: str | os.PathLike, classifier: nn.Module, map_location="cpu",
             layers: list[str | Layer] | None = None) -> LMAC:
        """Load an L-MAC decoder saved with :meth:`save` for ``classifier``."""
        payload = load_model(path, _FORMAT, _FORMAT_VERSION, "L-MAC decoder", map_location)
        config = payload["config"]
        model = cls(classifier, layers or [Layer.from_config(c) for c in config["layers"]],
                    Spectrogram(**config["spectrogram"]), hidden=config["hidden"],
                    example_length=config["example_length"], classes=config["classes"])
        model._check_features(config["features"])
        model.decoder.load_state_dict(payload["state"])
        model.history = History.from_state(payload["history"])
        model.eval()
        return model
