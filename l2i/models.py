"""Classifiers to interpret: a compact reference CNN on log-mel features, and its training loop.

Book: chapter "Training the classifier". Any ``nn.Module`` that maps waveforms ``(batch, samples)``
to logits ``(batch, classes)`` can be interpreted; :class:`MelCNN` is the one the book trains.
"""

from __future__ import annotations

import os
from pathlib import Path

from typing import Callable

import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from . import distributed
from .audio import check_waveform, fit_length, limit_peak, resample, scale_to_snr, white_noise
from .datasets import collate
from .persistence import load_model, save_model
from .reading import logits_of
from .training import History, default_device, fit_epochs, loader, seeded

_FORMAT = "l2i.melcnn"
_FORMAT_VERSION = 1

__all__ = ["MelCNN", "MaxPool2x2", "train_classifier", "predict", "accuracy", "resolve_targets", "perturb", "mix_pairs", "mask_stretch"]


class MaxPool2x2(nn.Module):
    """2x2 max pooling, stride 2, odd edges dropped: ``nn.MaxPool2d(2)``, faster without gradients.

    ``(batch, channels, h, w) -> (batch, channels, h // 2, w // 2)``. When no gradient is needed,
    as when an interpreter or a baseline reads the classifier, two elementwise maxima give exactly
    ``F.max_pool2d``'s values in a tenth of its time on a CPU (NaN propagates in both); with
    gradients, ``F.max_pool2d`` itself, whose backward is the faster one.
    """

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return F.max_pool2d(x, 2)
        x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
        x = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
        return torch.maximum(x[..., 0::2], x[..., 1::2])


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, pool: bool = True):
        layers = [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=False),
        ]
        if pool:
            layers.append(MaxPool2x2())
        super().__init__(*layers)


class MelCNN(nn.Module):
    """A compact CNN on log-mel spectrograms, waveforms in and logits out.

    ``(batch, samples) -> (batch, n_classes)``. The torchaudio mel front end is part of the module,
    so the model is a function of the waveform alone, as an interpreter needs. Four convolutional
    blocks (``block1`` ... ``block4``, each halving time and frequency except the last) feed a
    global pooling and a linear layer (``head``). Hidden layers worth hooking: ``block2``,
    ``block3``, ``block4``.

    Book: chapter "Training the classifier".

    Parameters
    ----------
    n_classes : int
    sample_rate : int
    n_fft, hop_length, n_mels : int
        Mel front end; by default about 32 ms windows and 8 ms hops.
    width : int
        Channels of the first block (doubled in each of the next two).
    dropout : float
        Before the linear head, while training.
    time_mask : bool
        While training, also mask a random stretch of frames (SpecAugment's time mask, next to its
        band mask).
    """

    def __init__(
        self,
        n_classes: int,
        sample_rate: int = 8000,
        n_fft: int | None = None,
        hop_length: int | None = None,
        n_mels: int = 64,
        width: int = 16,
        dropout: float = 0.2,
        time_mask: bool = False,
    ):
        super().__init__()
        self.time_mask = bool(time_mask)
        n_fft = n_fft or _power_of_two(0.032 * sample_rate)
        hop_length = hop_length or n_fft // 4
        self._config = {"n_classes": int(n_classes), "sample_rate": int(sample_rate), "n_fft": int(n_fft),
                        "hop_length": int(hop_length), "n_mels": int(n_mels), "width": int(width),
                        "dropout": float(dropout), "time_mask": self.time_mask}
        self.history = History("train_loss", "val_accuracy")
        self.sample_rate, self.n_classes = int(sample_rate), int(n_classes)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0
        )
        self.norm = nn.BatchNorm2d(1)
        self.block1 = _Block(1, width)
        self.block2 = _Block(width, 2 * width)
        self.block3 = _Block(2 * width, 4 * width)
        self.block4 = _Block(4 * width, 8 * width, pool=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(16 * width, n_classes)

    def config(self) -> dict:
        """The settings that build this network: ``MelCNN(**config())``."""
        return dict(self._config)

    def save(self, path: str | os.PathLike, history: History | None = None) -> Path:
        """Save the weights, settings and training history (atomically,
        :func:`l2i.persistence.save_model`)."""
        history = history if history is not None else self.history
        return save_model(path, _FORMAT, _FORMAT_VERSION, self.config(), self.state_dict(), history.state())

    @classmethod
    def load(cls, path: str | os.PathLike, map_location="cpu") -> MelCNN:
        """A classifier saved with :meth:`save`, in evaluation mode, its ``history`` restored."""
        payload = load_model(path, _FORMAT, _FORMAT_VERSION, "MelCNN classifier", map_location)
        model = cls(**payload["config"])
        model.load_state_dict(payload["state"])
        model.history = History.from_state(payload["history"])
        return model.eval()

    def features(self, waveform: Tensor) -> Tensor:
        """Log-mel input of the network: ``(batch, samples) -> (batch, 1, n_mels, frames)``.

        Each band's mean over time is removed (cepstral mean normalisation): the clip's overall
        colour, from the microphone or the voice, does not reach the network. While training, one
        random band of up to a sixth of the mel bands and (``time_mask``) one random stretch of up
        to a sixth of the frames are masked (SpecAugment).
        """
        x = self.log_mel(waveform)
        x = x - x.mean(dim=-1, keepdim=True)
        if self.training:
            x = mask_stretch(x, dim=2)
            if self.time_mask:
                x = mask_stretch(x, dim=3)
        return x

    def log_mel(self, waveform: Tensor) -> Tensor:
        """``(batch, samples) -> (batch, 1, n_mels, frames)``, ``log(mel power + 1e-3)``."""
        return torch.log(self.mel(waveform) + 1e-3).unsqueeze(1)

    def forward(self, waveform: Tensor) -> Tensor:
        """Logits ``(batch, classes)`` of waveforms ``(batch, samples)`` or ``(samples,)``."""
        if waveform.ndim not in (1, 2):
            raise ValueError(
                f"MelCNN takes (samples,) or (batch, samples) waveforms, got shape {tuple(waveform.shape)}: "
                "mix channels down first (waveform.mean(dim=-2))"
            )
        if waveform.ndim == 1:
            waveform = waveform.unsqueeze(0)
        return self.head(self.dropout(self.pooled(waveform)))

    def pooled(self, waveform: Tensor) -> Tensor:
        """What the head reads: ``(batch, samples) -> (batch, 16 * width)``, the last block's
        channels averaged over frequency, then their mean and maximum over time."""
        h = self.norm(self.features(waveform))
        h = self.block4(self.block3(self.block2(self.block1(h))))
        h = h.mean(dim=2)  # (batch, channels, frames)
        return torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)


def mask_stretch(x: Tensor, dim: int) -> Tensor:
    """``x`` ``(batch, ...)`` with, per example, one random stretch of up to a sixth of axis ``dim``
    set to 0 (SpecAugment's band or time mask; the stretch may be empty). Same shape.

    Book: chapter "Training the classifier".
    """
    batch, size = x.shape[0], x.shape[dim]
    width = torch.randint(0, max(1, size // 6), (batch,), device=x.device)
    start = (torch.rand(batch, device=x.device) * (size - width)).long()
    steps = torch.arange(size, device=x.device)[None, :]
    masked = (steps >= start[:, None]) & (steps < (start + width)[:, None])  # (batch, size)
    shape = [batch] + [1] * (x.ndim - 1)
    shape[dim] = size
    return x.masked_fill(masked.view(shape), 0.0)


def _power_of_two(n: float) -> int:
    return 1 << max(3, round(n).bit_length() - 1)


def perturb(waveforms: Tensor, generator: torch.Generator) -> Tensor:
    """Perturbed copies of ``waveforms`` ``(batch, samples)``, the same shape.

    Cheap robustness for small data, per clip: speed change (0.75-1.3, which moves pitch and
    formants like another voice), circular time shift (up to 10%), gain (+-6 dB) and white noise
    20 to 50 dB below the clip. Used by :func:`train_classifier` and, to mimic the classifier over
    the same range of inputs, by :meth:`l2i.Interpreter.fit` (``augment=perturb``).

    Book: chapter "Training the classifier".
    """
    batch, n = waveforms.shape
    r = torch.rand(batch, 4, generator=generator)
    out = []
    for w, (speed, shift, _, _) in zip(waveforms, r):
        factor = int(round(100 * (0.75 + 0.55 * float(speed))))
        w = fit_length(resample(w, 100, factor), n)
        out.append(torch.roll(w, int((float(shift) * 0.2 - 0.1) * n)))
    out = torch.stack(out)
    gain = 10 ** ((r[:, 2:3] * 12 - 6) / 20)
    noise_db = 20 + 30 * r[:, 3:4]
    return ((out + white_noise(out, noise_db, generator)) * gain).clamp(-1, 1)


def mix_pairs(
    waveforms: Tensor, generator: torch.Generator, p: float = 0.5, snr_db: tuple[float, float] = (-5.0, 5.0)
) -> Tensor:
    """Copies of ``waveforms`` ``(batch, samples)`` in which a share ``p`` of the clips has another
    clip of the same batch added, the same shape.

    Each chosen clip gets a partner (never itself) at an SNR drawn uniformly from ``snr_db`` (the
    chosen clip's power over the partner's), and the sum is scaled down to peak at 0.9 if it goes
    above; a silent partner adds nothing. With ``functools.partial(mix_pairs, p=...)`` as
    :meth:`l2i.Interpreter.fit`'s ``augment``, the interpreter learns on mixtures what ``f``
    decides on them, so it has seen, while training, the kind of input it is later asked to
    take apart.

    Book: chapter "Training the interpreter".
    """
    check_waveform(waveforms, "waveforms")
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms must be (batch, samples), got shape {tuple(waveforms.shape)}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p is the share of clips to mix, between 0 and 1; got {p}")
    low, high = snr_db
    if low > high:
        raise ValueError(f"snr_db is a (low, high) range in dB; got {snr_db}")
    batch = waveforms.shape[0]
    if batch < 2 or p == 0.0:
        return waveforms.clone()
    # A rotation of the batch by 1 to batch-1 places: every clip's partner is another clip.
    shift = 1 + int(torch.randint(batch - 1, (1,), generator=generator))
    partner = torch.roll(waveforms, shift, dims=0)
    chosen = (torch.rand(batch, generator=generator) < p).to(waveforms.dtype)
    snr = low + (high - low) * torch.rand(batch, generator=generator).to(waveforms.dtype)
    out = waveforms + chosen.unsqueeze(1) * scale_to_snr(waveforms, partner, snr, silent="zero")
    return limit_peak(out)


def train_classifier(
    model: nn.Module,
    train: Dataset,
    val: Dataset,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    augment: bool = True,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
    on_epoch: Callable[[int, nn.Module, History], None] | None = None,
    multilabel: bool = False,
) -> History:
    """Train a waveform classifier with Adam and keep the weights of the best validation epoch.

    Model selection uses ``val`` only, never a test split. The model is left on ``device`` in
    evaluation mode, with the best weights loaded. ``on_epoch(epoch, model, history)``, when
    given, is called after each epoch's validation with that epoch's weights (to score another
    set every epoch, or log); the epoch kept is still chosen on ``val``.

    Book: chapter "Training the classifier".

    Returns
    -------
    History
        ``train_loss`` and ``val_accuracy`` per epoch, the kept epoch.
    """
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    history = History("train_loss", "val_accuracy")
    with seeded(seed):
        generator = torch.Generator().manual_seed(seed)
        batches = loader(train, batch_size, generator)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))

        def step(batch, epoch):
            x = perturb(batch.waveforms, generator) if augment else batch.waveforms
            logits, labels = logits_of(model(x.to(device))), batch.labels.to(device)
            if multilabel:
                return {"loss": F.binary_cross_entropy_with_logits(logits, labels.float())}
            return {"loss": F.cross_entropy(logits, labels)}

        def end_epoch(epoch, means):
            history.train_loss.append(means["loss"])
            history.val_accuracy.append(accuracy(model, val, device=device, multilabel=multilabel))
            return (history.val_accuracy[-1], epoch)  # ties: the later epoch, better trained

        history.best_epoch = fit_epochs(
            model, batches, epochs, optimizer, step, end_epoch, "classifier", progress, scheduler=scheduler,
            on_epoch=None if on_epoch is None else lambda epoch: on_epoch(epoch, model, history),
            postfix=lambda: {"loss": f"{history.train_loss[-1]:.3f}", "val_acc": f"{history.val_accuracy[-1]:.3f}"},
        )
    if isinstance(model, MelCNN):
        model.history = history
    return history


@torch.no_grad()
def predict(model: nn.Module, data: Dataset, batch_size: int = 64, device=None) -> tuple[Tensor, Tensor]:
    """Logits ``(n, classes)`` and labels ``(n,)`` of a whole dataset, in evaluation mode."""
    device = torch.device(device or next(model.parameters()).device)
    was_training = model.training
    model.eval()
    logits, labels = [], []
    for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate):
        check_waveform(batch.waveforms, "batch")
        logits.append(logits_of(model(batch.waveforms.to(device))).float().cpu())
        labels.append(batch.labels)
    model.train(was_training)
    return torch.cat(logits), torch.cat(labels)


def accuracy(model: nn.Module, data: Dataset, batch_size: int = 64, device=None, multilabel: bool = False) -> float:
    """Share of clips whose argmax logit is the label (``multilabel``: whose classes with
    ``sigmoid > 0.5`` are exactly the multi-hot label's). Under ``torch.distributed`` each rank
    scores its part and the counts are summed, so every rank gets the same figure."""
    logits, labels = predict(model, distributed.part_of(data), batch_size, device)
    right = ((logits > 0) == (labels > 0.5)).all(1) if multilabel else logits.argmax(1) == labels
    counts = distributed.all_reduce(torch.tensor([float(right.sum()), float(right.numel())], dtype=torch.float64))
    return float(counts[0] / counts[1])


def resolve_targets(target, logits: Tensor) -> Tensor:
    """The class to explain per item, ``(batch,)``: the classifier's decision ``argmax`` of
    ``logits`` (batch, classes) by default, else ``target`` (an int for all, or one per item); a
    clear error for a wrong count or a class outside the classifier's."""
    batch, n_classes = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    t = torch.as_tensor(target, device=logits.device).long().flatten()
    if t.numel() == 1:
        t = t.expand(batch)
    if t.numel() != batch:
        raise ValueError(f"target has {t.numel()} entries for a batch of {batch}")
    bad = t[(t < 0) | (t >= n_classes)]
    if bad.numel():
        raise ValueError(f"target {int(bad[0])} is outside the classifier's {n_classes} classes (0 to {n_classes - 1})")
    return t
