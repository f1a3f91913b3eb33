"""Training on several processes and machines with PyTorch's own ``torch.distributed``.

Book: the API reference; the README says how to launch. Under ``torchrun --nproc-per-node N``
(and several nodes), :func:`setup` joins the process group the launcher describes (gloo on CPUs,
NCCL on GPUs, with a timeout so that a rank that fails ends the run instead of hanging it). Then

* :meth:`l2i.Interpreter.fit`, :meth:`l2i.lmac.LMAC.fit` and :func:`l2i.models.train_classifier`
  train with ``DistributedDataParallel``, each rank on its part of every epoch
  (``DistributedSampler``), validation reduced over the ranks so that every rank keeps the same
  epoch; progress bars on rank 0 only;
* :meth:`l2i.NMF.fit` with ``sharded=True`` factorises data split across the ranks, each rank
  streaming its own blocks, the statistics of the ``W`` update all-reduced: the same ``W`` as one
  process on all the data, to float tolerance;
* every save (:mod:`l2i.persistence`) is written by rank 0 only, atomically; the other ranks
  skip it without waiting (a save is no collective, so ``if rank == 0: save(...)`` is safe too).

In a single process nothing here does anything: the calls are exactly as they were.
"""

from __future__ import annotations

import atexit
import datetime
import os

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["active", "all_reduce", "barrier", "is_main", "part_of", "rank", "setup", "shard", "world_size"]


def active() -> bool:
    """Whether this process is one of several of an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, or the only process: the one that writes files and shows progress."""
    return rank() == 0


def setup(backend: str | None = None, timeout_s: float = 300.0) -> bool:
    """Join the process group ``torchrun`` (or any launcher setting ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``) describes; False, doing nothing, outside one. On GPUs each
    process takes ``LOCAL_RANK``'s device. ``timeout_s``: how long a collective waits for a rank
    before the run fails."""
    if active():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    # Leave the group at exit: a process that ends with the backend's threads still running is
    # aborted ("terminate called without an active exception"), which fails the whole launch.
    atexit.register(_leave)
    return True


def _leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce(tensor: Tensor) -> Tensor:
    """The sum of ``tensor`` over the ranks, in place (itself in a single process)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    if active():
        dist.barrier()


def shard(n: int) -> range:
    """This rank's contiguous part of ``n`` items (``range(n)`` in a single process): rank ``r`` of
    ``R`` gets items ``r n / R`` to ``(r + 1) n / R``, so the parts, in rank order, are the whole
    in its order (what :meth:`l2i.NMF.fit` with ``sharded=True`` needs to match one process)."""
    r, size = rank(), world_size()
    return range(r * n // size, (r + 1) * n // size)


def part_of(dataset):
    """This rank's contiguous part of ``dataset`` (itself in a single process): what each rank
    validates before the counts are summed with :func:`all_reduce`."""
    if not active():
        return dataset
    from torch.utils.data import Subset

    return Subset(dataset, shard(len(dataset)))
