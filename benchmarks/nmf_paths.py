"""Two paths inside l2i's NMF, each timed against itself switched off, side by side in one run.

- ``floor`` (CPU): entries below ``tiny ** (1/3)`` are set to 0 after each update. Switched off
  (the floor monkeypatched to 0), unused entries of the scenes dictionary's ``W`` and ``H`` decay into
  float32 subnormal numbers, which x86 CPUs multiply slowly. Data: the frames of the book's scenes
  training split (``artifacts.SCENES``), its K and iteration count.
- ``resident`` (GPU only): a cached :class:`l2i.nmf.FrameBlocks` is kept on the GPU after the first
  pass; switched off (the same blocks in a plain list), they are copied over on every iteration.
  Data: ESC-50's size, 1,200 clips of 431 frames (513 bins), random spectrogram-like values.

Runs are interleaved ``--repeats`` times and the fastest counts. Usage::

    python benchmarks/nmf_paths.py --json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

import l2i.nmf as nmf_module
from l2i.book import artifacts
from l2i.nmf import NMF, FrameBlocks


class _HostCached(list):
    """Blocks held in host memory, marked as such (what a cached FrameBlocks is)."""

    cache = True


def _timed(fit) -> tuple[float, NMF]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    model = fit()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t, model


def floor_case(repeats: int, iterations: int | None = None) -> dict:
    recipe = artifacts.SCENES
    iterations = recipe.nmf_iter if iterations is None else iterations
    X = FrameBlocks(artifacts.datasets(recipe)["train"], artifacts.spectrogram(recipe)).frames()
    floor = nmf_module._floor
    runs = {"on": [], "off": []}
    for _ in range(repeats):
        for name in runs:
            nmf_module._floor = floor if name == "on" else (lambda dtype: 0.0)
            try:
                elapsed, model = _timed(lambda: NMF(recipe.n_components, n_iter=iterations, device="cpu", progress=False).fit(X))
            finally:
                nmf_module._floor = floor
            tiny = torch.finfo(model.W.dtype).tiny
            runs[name].append((elapsed, model.loss_history[-1], int(((model.W > 0) & (model.W < tiny)).sum())))
    return {
        "data": list(X.shape), "n_components": recipe.n_components, "iterations": iterations,
        **{f"floor_{k}_s": round(min(r[0] for r in v), 2) for k, v in runs.items()},
        **{f"floor_{k}_loss": round(v[-1][1], 4) for k, v in runs.items()},
        **{f"floor_{k}_subnormal_W_entries": v[-1][2] for k, v in runs.items()},
        "speedup": round(min(r[0] for r in runs["off"]) / min(r[0] for r in runs["on"]), 2),
    }


def resident_case(repeats: int, iterations: int = 50) -> dict:
    gen = torch.Generator().manual_seed(0)
    blocks = [torch.rand(513, 8192, generator=gen).pow_(4) for _ in range(63)]  # 516,096 frames
    runs = {"resident": [], "copied_each_pass": []}
    for _ in range(repeats):
        for name in runs:
            source = _HostCached(blocks) if name == "resident" else list(blocks)
            elapsed, _ = _timed(lambda: NMF(100, n_iter=iterations, device="cuda", progress=False).fit(source))
            runs[name].append(elapsed)
    return {
        "frames": 63 * 8192, "n_components": 100, "iterations": iterations, "device": torch.cuda.get_device_name(),
        **{f"{k}_s": round(min(v), 2) for k, v in runs.items()},
        "speedup": round(min(runs["copied_each_pass"]) / min(runs["resident"]), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=None, help="of the floor case (default: the scenes recipe's)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU case even where there is a GPU")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = {"cpu": platform.processor() or platform.machine(), "cpu_threads": torch.get_num_threads(), "floor": floor_case(args.repeats, args.iterations)}
    if torch.cuda.is_available() and not args.no_gpu:
        out["resident"] = resident_case(args.repeats)
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
