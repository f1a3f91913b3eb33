"""How long the chapter "ESC-50 on a GPU" takes: the paper-scale recipe, timed stage by stage.

ESC-50 cannot be downloaded where this project is built, so the clips are fabricated in its layout
and at its size (50 classes x 40 clips of 5 s at 44.1 kHz, five folds; ``meta/esc50.csv`` and
``audio/*.wav``): each class a band of noise and a tone at its own frequency. The *content* says
nothing about ESC-50's accuracy or metrics; the *sizes* are ESC-50's, so the times are the times
the chapter's steps take on real data of that size on the same machine.

Stages, each with :data:`l2i.book.artifacts.ESC50_PAPER`'s settings except the epoch counts
(``--classifier-epochs``, ``--interpreter-epochs``), which are cut to measure seconds per epoch:

- the NMF dictionary (K = 100, 300 iterations, full), the classifier, the interpreter with and
  without the input-fidelity term, per epoch;
- seconds per explanation of every method of the chapter's benchmark (``baselines.methods``), on
  ``--eval-clips`` clips of each evaluation set.

From those it estimates the chapter's time at the full epoch counts (60 classifier epochs, 35 for
each interpreter) and 100 clips per evaluation set: an estimate built from measured rates, labelled
as one. Usage::

    python benchmarks/esc50_scale.py --json                     # on the GPU when there is one
    python benchmarks/esc50_scale.py --clips-per-class 2 --classes 5 --eval-clips 1   # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch


def _write_clip(args) -> None:
    import soundfile as sf

    path, label, n_classes, rate, seconds, seed = args
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = 200.0 * 2 ** (4.5 * label / max(1, n_classes))  # 200 Hz to about 4.5 octaves up
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spectrum *= np.exp(-0.5 * (np.log2(np.maximum(freqs, 1.0) / (2 * f0)) / 0.3) ** 2)  # a band an octave above
    noise = np.fft.irfft(spectrum, n)
    clip = 0.3 * np.sin(2 * np.pi * f0 * t) * (rng.random() > 0.2) + noise / (np.abs(noise).max() + 1e-9) * 0.3
    sf.write(path, clip.astype(np.float32), rate, subtype="PCM_16")


def fabricate(
    root: Path, n_classes: int, clips_per_class: int, rate: int = 44100, seconds: float = 5.0, workers: int | None = None
) -> Path:
    """ESC-50's layout under ``root``: ``meta/esc50.csv`` and ``audio/{fold}-{id}-A-{target}.wav``,
    written by ``workers`` processes (default: up to 16; 1 writes them in this process)."""
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(exist_ok=True)
    rows, jobs = [], []
    for target in range(n_classes):
        for i in range(clips_per_class):
            fold = 1 + i % 5
            name = f"{fold}-{1000 * target + i}-A-{target}.wav"
            rows.append({"filename": name, "fold": fold, "target": target, "category": f"class{target:02d}",
                         "esc10": target < 10, "src_file": 1000 * target + i, "take": "A"})
            jobs.append((root / "audio" / name, target, n_classes, rate, seconds, 1000 * target + i))
    workers = min(16, os.cpu_count() or 1) if workers is None else workers
    if workers <= 1:
        for job in jobs:
            _write_clip(job)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_clip, jobs, chunksize=16))
    with open(root / "meta" / "esc50.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--clips-per-class", type=int, default=40)
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--interpreter-epochs", type=int, default=2)
    parser.add_argument("--eval-clips", type=int, default=4, help="clips per evaluation set for the per-method timing")
    parser.add_argument("--slime-samples", type=int, default=1000, help="SLIME's samples per explanation (1000: the chapter's)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the clips and the cache go (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="l2i-esc50-scale-"))
    os.environ["L2I_ESC50"] = str(work / "esc50")
    os.environ["L2I_CACHE"] = str(work / "cache")
    from l2i import baselines
    from l2i.book import artifacts
    from l2i.datasets import evaluation_sets
    from l2i.metrics import compare
    from l2i.models import accuracy

    say = (lambda *a: None) if args.json else print
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = {
        "slime_samples": args.slime_samples,
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(), "torch": torch.__version__,
        "classes": args.classes, "clips": args.classes * args.clips_per_class,
    }
    seconds = {}

    t = time.perf_counter()
    fabricate(work / "esc50", args.classes, args.clips_per_class)
    seconds["fabricate"] = time.perf_counter() - t

    recipe = artifacts.ESC50_PAPER.with_(classifier_epochs=args.classifier_epochs, interpreter_epochs=args.interpreter_epochs)
    t = time.perf_counter()
    data = artifacts.datasets(recipe)
    seconds["datasets"] = time.perf_counter() - t
    out["split_sizes"] = {k: len(v) for k, v in data.items()}
    say("splits", out["split_sizes"])

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    artifacts.dictionary(recipe)
    _sync()
    seconds["dictionary"] = time.perf_counter() - t
    say(f"dictionary {seconds['dictionary']:.1f} s")

    t = time.perf_counter()
    model, history = artifacts.classifier(recipe)
    _sync()
    seconds["classifier_per_epoch"] = (time.perf_counter() - t) / args.classifier_epochs
    out["classifier_val_accuracy"] = history.best_val_accuracy
    say(f"classifier {seconds['classifier_per_epoch']:.1f} s / epoch")

    interpreters = {}
    for name, r in (("interpreter", recipe), ("interpreter_input_fidelity", recipe.with_(lam_in=1.0))):
        t = time.perf_counter()
        interpreters[name] = artifacts.interpreter(r, model)
        _sync()
        seconds[f"{name}_per_epoch"] = (time.perf_counter() - t) / args.interpreter_epochs
        say(f"{name} {seconds[f'{name}_per_epoch']:.1f} s / epoch")
    l2i, l2i_in = interpreters["interpreter"], interpreters["interpreter_input_fidelity"]
    if device == "cuda":
        out["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30

    model.to(device)
    sets = evaluation_sets(data["test"], n=args.eval_clips)
    methods = baselines.methods(l2i, input_fidelity=l2i_in, slime_samples=args.slime_samples)
    per_method = {}
    t = time.perf_counter()
    for set_name, subset in sets.items():
        for method, res in compare(methods, l2i.classify, subset, batch_size=16).items():
            per_method.setdefault(method, []).append(res["seconds_per_explanation"])
    seconds["evaluation_measured"] = time.perf_counter() - t
    out["seconds_per_explanation"] = {m: float(np.mean(v)) for m, v in per_method.items()}
    say("seconds per explanation", {m: round(v, 3) for m, v in out["seconds_per_explanation"].items()})

    full = artifacts.ESC50_PAPER
    scale_eval = 100 / args.eval_clips
    estimate = {
        "dictionary": seconds["dictionary"],
        "classifier": full.classifier_epochs * seconds["classifier_per_epoch"],
        "interpreters": full.interpreter_epochs * (seconds["interpreter_per_epoch"] + seconds["interpreter_input_fidelity_per_epoch"]),
        "benchmark_100_per_set": seconds["evaluation_measured"] * scale_eval,
    }
    out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    out["estimated_chapter_minutes"] = {k: round(v / 60, 1) for k, v in estimate.items()}
    out["estimated_chapter_minutes"]["total"] = round(sum(estimate.values()) / 60, 1)
    out["test_accuracy"] = accuracy(model, data["test"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
