"""NMF speed: l2i against scikit-learn (and torchnmf where it installs), side by side in one run.

All peers factorise the same data: a 513 x 20000 spectrogram-like matrix (log1p of a non-negative
low-rank mixture plus noise, as NumPy makes it: float64), K=64, 100 Frobenius multiplicative updates
from the same initial factors, no early stopping. Each peer runs ``--repeats`` times, interleaved,
and the fastest run counts (the machine is shared: the minimum is the least disturbed run).

scikit-learn computes in the dtype it is given: float64 for this array. It is also run on a float32
copy (``sklearn_float32_s``), so that the dtype's share of the ratio is visible. l2i computes in
float32 on every device. Losses are all measured the same way, in float64 against the float64 data.

``--to-loss``: time to a given loss instead, which is what a user waits for. For each shape (the
one above; the book's scenes, 129 x 100,800 frames, K = 32; ESC-50's, 513 x 516,096, K = 100) and
each target loss (the loss scikit-learn's coordinate descent reaches at its default tolerance, and
the loss of 200 of l2i's multiplicative updates), every method starts from the same factors: l2i's
HALS and MU, scikit-learn's ``cd`` and ``mu`` on float32 and float64, torchnmf. A method's time to
a target is the wall time of a run with the fewest iterations that reaches it (found by doubling,
then bisection to 5%), the fastest of ``--repeats`` such runs, interleaved across the methods;
every loss is measured the same way, in float64 against the float64 data. Also one KL case
(beta = 1, where only multiplicative updates apply) at the first shape.

Usage::

    python benchmarks/nmf_speed.py --json            # one JSON object on stdout
    python benchmarks/nmf_speed.py --device cuda     # on a GPU
    python benchmarks/nmf_speed.py --to-loss --json > benchmarks/results/nmf_time_to_loss_cpu.jsonl
    python benchmarks/nmf_speed.py --to-loss --shapes speed book esc50 --device cuda --json
    python benchmarks/nmf_speed.py --to-loss --only-kl --json      # the KL case alone
    python benchmarks/nmf_speed.py --to-loss --shapes esc50 --no-kl --targets l2i_mu_200 \
        --methods l2i_hals sklearn_cd_float32 --max-seconds 300 --json   # a part, where all is too long
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
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


def run_l2i(X, W0, H0, n_iter, device, solver="mu", beta=2):
    t = time.perf_counter()
    model = NMF(W0.shape[1], beta=beta, n_iter=n_iter, normalize=False, device=device, progress=False, solver=solver)
    H = model.fit_transform(torch.from_numpy(X), W=torch.from_numpy(W0), H=torch.from_numpy(H0))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, model.W.double().cpu() @ H.double().cpu()


def run_sklearn(X, W0, H0, n_iter, dtype, solver="mu", beta=2, tol=0.0):
    from sklearn.decomposition import NMF as SkNMF

    Xd, Wd, Hd = X.astype(dtype), W0.astype(dtype), H0.astype(dtype)
    t = time.perf_counter()
    model = SkNMF(W0.shape[1], init="custom", solver=solver, beta_loss=beta, max_iter=n_iter, tol=tol)
    W = model.fit_transform(Xd, W=Wd, H=Hd)
    elapsed = time.perf_counter() - t
    return elapsed, torch.from_numpy(W.astype(np.float64) @ model.components_.astype(np.float64))


def run_torchnmf(X, W0, H0, n_iter, device, beta=2):
    """torchnmf's MU fit, when the package is installed (it is optional)."""
    from torchnmf.nmf import NMF as TNMF

    Xt = torch.from_numpy(X).float().to(device)
    # torchnmf factorises V ~= H W^T with H (rows, K) and W (cols, K).
    model = TNMF(W=torch.from_numpy(H0.T.copy()).float(), H=torch.from_numpy(W0).float()).to(device)
    t = time.perf_counter()
    model.fit(Xt, beta=beta, max_iter=n_iter, tol=0, verbose=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t
    with torch.no_grad():
        return elapsed, model().double().cpu()


SHAPES = {"speed": (513, 20000, 64), "book": (129, 100800, 32), "esc50": (513, 516096, 100)}
METHODS = ("l2i_mu", "l2i_hals", "sklearn_cd_float32", "sklearn_cd_float64", "sklearn_mu_float32",
           "sklearn_mu_float64", "torchnmf")
TARGETS = ("sklearn_cd_default", "l2i_mu_200")


def first_reaching(run, loss_of, target: float, n_max: int, max_seconds: float):
    """The fewest iterations whose run reaches ``target`` (doubling, then bisection to 5%), and the
    (iterations, seconds, loss) of every run tried: the loss-against-time curve."""
    curve, n, hi = [], 1, None
    while n <= n_max:
        seconds, V = run(n)
        curve.append((n, round(seconds, 4), loss_of(V)))
        if curve[-1][2] <= target:
            hi = n
            break
        if seconds > max_seconds:
            break
        n *= 2
    if hi is None:
        return None, curve
    lo = hi // 2 if hi > 1 else 0
    while hi - lo > max(1, hi // 20):
        mid = (lo + hi) // 2
        seconds, V = run(mid)
        curve.append((mid, round(seconds, 4), loss_of(V)))
        lo, hi = (lo, mid) if curve[-1][2] <= target else (mid, hi)
    return hi, sorted(curve)


def time_to_loss(args, device) -> dict:
    """Every method's time to each target loss, per shape (see the module's docstring)."""
    cases = [] if args.only_kl else [(name, 2) for name in args.shapes]
    cases += [("speed", 1)] if "speed" in args.shapes and args.kl else []
    out = {"device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
           "cpu_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "repeats": args.repeats, "cases": []}
    for shape, beta in cases:
        F, T, K = SHAPES[shape]
        X, W0, H0 = make_data(F, T, K, args.seed)
        Xt = torch.from_numpy(X)

        def loss_of(V):
            return float(beta_divergence(Xt, V, beta))

        methods = {"l2i_mu": lambda n: run_l2i(X, W0, H0, n, device, "mu", beta)}
        if beta == 2:
            methods["l2i_hals"] = lambda n: run_l2i(X, W0, H0, n, device, "hals", beta)
            methods["sklearn_cd_float32"] = lambda n: run_sklearn(X, W0, H0, n, np.float32, "cd", beta)
            methods["sklearn_cd_float64"] = lambda n: run_sklearn(X, W0, H0, n, np.float64, "cd", beta)
        methods["sklearn_mu_float32"] = lambda n: run_sklearn(X, W0, H0, n, np.float32, "mu", beta)
        methods["sklearn_mu_float64"] = lambda n: run_sklearn(X, W0, H0, n, np.float64, "mu", beta)
        try:
            import torchnmf  # noqa: F401

            methods["torchnmf"] = lambda n: run_torchnmf(X, W0, H0, n, device, beta)
        except ImportError:
            pass
        if args.methods:
            methods = {name: run for name, run in methods.items() if name in args.methods}
        targets = {}
        if "l2i_mu_200" in args.targets:
            targets["l2i_mu_200"] = loss_of(run_l2i(X, W0, H0, 200, device, "mu", beta)[1])
        if beta == 2 and "sklearn_cd_default" in args.targets:  # cd, tol 1e-4, at most 200 iterations
            seconds, V = run_sklearn(X, W0, H0, 200, np.float64, "cd", beta, tol=1e-4)
            targets = {"sklearn_cd_default": loss_of(V), **targets}
        for target_name, target in targets.items():
            case = {"shape": [F, T], "n_components": K, "beta": beta, "target": target_name,
                    "target_loss": round(target, 4), "methods": {}}
            found = {}
            for name, run in methods.items():
                found[name], curve = first_reaching(run, loss_of, target, args.max_iter, args.max_seconds)
                case["methods"][name] = {"iterations": found[name], "curve": curve, "all_s": []}
            for _ in range(args.repeats):  # interleaved: a disturbance hits every method alike
                for name, run in methods.items():
                    if found[name] is not None:
                        case["methods"][name]["all_s"].append(round(run(found[name])[0], 4))
            for name, m in case["methods"].items():
                m["seconds"] = min(m["all_s"]) if m["all_s"] else None
            peers = {n: m["seconds"] for n, m in case["methods"].items() if not n.startswith("l2i") and m["seconds"]}
            best = min(peers, key=peers.get) if peers else None
            l2i = min((m["seconds"] for n, m in case["methods"].items() if n.startswith("l2i") and m["seconds"]), default=None)
            case["fastest_peer"] = best
            case["l2i_speedup_vs_fastest_peer"] = round(peers[best] / l2i, 3) if best and l2i else None
            out["cases"].append(case)
            print(json.dumps(case), flush=True)  # one line per case as it ends: a stopped run keeps them
            print(f"{shape} beta={beta} target {target_name}: " + ", ".join(
                f"{n} {m['seconds']} s ({m['iterations']} it)" for n, m in case["methods"].items()), file=sys.stderr, flush=True)
    return out


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
    parser.add_argument("--to-loss", action="store_true", help="time to a target loss (see above)")
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=["speed", "book"])
    parser.add_argument("--max-iter", type=int, default=4096, help="--to-loss: give up on a method beyond this")
    parser.add_argument("--no-kl", dest="kl", action="store_false", help="--to-loss: leave out the KL case")
    parser.add_argument("--only-kl", action="store_true", help="--to-loss: the KL case alone")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="--to-loss: or after a run this long")
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="--to-loss: these methods only (default: all)")
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS),
                        help="--to-loss: these target losses only (default: both)")
    args = parser.parse_args()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.to_loss:
        result = time_to_loss(args, device)
        del result["cases"]  # printed one per line already
        print(json.dumps(result))
        return
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
