"""NMF speed: l2i against scikit-learn (and torchnmf where it installs), side by side in one run.

All peers factorise the same data: a 513 x 20000 spectrogram-like matrix (log1p of a non-negative
low-rank mixture plus noise, as NumPy makes it: float64), K=64, 100 Frobenius multiplicative updates
from the same initial factors, no early stopping. Each peer runs ``--repeats`` times, interleaved,
and the fastest run counts (the machine is shared: the minimum is the least disturbed run).

scikit-learn computes in the dtype it is given: float64 for this array. It is also run on a float32
copy (``sklearn_float32_s``), so that the dtype's share of the ratio is visible. l2i computes in
float32 on every device. Losses are all measured the same way, in float64 against the float64 data.

Usage::

    python benchmarks/nmf_speed.py --json            # one JSON object on stdout
    python benchmarks/nmf_speed.py --device cuda     # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from l2i.nmf import NMF, beta_divergence


def make_data(n_freq: int, n_frames: int, n_components: int, seed: int):
    """Spectrogram-like data and the shared initial factors (sklearn's 'random' scheme)."""
    rng = np.random.default_rng(seed)
    sources = rng.gamma(0.5, 1.0, (n_freq, 24)) * np.linspace(1.5, 0.2, n_freq)[:, None]
    activity = rng.gamma(0.3, 1.0, (24, n_frames))
    X = np.log1p(sources @ activity + 0.05 * rng.random((n_freq, n_frames)))
    avg = np.sqrt(X.mean() / n_components)
    W0 = np.abs(avg * rng.standard_normal((n_freq, n_components)))
    H0 = np.abs(avg * rng.standard_normal((n_components, n_frames)))
    return X, W0, H0


def run_l2i(X, W0, H0, n_iter, device):
    t = time.perf_counter()
    model = NMF(W0.shape[1], n_iter=n_iter, normalize=False, device=device, progress=False)
    H = model.fit_transform(torch.from_numpy(X), W=torch.from_numpy(W0), H=torch.from_numpy(H0))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, model.W.double().cpu() @ H.double().cpu()


def run_sklearn(X, W0, H0, n_iter, dtype):
    from sklearn.decomposition import NMF as SkNMF

    Xd, Wd, Hd = X.astype(dtype), W0.astype(dtype), H0.astype(dtype)
    t = time.perf_counter()
    model = SkNMF(W0.shape[1], init="custom", solver="mu", beta_loss="frobenius", max_iter=n_iter, tol=0)
    W = model.fit_transform(Xd, W=Wd, H=Hd)
    elapsed = time.perf_counter() - t
    return elapsed, torch.from_numpy(W.astype(np.float64) @ model.components_.astype(np.float64))


def run_torchnmf(X, W0, H0, n_iter, device):
    """torchnmf's MU fit, when the package is installed (it is optional)."""
    from torchnmf.nmf import NMF as TNMF

    Xt = torch.from_numpy(X).float().to(device)
    # torchnmf factorises V ~= H W^T with H (rows, K) and W (cols, K).
    model = TNMF(W=torch.from_numpy(H0.T.copy()).float(), H=torch.from_numpy(W0).float()).to(device)
    t = time.perf_counter()
    model.fit(Xt, beta=2, max_iter=n_iter, tol=0, verbose=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t
    with torch.no_grad():
        return elapsed, model().double().cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--freq", type=int, default=513)
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    X, W0, H0 = make_data(args.freq, args.frames, args.components, args.seed)
    Xt = torch.from_numpy(X)
    peers = {
        "l2i": lambda: run_l2i(X, W0, H0, args.iterations, device),
        "sklearn": lambda: run_sklearn(X, W0, H0, args.iterations, np.float64),
        "sklearn_float32": lambda: run_sklearn(X, W0, H0, args.iterations, np.float32),
    }
    try:
        import torchnmf  # noqa: F401

        peers["torchnmf"] = lambda: run_torchnmf(X, W0, H0, args.iterations, device)
    except ImportError:
        pass

    times: dict[str, list[float]] = {name: [] for name in peers}
    losses: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved, so a disturbance hits every peer alike
        for name, run in peers.items():
            elapsed, V = run()
            times[name].append(elapsed)
            losses[name] = beta_divergence(Xt, V, 2)

    result = {
        "shape": [args.freq, args.frames],
        "n_components": args.components,
        "iterations": args.iterations,
        "repeats": args.repeats,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "data_dtype": str(X.dtype),
    }
    for name in peers:
        result[f"{name}_s"] = round(min(times[name]), 4)
        result[f"{name}_all_s"] = [round(t, 4) for t in times[name]]
        result[f"{name}_loss"] = round(losses[name], 4)
    for name in peers:
        if name != "l2i":
            result[f"ratio_vs_{name}"] = round(result[f"{name}_s"] / result["l2i_s"], 3)
    result["loss_rel_diff_vs_sklearn"] = float(
        f"{abs(losses['l2i'] - losses['sklearn']) / losses['sklearn']:.3g}"
    )
    result["torchnmf"] = "installed" if "torchnmf" in peers else "not installed"
    result["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
