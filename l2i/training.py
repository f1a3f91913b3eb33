"""The one training loop every trainer of l2i runs: the classifier (:func:`l2i.models.train_classifier`),
the interpreter (:meth:`l2i.Interpreter.fit`) and L-MAC's decoder (:meth:`l2i.lmac.LMAC.fit`).

Book: chapters "Training the classifier" and "Training the interpreter". Each epoch runs the
trainer's ``step`` on every batch (which returns the loss and its terms), stops with a clear error
on a non-finite loss, then the trainer's ``end_epoch`` records and validates and returns a score;
the weights of the best-scoring epoch are kept, and the trainer's ``on_epoch`` callback sees every
epoch at its own weights. Training draws its random numbers from ``seed`` inside
:func:`torch.random.fork_rng`, so the caller's random state is the same after as before.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import distributed

__all__ = ["History", "check_finite_loss", "default_device", "finite_gradient", "fit_epochs", "loader", "seeded"]


class History:
    """What a trainer recorded: a series of per-epoch values per name (``history.val_fidelity``,
    ``history.loss``...) and the epoch whose weights were kept (``best_epoch``).

    Parameters
    ----------
    names : str
        The series, each starting empty.
    best_epoch : int
        -1 until training keeps an epoch.
    """

    def __init__(self, *names: str, best_epoch: int = -1, **series: list[float]):
        self.series = {name: [] for name in names}
        self.series.update({name: list(values) for name, values in series.items()})
        self.best_epoch = best_epoch

    def __getattr__(self, name: str) -> list[float]:
        series = self.__dict__.get("series", {})
        if name in series:
            return series[name]
        raise AttributeError(f"no series {name!r} in this history; it has {sorted(series)}")

    def best(self, name: str) -> float:
        """The series ``name`` at the kept epoch (NaN before training)."""
        return self.series[name][self.best_epoch] if self.best_epoch >= 0 else float("nan")

    @property
    def best_val_accuracy(self) -> float:
        return self.best("val_accuracy")

    @property
    def best_val_fidelity(self) -> float:
        return self.best("val_fidelity")

    def state(self) -> dict:
        """What is saved: ``{"series": {...}, "best_epoch": n}``."""
        return {"series": self.series, "best_epoch": self.best_epoch}

    @classmethod
    def from_state(cls, state: dict) -> History:
        """The history :meth:`state` saved (or a flat ``{name: values, "best_epoch": n}`` of old files)."""
        state = dict(state)
        best = int(state.pop("best_epoch", -1))
        return cls(best_epoch=best, **state.get("series", state))

    def __repr__(self) -> str:
        return f"History(best_epoch={self.best_epoch}, series={sorted(self.series)})"


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s first parameter (or buffer) is; the CPU for one with neither."""
    return next((t.device for t in list(model.parameters()) + list(model.buffers())), torch.device("cpu"))


def finite_gradient(waveform: Tensor) -> Tensor:
    """``waveform`` itself, whose gradient will have every NaN or infinite entry set to 0.

    For audio an interpreter renders and passes through the user's classifier: a classifier's
    gradient can be undefined at some inputs (the gradient of a complex ``abs``, e.g. in a
    magnitude spectrogram, is NaN at subnormal values with ATen's generic CPU kernels), and one
    NaN would poison every weight. Zero is the subgradient PyTorch itself takes at ``|z| = 0``;
    where the gradient is finite nothing changes, to the bit.
    """
    if waveform.requires_grad:
        waveform.register_hook(lambda grad: torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0))
    return waveform


def default_device() -> torch.device:
    """The GPU when there is one, else the CPU: where l2i trains unless told otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def seeded(seed: int):
    """Inside the block, torch's random numbers come from ``seed``; outside, the caller's random
    state (CPU and every GPU) is as it was before."""
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=gpus):
        torch.manual_seed(seed)
        yield


def loader(dataset, batch_size: int, generator: torch.Generator):
    """The training batches of ``dataset``, shuffled by ``generator``; under ``torch.distributed``
    each rank gets its part of every epoch (a ``DistributedSampler`` seeded alike on every rank)."""
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    from .datasets import collate

    if distributed.active():
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        sampler = DistributedSampler(dataset, shuffle=True, seed=seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate, generator=generator)


class _Step(nn.Module):
    """A trainer's step as the forward of a module, which ``DistributedDataParallel`` needs."""

    def __init__(self, model: nn.Module, step):
        super().__init__()
        self.model, self.step = model, step

    def forward(self, batch, epoch):
        return self.step(batch, epoch)


def check_finite_loss(loss: Tensor, what: str, epoch: int, step: int) -> None:
    """Raise :class:`FloatingPointError` when a training loss is NaN or infinite.

    A non-finite loss poisons every weight at the next step, and the epoch kept by validation would
    then be a model that learnt nothing: training stops instead, before anything is saved.
    """
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"the {what}'s training loss is {float(loss.detach())} at epoch {epoch + 1}, batch {step + 1}: training "
            "stopped before anything was saved. Lower the learning rate (lr=), or check the data for "
            "silent, clipped or non-finite clips"
        )


def fit_epochs(
    model: nn.Module,
    batches: Iterable,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    step: Callable[[object, int], dict[str, Tensor]],
    end_epoch: Callable[[int, dict[str, float]], tuple],
    what: str,
    progress: bool = True,
    scheduler=None,
    on_epoch: Callable[[int], None] | None = None,
    postfix: Callable[[], dict] | None = None,
) -> int:
    """Train ``model`` for ``epochs`` and keep the weights of its best epoch; return that epoch.

    Parameters
    ----------
    batches : iterable
        Re-iterated every epoch (a ``DataLoader``).
    step : callable
        ``step(batch, epoch) -> {"loss": loss, term: value, ...}`` on one batch; the loop
        back-propagates ``"loss"`` and averages every term over the epoch's clips.
    end_epoch : callable
        ``end_epoch(epoch, means) -> score``: records the epoch's mean terms, validates, and
        returns a score (a tuple; the highest is kept, the first of equal ones).
    on_epoch : callable, optional
        ``on_epoch(epoch)`` after each epoch's validation, at that epoch's weights.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number, 1 or more; got {epochs!r}")
    if distributed.active():  # the gradients averaged over the ranks, the weights alike on all
        from torch.nn.parallel import DistributedDataParallel

        devices = [model_device(model)] if model_device(model).type == "cuda" else None
        step = DistributedDataParallel(_Step(model, step), device_ids=devices)
    best, best_epoch, kept = None, -1, None
    with tqdm(total=epochs, desc=what, disable=not progress or not distributed.is_main(), leave=False) as bar:
        for epoch in range(epochs):
            model.train()
            sums, count = {}, 0
            if hasattr(getattr(batches, "sampler", None), "set_epoch"):
                batches.sampler.set_epoch(epoch)
            for i, batch in enumerate(batches):
                terms = step(batch, epoch)
                check_finite_loss(terms["loss"], what, epoch, i)
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                n = batch.waveforms.shape[0]
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach()) * n
                count += n
            if scheduler is not None:
                scheduler.step()
            if distributed.active():  # the epoch's means over every rank's clips
                names = sorted(sums)
                totals = distributed.all_reduce(torch.tensor([sums[n] for n in names] + [count], dtype=torch.float64))
                sums, count = dict(zip(names, totals[:-1].tolist())), float(totals[-1])
            score = end_epoch(epoch, {name: total / count for name, total in sums.items()})
            if best is None or score > best:
                best, best_epoch, kept = score, epoch, copy.deepcopy(model.state_dict())
            if on_epoch is not None:
                on_epoch(epoch)
            bar.update()
            if postfix is not None:
                bar.set_postfix(**postfix())
    model.load_state_dict(kept)
    model.eval()
    return best_epoch
