"""Dictionary learning with non-negative matrix factorisation, on the GPU when there is one.

Book: chapter "Learning the dictionary".

``X ~= W H`` with ``X`` (freq, frames) non-negative, ``W`` (freq, K) the dictionary of spectral
patterns (unit L2-norm columns) and ``H`` (K, frames) their activations. :class:`NMF` minimises the
beta-divergence ``D_beta(X | WH) + sparsity * sum(H)`` with the multiplicative updates of Lee & Seung
(2001) and Fevotte & Idier (2011), the same iterations as scikit-learn's ``solver='mu'``; for the
Frobenius loss also with HALS (``solver="hals"``: Cichocki & Phan, 2009, several sweeps per product
with ``X`` as in Gillis & Glineur, 2012), which reaches a given loss in far fewer iterations.

Data larger than memory is factorised by streaming: the data is read block by block once per
iteration and only ``H`` (K x frames, several times smaller than ``X``) is kept. The iterates are
exactly those of the in-memory algorithm, so the loss never increases (without sparsity).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from . import distributed
from .audio import Spectrogram
from .persistence import CheckpointError, load_model, save_model
from .training import default_device

__all__ = ["NMF", "FrameBlocks", "beta_divergence", "compare_solvers"]

_BETAS = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}
_FORMAT = "l2i.nmf"
_FORMAT_VERSION = 2
# Same floor as scikit-learn, so that both take the same path around zero denominators.
_MU_FLOOR = float(torch.finfo(torch.float32).eps)  # keeps the multiplicative updates off 0 / 0


def _floor(dtype: torch.dtype) -> float:
    """Entries below this are set to 0 after each update. Multiplicative updates drive unused
    entries towards 0 without reaching it; in float32 they become subnormal numbers, which x86 CPUs
    multiply many times slower (``benchmarks/nmf_paths.py`` measures the difference). At
    the cube root of the smallest normal number (2e-13 in float32), a product of three such entries
    is still normal, and the entries are far below what float32 resolves next to the others."""
    return torch.finfo(dtype).tiny ** (1.0 / 3.0)


def _beta_value(beta: float | str) -> float:
    if isinstance(beta, str):
        if beta not in _BETAS:
            raise ValueError(f"unknown beta {beta!r}: use one of {sorted(_BETAS)} or a number")
        return _BETAS[beta]
    return float(beta)


def _gamma(beta: float) -> float:
    """Exponent that makes the updates monotone for any beta (Fevotte & Idier 2011)."""
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def beta_divergence(X: Tensor, V: Tensor, beta: float | str = 2.0) -> float:
    """``D_beta(X | V)`` summed over all entries, in float64.

    ``beta = 2`` gives half the squared Frobenius norm, ``1`` generalised Kullback-Leibler and ``0``
    Itakura-Saito (scikit-learn's conventions, so the two report comparable losses).
    """
    beta = _beta_value(beta)
    X = X.double()
    V = V.to(X.device).double()
    if beta == 2:
        return 0.5 * float((X - V).pow(2).sum())
    V = V.clamp_min(_MU_FLOOR)
    if beta == 1:
        pos = X > _MU_FLOOR
        return float((X[pos] * torch.log(X[pos] / V[pos])).sum() - X.sum() + V.sum())
    if beta == 0:
        ratio = X / V
        return float((ratio - torch.log(ratio)).sum() - X.numel())
    return float(
        (X.pow(beta) + (beta - 1) * V.pow(beta) - beta * X * V.pow(beta - 1)).sum() / (beta * (beta - 1))
    )


def _block_divergence(X: Tensor, V: Tensor, beta: float, ratio: Tensor | None = None,
                      V_beta_1: Tensor | None = None) -> float:
    """:func:`beta_divergence` of one block during fitting, for beta other than 2, from what the
    update has computed already (``ratio = X / V`` for beta = 1, which is overwritten;
    ``V_beta_1 = V**(beta - 1)`` otherwise). The non-negative terms are summed elementwise in the
    working dtype (PyTorch's CPU sums cascade, so float32 keeps about 1e-7): converting every block
    to float64, as the reference does, cost more than the update itself."""
    if beta == 1:
        ratio = X / V if ratio is None else ratio
        # X log(X / V) - X + V, with 0 log 0 = 0 (xlogy); the clamp keeps an underflowed X / V finite.
        terms = torch.xlogy(X, ratio.clamp_min_(torch.finfo(ratio.dtype).tiny), out=ratio).sub_(X).add_(V)
        return float(terms.sum())
    if beta == 0:
        ratio = X / V
        return float((ratio - torch.log(ratio) - 1).sum())
    V_beta_1 = V.pow(beta - 1) if V_beta_1 is None else V_beta_1
    terms = X.pow(beta) + (beta - 1) * V * V_beta_1 - beta * X * V_beta_1
    return float(terms.sum()) / (beta * (beta - 1))


def _h_update(X: Tensor, W: Tensor, H: Tensor, beta: float, sparsity: float,
              scratch: "_Scratch | None" = None) -> Tensor:
    """One multiplicative update of ``H`` with ``W`` fixed, in place.

    Shapes: ``X`` (..., F, T), ``W`` (F, K), ``H`` (..., K, T); leading batch axes broadcast.
    ``scratch`` (2-D ``X`` only) holds the ``(F, T)`` work tensors from one call to the next.
    """
    if beta == 2:
        num = W.T @ X
        den = (W.T @ W) @ H
    else:
        V = (W @ H if scratch is None else torch.mm(W, H, out=scratch.get(0, X))).clamp_min_(_MU_FLOOR)
        if beta == 1:
            num = W.T @ torch.div(X, V, out=V)
            den = W.sum(dim=0).unsqueeze(-1)  # (K, 1): broadcast over frames, never expanded
        else:
            t = V.pow(beta - 2) if scratch is None else torch.pow(V, beta - 2, out=scratch.get(1, X))
            num = W.T @ t.mul_(X)
            den = W.T @ V.pow_(beta - 1)
    if sparsity:
        den = den + sparsity
    ratio = num.div_(den.clamp_min(_MU_FLOOR))
    gamma = _gamma(beta)
    if gamma != 1:
        ratio.pow_(gamma)
    H.mul_(ratio)
    return H.masked_fill_(H < _floor(H.dtype), 0.0)


def _hals_sweeps(N: Tensor, G: Tensor, H: Tensor, sparsity: float, sweeps: int, chunk: int | None = None) -> Tensor:
    """HALS updates of ``H`` with ``W`` fixed, in place: each row ``k`` set to its non-negative
    least-squares optimum given the others, ``sweeps`` times over the rows.

    ``N = W^T X`` (..., K, T), ``G = W^T W`` (K, K), ``H`` (..., K, T). Frames are independent
    problems, so the rows are swept over chunks of frames of about 4 MB of ``H`` each: small enough
    to stay in cache, large enough that the per-row calls do not dominate.
    """
    K = G.shape[0]
    chunk = chunk or max(4096, 2**20 // K)
    diag = G.diagonal().clamp_min(_MU_FLOOR)
    for start in range(0, H.shape[-1], chunk):
        h, n = H[..., start:start + chunk], N[..., start:start + chunk]
        for _ in range(sweeps):
            for k in range(K):
                step = n[..., k, :] - G[k] @ h
                if sparsity:
                    step -= sparsity
                h[..., k, :].add_(step.div_(diag[k])).clamp_min_(0.0)
    return H


def _hals_w_sweeps(A: Tensor, B: Tensor, W: Tensor, sweeps: int) -> Tensor:
    """HALS updates of ``W`` with ``H`` fixed, in place, from ``A = X H^T`` (F, K) and
    ``B = H H^T`` (K, K): each column set to its non-negative least-squares optimum given the others."""
    diag = B.diagonal().clamp_min(_MU_FLOOR)
    for _ in range(sweeps):
        for k in range(W.shape[1]):
            W[:, k].add_((A[:, k] - W @ B[:, k]).div_(diag[k])).clamp_min_(0.0)
    return W


class _Scratch:
    """Work tensors of the MU for beta other than 2, shaped like a block and reused block after block
    and iteration after iteration: on the CPU every fresh tensor of a block's size is a fresh memory
    map, whose pages are faulted in again on first touch (measured in ``benchmarks/README.md``)."""

    def __init__(self) -> None:
        self._flat: dict[int, Tensor] = {}

    def get(self, slot: int, like: Tensor) -> Tensor:
        """An uninitialised tensor of ``like``'s shape, dtype and device (the same memory each call)."""
        flat = self._flat.get(slot)
        n = like.numel()
        if flat is None or flat.numel() < n or flat.dtype != like.dtype or flat.device != like.device:
            flat = self._flat[slot] = torch.empty(n, dtype=like.dtype, device=like.device)
        return flat[:n].view(like.shape)


class _Blocks:
    """The training data as a re-iterable sequence of ``(F, n)`` blocks, checked once."""

    def __init__(self, data, device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype
        if isinstance(data, Tensor):
            self.blocks: list[Tensor] | None = [self._prepare(data, "X")]
            self.source = None
        elif isinstance(data, Iterator):
            raise ValueError(
                "NMF reads the data once per iteration, so a one-shot iterator or generator cannot be "
                "used: pass a list of tensors, a DataLoader (shuffle=False) or an l2i.nmf.FrameBlocks"
            )
        elif isinstance(data, Iterable):
            self.blocks = None
            self.source = data
        else:
            raise ValueError(
                f"NMF data must be a tensor (freq, frames) or (batch, freq, frames), or an iterable of "
                f"them; got {type(data).__name__}"
            )

    def _prepare(self, block, name: str) -> Tensor:
        if not isinstance(block, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(block).__name__}")
        if block.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(block.shape)}): there are no frames to factorise")
        if block.ndim == 3:  # (batch, freq, frames): frames of all clips side by side
            block = block.permute(1, 0, 2).reshape(block.shape[1], -1)
        if block.ndim != 2:
            raise ValueError(
                f"{name} has shape {tuple(block.shape)}; expected (freq, frames) or (batch, freq, frames)"
            )
        if not block.is_floating_point():
            raise ValueError(f"{name} has dtype {block.dtype}; NMF needs a floating-point spectrogram")
        return block.to(self.device, self.dtype)

    def __iter__(self) -> Iterator[Tensor]:
        if self.blocks is not None:
            yield from self.blocks
            return
        # On a GPU, blocks the source keeps in host memory anyway (a cached FrameBlocks) are kept on
        # the device after the first pass, when they fit, rather than copied over on every iteration.
        kept = [] if self.device.type == "cuda" and getattr(self.source, "cache", False) else None
        budget = torch.cuda.mem_get_info(self.device)[0] / 4 if kept is not None else 0.0
        size = 0
        for i, block in enumerate(self.source):
            block = self._prepare(block, f"block {i} of the data")
            if kept is not None:
                size += 2 * block.numel() * block.element_size()  # and its transposed copy (Frobenius)
                if size > budget:
                    kept = None
                else:
                    kept.append(block)
            yield block
        if kept:
            self.blocks = kept


def _check_values(X: Tensor, name: str) -> None:
    """Frames present, finite and non-negative; ``X`` of any shape ``(..., freq, frames)``."""
    if X.shape[-1] == 0 or X.numel() == 0:
        raise ValueError(f"{name} has no frames (shape {tuple(X.shape)})")
    if not torch.isfinite(X).all():
        raise ValueError(
            f"{name} contains NaN or Inf: check the waveforms "
            "(l2i.audio.check_waveform) before computing spectrograms"
        )
    low = float(X.min())
    if low < 0:
        raise ValueError(
            f"NMF needs non-negative input, but {name} has values down to {low:.3g}: use log1p "
            "magnitudes (l2i.audio.Spectrogram) rather than dB or raw STFT values"
        )


class NMF:
    """Non-negative matrix factorisation ``X ~= W H`` by multiplicative updates.

    Book: chapter "Learning the dictionary".

    Parameters
    ----------
    n_components : int
        K, the number of spectral patterns in the dictionary.
    beta : float or {"frobenius", "kullback-leibler", "itakura-saito"}
        The beta-divergence: 2 (Frobenius), 1 (KL), 0 (Itakura-Saito) or any other number.
    sparsity : float
        L1 penalty on ``H``: the objective is ``D_beta(X | WH) + sparsity * sum(H)``.
    n_iter : int
        Number of iterations (one W update and one H update each).
    solver : {"mu", "hals"}
        Multiplicative updates (any beta) or, for the Frobenius loss only, HALS: each column of ``W``
        and row of ``H`` solved exactly in turn, ``sweeps`` times per product with ``X``.
    sweeps : int, optional
        HALS sweeps over ``W``'s columns and over ``H``'s rows per iteration (default: about
        ``1 + freq / (2 K)``, what one product with ``X`` costs in sweeps, after Gillis & Glineur).
    normalize : bool
        Rescale the columns of ``W`` to unit L2 norm after each update (``H`` takes the scale, so
        ``WH`` is unchanged). The L2I method expects a normalised dictionary.
    seed : int
        Seed of the random initialisation (drawn on the CPU, so equal on every device).
    device : str or torch.device, optional
        Where to compute; CUDA when available by default.
    dtype : torch.dtype
        Compute dtype (float32, or float64 for reference runs).
    progress : bool
        Show a progress bar.

    Attributes
    ----------
    W : Tensor
        ``(freq, K)`` dictionary after :meth:`fit`.
    loss_history : list of float
        Objective after each iteration (the first entry is at the initialisation).
    time_history : list of float
        Seconds since the iterations began, at each entry of ``loss_history``.
    spectrogram : Spectrogram or None
        The front end the dictionary was learnt on (given to :meth:`fit`); saved with it, so an
        interpreter rebuilds the same ``X``.

    Examples
    --------
    >>> nmf = NMF(n_components=32, n_iter=100).fit(X)        # X: (freq, frames) or (batch, freq, frames)
    >>> H = nmf.transform(X_new)                             # (batch, K, frames)
    """

    def __init__(
        self,
        n_components: int = 64,
        beta: float | str = "frobenius",
        sparsity: float = 0.0,
        n_iter: int = 200,
        normalize: bool = True,
        seed: int = 0,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        progress: bool = True,
        solver: str = "mu",
        sweeps: int | None = None,
    ):
        if int(n_components) < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        if sparsity < 0:
            raise ValueError(f"sparsity must be >= 0, got {sparsity}")
        if int(n_iter) < 0:
            raise ValueError(f"n_iter must be >= 0, got {n_iter}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if solver not in ("mu", "hals"):
            raise ValueError(f"solver must be 'mu' or 'hals', got {solver!r}")
        if sweeps is not None and int(sweeps) < 1:
            raise ValueError(f"sweeps must be at least 1, got {sweeps}")
        self.n_components = int(n_components)
        self.beta = _beta_value(beta)
        if solver == "hals" and self.beta != 2:
            raise ValueError(f"solver='hals' minimises the Frobenius loss (beta=2), not beta={self.beta:g}: "
                             "use solver='mu' for other beta-divergences")
        self.solver = solver
        self.sweeps = None if sweeps is None else int(sweeps)
        self.sparsity = float(sparsity)
        self.n_iter = int(n_iter)
        self.normalize = bool(normalize)
        self.seed = int(seed)
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = dtype
        self.progress = progress
        self.W: Tensor | None = None
        self.loss_history: list[float] = []
        self.time_history: list[float] = []
        self.spectrogram: Spectrogram | None = None
        self._sharded = False

    def __repr__(self) -> str:
        state = "fitted" if self.W is not None else "not fitted"
        return (
            f"NMF(n_components={self.n_components}, beta={self.beta:g}, sparsity={self.sparsity:g}, "
            f"n_iter={self.n_iter}, solver={self.solver!r}, device={self.device}; {state})"
        )

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        data,
        W: Tensor | None = None,
        H: Tensor | None = None,
        spectrogram: Spectrogram | dict | None = None,
        sharded: bool = False,
    ) -> NMF:
        """Learn the dictionary ``W`` from ``data``.

        Parameters
        ----------
        data : Tensor or iterable of Tensor
            ``(freq, frames)`` or ``(batch, freq, frames)``, or a re-iterable of such blocks (a list,
            a DataLoader with ``shuffle=False``, a :class:`FrameBlocks`) for data larger than memory.
        W, H : Tensor, optional
            Initial ``(freq, K)`` and ``(K, frames)`` factors (only with a single tensor); by default
            scikit-learn's 'random' scheme, ``|N(0, 1)| * sqrt(mean(X) / K)``.
        spectrogram : Spectrogram, optional
            The front end that made ``data`` (or its ``config()``), saved with the dictionary.
        sharded : bool
            Under ``torch.distributed`` (:mod:`l2i.distributed`), ``data`` is this rank's part of the
            whole, the parts in rank order (:func:`l2i.distributed.shard`): the statistics of the
            ``W`` update are all-reduced, and ``W`` is the one a single process fits on the whole.
        """
        self._fit(data, W, H, spectrogram, sharded)
        return self

    def fit_transform(self, X: Tensor, W: Tensor | None = None, H: Tensor | None = None) -> Tensor:
        """Fit on one tensor and return its activations ``H``: (K, frames) or (batch, K, frames), on
        ``X``'s device (the dictionary ``W`` stays on this model's device)."""
        if not isinstance(X, Tensor):
            raise ValueError("fit_transform takes one tensor; use fit() for an iterable of blocks")
        H_blocks = self._fit(X, W, H, None)
        H_all = H_blocks[0].to(X.device)
        if X.ndim == 3:
            B, _, T = X.shape
            return H_all.reshape(self.n_components, B, T).permute(1, 0, 2).contiguous()
        return H_all

    def _fit(self, data, W0, H0, spectrogram, sharded: bool = False) -> list[Tensor]:
        self._sharded = bool(sharded) and distributed.active()
        blocks = _Blocks(data, self.device, self.dtype)
        if (W0 is not None or H0 is not None) and blocks.source is not None:
            raise ValueError("initial W and H can only be given with a single tensor of data")
        # Pass 1: check every block and gather what the initialisation needs.
        n_freq, sizes, total, sq_norm = None, [], 0.0, 0.0
        for i, X in enumerate(blocks):
            _check_values(X, f"block {i} of the data")
            if n_freq is None:
                n_freq = X.shape[0]
            elif X.shape[0] != n_freq:
                raise ValueError(
                    f"block {i} has {X.shape[0]} frequency bins but block 0 has {n_freq}: "
                    "compute every spectrogram with the same Spectrogram"
                )
            sizes.append(X.shape[1])
            total += float(X.sum(dtype=torch.float64))
            sq_norm += float(X.pow(2).sum(dtype=torch.float64))
        if n_freq is None:
            raise ValueError("the data is empty: there is nothing to factorise")
        offset, n_frames = 0, sum(sizes)
        if self._sharded:  # the whole's totals, and where this rank's frames start in it
            every = [None] * distributed.world_size()
            torch.distributed.all_gather_object(every, (n_freq, sum(sizes)))
            if len({f for f, _ in every}) != 1:
                raise ValueError(f"the ranks' data have different numbers of frequency bins: {[f for f, _ in every]}")
            offset, n_frames = sum(n for _, n in every[: distributed.rank()]), sum(n for _, n in every)
            totals = distributed.all_reduce(torch.tensor([total, sq_norm], dtype=torch.float64))
            total, sq_norm = totals.tolist()
        if self.beta <= 0 and total == 0:
            raise ValueError("Itakura-Saito (beta <= 0) cannot factorise all-zero data")
        W, H_blocks = self._initial_factors(W0, H0, n_freq, sizes, total / (n_freq * n_frames), offset, n_frames)
        if self.solver == "hals":
            W, H_blocks = self._fit_hals(blocks, W, H_blocks, sq_norm)
        elif self.beta == 2:
            W, H_blocks = self._fit_frobenius(blocks, W, H_blocks, sq_norm)
        else:
            W, H_blocks = self._fit_beta(blocks, W, H_blocks)
        self.W = W
        self.spectrogram = Spectrogram(**spectrogram) if isinstance(spectrogram, dict) else spectrogram
        return H_blocks

    def _initial_factors(self, W0, H0, n_freq, sizes, mean, offset: int = 0, n_frames: int | None = None):
        K = self.n_components
        gen = torch.Generator().manual_seed(self.seed)
        scale = math.sqrt(mean / K) if mean > 0 else 1.0 / math.sqrt(K)
        if W0 is None:
            W0 = torch.randn(n_freq, K, generator=gen, dtype=self.dtype).abs_() * scale
        elif tuple(W0.shape) != (n_freq, K):
            raise ValueError(f"initial W must have shape {(n_freq, K)}, got {tuple(W0.shape)}")
        if H0 is None:
            # One draw over all frames, split afterwards: the same start however the data is blocked
            # (or sharded: each rank keeps its part of the whole's draw).
            H_all = torch.randn(n_frames or sum(sizes), K, generator=gen, dtype=self.dtype).abs_() * scale
            H_all = H_all[offset: offset + sum(sizes)]
            H_blocks = [h.T for h in torch.split(H_all, sizes)]
        elif tuple(H0.shape) != (K, sizes[0]):
            raise ValueError(f"initial H must have shape {(K, sizes[0])}, got {tuple(H0.shape)}")
        else:
            H_blocks = [H0]
        for name, M in [("W", W0)] + [("H", h) for h in H_blocks]:
            if (M < 0).any() or not torch.isfinite(M).all():
                raise ValueError(f"initial {name} must be finite and non-negative")
        W = W0.to(self.device, self.dtype).clone()
        H_blocks = [h.to(self.device, self.dtype).clone() for h in H_blocks]
        return W, H_blocks

    def _clock_start(self) -> float:
        """Start the clock of ``time_history`` (the objective's ``float()`` has synchronised a GPU)."""
        self.time_history = [0.0]
        return time.perf_counter()

    def _bar(self):
        return tqdm(total=self.n_iter, desc="NMF", disable=not self.progress or not distributed.is_main(), leave=False)

    def _reduced(self, statistic: Tensor) -> Tensor:
        """``statistic`` summed over the ranks when the data is sharded (itself otherwise)."""
        return distributed.all_reduce(statistic) if self._sharded else statistic

    def _frobenius_statistics(self, blocks: _Blocks, W: Tensor, Ht: list[Tensor]) -> tuple[Tensor, Tensor]:
        """``A = X H^T`` (F, K) and ``B = H H^T`` (K, K) over the blocks, ``H`` given transposed,
        (frames, K) per block; summed over the ranks when sharded."""
        K = self.n_components
        A = torch.zeros(W.shape[0], K, device=self.device, dtype=self.dtype)
        B = torch.zeros(K, K, device=self.device, dtype=self.dtype)
        for X, h in zip(blocks, Ht):
            A.addmm_(X, h)
            B.addmm_(h.T, h)
        return self._reduced(A), self._reduced(B)

    def _frobenius_loss(self, W: Tensor, A: Tensor, B: Tensor, sq_norm: float, H_blocks: list[Tensor]) -> float:
        """``0.5 ||X - WH||^2 + sparsity * sum(H)`` from the statistics, without forming ``WH``."""
        loss = 0.5 * sq_norm - float((W * A).sum(dtype=torch.float64))
        loss += 0.5 * float(((W.T @ W) * B).sum(dtype=torch.float64))
        if self.sparsity:
            l1 = torch.tensor(sum(float(h.sum(dtype=torch.float64)) for h in H_blocks), dtype=torch.float64)
            loss += self.sparsity * float(self._reduced(l1))
        return loss

    def _fit_frobenius(self, blocks: _Blocks, W: Tensor, H_blocks: list[Tensor], sq_norm: float):
        """Frobenius MU. H is stored transposed, (frames, K), so both products with X run in the
        layouts the BLAS is fastest at; the column scaling of W is folded into K x K matrices."""
        K, lam, floor = self.n_components, self.sparsity, _floor(self.dtype)
        Ht = [h.T.contiguous() for h in H_blocks]
        in_memory = blocks.blocks is not None
        XT_cache = [X.T.contiguous() for X in blocks] if in_memory else None
        n_max = max(h.shape[0] for h in Ht)
        buf_num = torch.empty(n_max, K, device=self.device, dtype=self.dtype)
        buf_den = torch.empty_like(buf_num)

        def statistics():
            return self._frobenius_statistics(blocks, W, Ht)

        def objective(A, B):
            return self._frobenius_loss(W, A, B, sq_norm, Ht)

        A, B = statistics()
        self.loss_history = [objective(A, B)]
        start = self._clock_start()
        with self._bar() as bar:
            for _ in range(self.n_iter):
                # W step: W <- W * (X H^T) / (W H H^T), with A = X H^T and B = H H^T
                den_W = (W @ B).clamp_min_(_MU_FLOOR)
                W.mul_(A.div_(den_W))
                W.masked_fill_(W < floor, 0.0)
                G = W.T @ W
                if self.normalize:
                    # Normalising W and scaling H by the norms s is folded into the H step:
                    # H_new = H * (X^T W) / (H (W^T W diag(1/s)) + lam), W stored as W / s.
                    s = W.norm(dim=0).clamp_min_(1e-30)
                    G.div_(s)
                A = torch.zeros_like(W)
                B = torch.zeros(K, K, device=self.device, dtype=self.dtype)
                for i, (X, h) in enumerate(zip(blocks, Ht)):
                    n = h.shape[0]
                    num, den = buf_num[:n], buf_den[:n]
                    XT = XT_cache[i] if in_memory else X.T
                    torch.mm(XT, W, out=num)
                    torch.mm(h, G, out=den)
                    if lam:
                        den.add_(lam)
                    den.clamp_min_(_MU_FLOOR)
                    h.mul_(num.div_(den))
                    h.masked_fill_(h < floor, 0.0)
                    A.addmm_(X, h)
                    B.addmm_(h.T, h)
                A, B = self._reduced(A), self._reduced(B)
                if self.normalize:
                    W.div_(s)
                self.loss_history.append(objective(A, B))
                self.time_history.append(time.perf_counter() - start)
                bar.update()
                bar.set_postfix(loss=f"{self.loss_history[-1]:.4g}", refresh=False)
        return W, [h.T.contiguous() for h in Ht]

    def _sweeps(self, n_freq: int) -> int:
        return self.sweeps if self.sweeps is not None else max(1, int(1 + n_freq / (2 * self.n_components)))

    def _fit_hals(self, blocks: _Blocks, W: Tensor, H_blocks: list[Tensor], sq_norm: float):
        """Frobenius HALS. Each iteration: ``sweeps`` sweeps over W's columns from ``A = X H^T`` and
        ``B = H H^T``, then per block ``N = W^T X`` and ``sweeps`` sweeps over H's rows; the products
        with X, the costly part, are shared by the sweeps."""
        K, lam, sweeps = self.n_components, self.sparsity, self._sweeps(W.shape[0])

        def statistics():
            return self._frobenius_statistics(blocks, W, [H.T for H in H_blocks])

        def objective(A, B):
            return self._frobenius_loss(W, A, B, sq_norm, H_blocks)

        A, B = statistics()
        self.loss_history = [objective(A, B)]
        start = self._clock_start()
        with self._bar() as bar:
            for _ in range(self.n_iter):
                _hals_w_sweeps(A, B, W, sweeps)
                if self.normalize:
                    s = W.norm(dim=0).clamp_min_(1e-30)
                    W.div_(s)
                    for H in H_blocks:
                        H.mul_(s.unsqueeze(1))
                G = W.T @ W
                A = torch.zeros_like(W)
                B = torch.zeros(K, K, device=self.device, dtype=self.dtype)
                for X, H in zip(blocks, H_blocks):
                    _hals_sweeps(W.T @ X, G, H, lam, sweeps)
                    A.addmm_(X, H.T)
                    B.addmm_(H, H.T)
                A, B = self._reduced(A), self._reduced(B)
                self.loss_history.append(objective(A, B))
                self.time_history.append(time.perf_counter() - start)
                bar.update()
                bar.set_postfix(loss=f"{self.loss_history[-1]:.4g}", refresh=False)
        return W, H_blocks

    def _fit_beta(self, blocks: _Blocks, W: Tensor, H_blocks: list[Tensor]):
        """MU for any beta other than 2: the reconstruction WH is needed block by block."""
        beta, lam, gamma = self.beta, self.sparsity, _gamma(self.beta)

        scratch = _Scratch()

        def statistics():
            A = torch.zeros_like(W)
            B = torch.zeros_like(W)
            loss = 0.0
            for X, H in zip(blocks, H_blocks):
                V = torch.mm(W, H, out=scratch.get(0, X)).clamp_min_(_MU_FLOOR)
                if beta == 1:
                    ratio = torch.div(X, V, out=scratch.get(1, X))
                    A.addmm_(ratio, H.T)
                    B.add_(H.sum(dim=1))
                    loss += _block_divergence(X, V, beta, ratio=ratio)
                else:
                    V_beta_1 = torch.pow(V, beta - 1, out=scratch.get(1, X))
                    A.addmm_(torch.pow(V, beta - 2, out=scratch.get(2, X)).mul_(X), H.T)
                    B.addmm_(V_beta_1, H.T)
                    loss += _block_divergence(X, V, beta, V_beta_1=V_beta_1)
                if lam:
                    loss += lam * float(H.sum(dtype=torch.float64))
            loss = float(self._reduced(torch.tensor(loss, dtype=torch.float64)))
            return self._reduced(A), self._reduced(B), loss

        A, B, loss = statistics()
        self.loss_history = [loss]
        start = self._clock_start()
        with self._bar() as bar:
            for _ in range(self.n_iter):
                ratio = A.div_(B.clamp_min_(_MU_FLOOR))
                if gamma != 1:
                    ratio.pow_(gamma)
                W.mul_(ratio)
                W.masked_fill_(W < _floor(W.dtype), 0.0)
                if self.normalize:
                    s = W.norm(dim=0).clamp_min_(1e-30)
                    W.div_(s)
                    for H in H_blocks:
                        H.mul_(s.unsqueeze(1))
                for X, H in zip(blocks, H_blocks):
                    _h_update(X, W, H, beta, lam, scratch)
                A, B, loss = statistics()
                self.loss_history.append(loss)
                self.time_history.append(time.perf_counter() - start)
                bar.update()
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        return W, H_blocks

    # ------------------------------------------------------------------ using a dictionary
    def _require_fitted(self) -> Tensor:
        if self.W is None:
            raise ValueError("this NMF has no dictionary yet: call fit() or NMF.load() first")
        return self.W

    def transform(self, X: Tensor, n_iter: int | None = None) -> Tensor:
        """Activations ``H`` of ``X`` with the dictionary fixed.

        Parameters
        ----------
        X : Tensor
            ``(freq, frames)`` or ``(batch, freq, frames)``, non-negative.
        n_iter : int, optional
            Number of H updates (default: the ``n_iter`` of this model).

        Returns
        -------
        Tensor
            ``(K, frames)`` or ``(batch, K, frames)`` on ``X``'s device.
        """
        W = self._require_fitted().to(self.device, self.dtype)  # W may have been assigned from elsewhere
        if not isinstance(X, Tensor) or X.ndim not in (2, 3):
            raise ValueError("transform takes a tensor of shape (freq, frames) or (batch, freq, frames)")
        self._check_frequencies(X)
        _check_values(X, "the spectrogram")
        out_device = X.device
        Xd = X.to(self.device, self.dtype)
        mean = float(Xd.mean()) if Xd.numel() else 0.0
        scale = math.sqrt(mean / self.n_components) if mean > 0 else 1.0 / math.sqrt(self.n_components)
        H = torch.full((*Xd.shape[:-2], self.n_components, Xd.shape[-1]), scale, device=self.device, dtype=self.dtype)
        n = self.n_iter if n_iter is None else int(n_iter)
        if self.solver == "hals":
            N, G = W.T @ Xd, W.T @ W
            for _ in range(n):
                _hals_sweeps(N, G, H, self.sparsity, self._sweeps(W.shape[0]))
        else:
            for _ in range(n):
                _h_update(Xd, W, H, self.beta, self.sparsity)
        return H.to(out_device)

    def reconstruct(self, H: Tensor) -> Tensor:
        """``W H``: ``(..., K, frames) -> (..., freq, frames)``."""
        W = self._require_fitted()
        if H.shape[-2] != self.n_components:
            raise ValueError(f"H has {H.shape[-2]} components but the dictionary has {self.n_components}")
        return W.to(H.device, H.dtype) @ H

    def _check_frequencies(self, X: Tensor) -> None:
        n_freq = self.W.shape[0]
        if X.shape[-2] != n_freq:
            hint = ""
            if self.spectrogram is not None:
                hint = f" (n_fft={self.spectrogram.n_fft})"
            raise ValueError(
                f"the dictionary has {n_freq} frequency bins but the spectrogram has {X.shape[-2]}: "
                f"compute the spectrogram with the dictionary's Spectrogram{hint} or learn a new dictionary"
            )

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        return {
            "n_components": self.n_components,
            "beta": self.beta,
            "sparsity": self.sparsity,
            "n_iter": self.n_iter,
            "normalize": self.normalize,
            "seed": self.seed,
            "solver": self.solver,
            "sweeps": self.sweeps,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Save the dictionary, its settings, its spectrogram's and its loss history (atomically,
        :func:`l2i.persistence.save_model`)."""
        W = self._require_fitted()
        front_end = None if self.spectrogram is None else self.spectrogram.config()
        return save_model(path, _FORMAT, _FORMAT_VERSION, {**self.config(), "spectrogram": front_end},
                          {"W": W}, {"loss": list(self.loss_history)})

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> NMF:
        """Load a dictionary written by :meth:`save` (``weights_only=True``: no code is run)."""
        payload = load_model(path, _FORMAT, _FORMAT_VERSION, "NMF dictionary")
        if payload.get("format_version", 1) == 1:  # W, its spectrogram and losses beside the config
            payload["state"] = {"W": payload.get("W")}
            payload["config"] = {**payload["config"], "spectrogram": payload.get("spectrogram")}
            payload["history"] = {"loss": payload.get("loss_history", [])}
        config, W = dict(payload["config"]), payload["state"].get("W")
        spectrogram = config.pop("spectrogram", None)
        if not isinstance(W, Tensor) or W.ndim != 2 or W.shape[1] != config.get("n_components"):
            raise CheckpointError(f"{path} holds a damaged dictionary: W does not match n_components")
        if (W < 0).any() or not torch.isfinite(W).all():
            raise CheckpointError(f"{path} holds a damaged dictionary: W has negative or non-finite values")
        model = cls(**config, device=device, progress=False)
        model.W = W.to(model.device, model.dtype)
        model.loss_history = list(payload["history"].get("loss", []))
        model.spectrogram = None if spectrogram is None else Spectrogram(**spectrogram)
        return model


class FrameBlocks:
    """Spectrogram frames of a dataset, in blocks of at most ``block_frames`` columns.

    A re-iterable input for :meth:`NMF.fit`: the clips' log1p spectrograms are laid side by side
    (NMF treats frames independently) and cut into ``(freq, n)`` blocks, in the same order on every
    pass. With ``cache=False`` nothing is kept and each pass recomputes the blocks, so datasets
    larger than memory can be factorised.

    Book: chapter "Learning the dictionary".

    Parameters
    ----------
    dataset : torch Dataset
        Yields examples whose first field is a waveform ``(samples,)`` (every l2i dataset does).
    spectrogram : l2i.audio.Spectrogram
        Front end; its ``sample_rate`` must match the dataset's.
    block_frames : int
        Largest number of frames in one block.
    cache : bool
        Keep the blocks in memory after the first pass.
    progress : bool
        Show a progress bar over the clips while they are read (on the first pass only when cached).
    """

    def __init__(self, dataset, spectrogram, block_frames: int = 8192, cache: bool = True, progress: bool = False):
        if block_frames < 1:
            raise ValueError(f"block_frames must be positive, got {block_frames}")
        self.dataset, self.spectrogram = dataset, spectrogram
        self.block_frames, self.cache = int(block_frames), cache
        self.progress = progress
        self._blocks: list[Tensor] | None = None

    def _generate(self) -> Iterator[Tensor]:
        pending, count = [], 0
        bar = tqdm(total=len(self.dataset), desc="spectrograms", unit="clip", leave=False,
                   disable=not self.progress or not distributed.is_main())
        for i in range(len(self.dataset)):
            bar.update()
            example = self.dataset[i]
            rate = getattr(example, "sample_rate", self.spectrogram.sample_rate)
            if rate != self.spectrogram.sample_rate:
                raise ValueError(
                    f"clip {i} is at {rate} Hz but the spectrogram is set for "
                    f"{self.spectrogram.sample_rate} Hz: load the dataset at that rate"
                )
            X = self.spectrogram(example[0])
            while X.shape[1]:
                take = min(self.block_frames - count, X.shape[1])
                pending.append(X[:, :take])
                count += take
                X = X[:, take:]
                if count == self.block_frames:
                    yield torch.cat(pending, dim=1)
                    pending, count = [], 0
        bar.close()
        if pending:
            yield torch.cat(pending, dim=1)

    def __iter__(self) -> Iterator[Tensor]:
        if self._blocks is not None:
            return iter(self._blocks)
        if not self.cache:
            return self._generate()
        self._blocks = list(self._generate())
        return iter(self._blocks)

    def frames(self) -> Tensor:
        """All frames as one ``(freq, frames)`` tensor (for data that fits in memory)."""
        return torch.cat(list(self), dim=1)


def compare_solvers(X: Tensor, n_components: int, n_iter: int = 100, sklearn_iterations: Sequence[int] = (5, 10, 20, 40, 80),
                    seed: int = 0, device: str | torch.device | None = None) -> dict[str, dict[str, list[float]]]:
    """The Frobenius loss against wall time of l2i's two solvers and scikit-learn's coordinate descent
    (on a float32 copy), from the same initial factors, on this machine: what to plot
    (:func:`l2i.plotting.plot_loss_against_time`) before choosing a solver.

    Book: chapter "Learning the dictionary". ``X`` is ``(freq, frames)``. l2i's curves are its
    ``loss_history`` against ``time_history``; scikit-learn's, one run per entry of
    ``sklearn_iterations`` (it reports no history), each loss measured as l2i's,
    ``0.5 ||X - WH||^2``.

    Returns
    -------
    dict
        ``{"l2i MU": {"seconds": [...], "loss": [...]}, "l2i HALS": ..., "scikit-learn cd": ...}``.
    """
    if not isinstance(X, Tensor) or X.ndim != 2:
        raise ValueError("compare_solvers takes one (freq, frames) tensor")
    import numpy as np
    from sklearn.decomposition import NMF as SkNMF

    _check_values(X, "the data")
    Xc = X.detach().to("cpu", torch.float64)
    gen = torch.Generator().manual_seed(seed)
    scale = math.sqrt(float(Xc.mean()) / n_components) if float(Xc.mean()) > 0 else 1.0 / math.sqrt(n_components)
    W0 = torch.randn(Xc.shape[0], n_components, generator=gen, dtype=torch.float64).abs_() * scale
    H0 = torch.randn(n_components, Xc.shape[1], generator=gen, dtype=torch.float64).abs_() * scale
    curves = {}
    for name, solver in (("l2i MU", "mu"), ("l2i HALS", "hals")):
        model = NMF(n_components, n_iter=n_iter, normalize=False, solver=solver, device=device, progress=False)
        model.fit_transform(Xc, W=W0, H=H0)
        curves[name] = {"seconds": list(model.time_history), "loss": list(model.loss_history)}
    seconds, losses = [0.0], [float(beta_divergence(Xc, W0 @ H0, 2))]
    X32 = Xc.numpy().astype(np.float32)
    for n in sklearn_iterations:
        sk = SkNMF(n_components, init="custom", solver="cd", max_iter=int(n), tol=0)
        start = time.perf_counter()
        W = sk.fit_transform(X32, W=W0.numpy().astype(np.float32), H=H0.numpy().astype(np.float32))
        seconds.append(time.perf_counter() - start)
        losses.append(float(beta_divergence(Xc, torch.from_numpy(W.astype(np.float64) @ sk.components_.astype(np.float64)), 2)))
    curves["scikit-learn cd"] = {"seconds": seconds, "loss": losses}
    return curves
