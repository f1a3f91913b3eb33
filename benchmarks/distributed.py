"""One process against several, on the same data: dictionary learning and interpreter training.

The book's scenes recipe (``l2i.book.recipes.SCENES``): its classifier (trained once, cached), then
for each process count, in one run, side by side: ``NMF.fit(sharded=True)`` over the training
clips split across the ranks, and ``Interpreter.fit`` under ``DistributedDataParallel`` with the
same global batch (``--batch`` divided by the process count). Processes are started with
``torch.multiprocessing`` (gloo on the CPU; on one GPU several processes share it through gloo,
which NCCL does not allow); the threads of the machine are divided between them, so every run
uses the same cores. Reported per process count: seconds of the NMF fit, its final loss, seconds
per interpreter epoch (training and validation), the epoch kept and its validation fidelity, test
fidelity; and how far each dictionary is from the one-process one.

Usage::

    python benchmarks/distributed.py --json > benchmarks/results/distributed_cpu.json
    python benchmarks/distributed.py --json --device cuda --processes 1 2   # one GPU, shared
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, args, recipe, classifier, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(max(1, args.threads // world))
    from torch.utils.data import Subset

    from l2i import distributed
    from l2i.book import artifacts
    from l2i.interpreter import Interpreter
    from l2i.nmf import NMF, FrameBlocks

    if world > 1:
        distributed.setup(backend="gloo", timeout_s=600)
    data = artifacts.datasets(recipe)
    spec = artifacts.spectrogram(recipe)
    part = distributed.shard(len(data["train"]))
    blocks = FrameBlocks(Subset(data["train"], part), spec)
    blocks.frames()  # spectrograms computed before the clock starts: the fit is what is timed
    distributed.barrier()
    start = time.perf_counter()
    nmf = NMF(recipe.n_components, n_iter=recipe.nmf_iter, seed=recipe.seed, device=args.device, progress=False)
    nmf.fit(blocks, spectrogram=spec, sharded=True)
    nmf_seconds = time.perf_counter() - start

    model = classifier.to(args.device)
    torch.manual_seed(recipe.seed)
    interp = Interpreter(model, list(recipe.layers), nmf, classes=tuple(data["train"].classes))
    stamps = [time.perf_counter()]
    history = interp.fit(
        data["train"], data["val"], epochs=args.epochs, batch_size=args.batch // world, lr=recipe.interpreter_lr,
        lam_rec=recipe.lam_rec, augment=artifacts.interpreter_augment(recipe), seed=recipe.seed, progress=False,
        on_epoch=lambda *_: stamps.append(time.perf_counter()),
    )
    test_fidelity = interp.fidelity(data["test"])
    if distributed.is_main():
        epoch_seconds = [b - a for a, b in zip(stamps, stamps[1:])]
        torch.save({"W": nmf.W.cpu(), "row": {
            "processes": world, "threads_per_process": max(1, args.threads // world),
            "nmf_seconds": round(nmf_seconds, 2), "nmf_loss": nmf.loss_history[-1],
            "epoch_seconds": round(sum(epoch_seconds) / len(epoch_seconds), 2),
            "best_epoch": history.best_epoch, "val_fidelity": history.best_val_fidelity,
            "test_fidelity": round(test_fidelity, 4),
        }}, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=8, help="interpreter epochs (the recipe trains 20)")
    parser.add_argument("--batch", type=int, default=32, help="global batch, divided between the processes")
    parser.add_argument("--n-per-class", type=int, help="training clips per class (default: the recipe's 100)")
    parser.add_argument("--nmf-iter", type=int, help="NMF iterations (default: the recipe's 200)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="divided between the processes")
    args = parser.parse_args()

    from l2i.book import artifacts
    from l2i.book.recipes import SCENES

    recipe = SCENES.with_(**{k: v for k, v in (("n_per_class", args.n_per_class), ("nmf_iter", args.nmf_iter)) if v})
    classifier, _ = artifacts.classifier(recipe, progress=False)  # trained (or read from the cache) once, untimed
    rows, dictionaries = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for world in args.processes:
            out = os.path.join(tmp, f"{world}.pt")
            mp.spawn(_worker, args=(world, _free_port(), args, recipe, classifier, out), nprocs=world)
            result = torch.load(out, weights_only=True)
            dictionaries[world] = result["W"]
            rows.append(result["row"])
    first = dictionaries[args.processes[0]]
    for row in rows:
        row["W_max_abs_difference"] = float((dictionaries[row["processes"]] - first).abs().max())
    report = {
        "command": "python benchmarks/distributed.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                    "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                    "torch": torch.__version__},
        "recipe": {"dataset": "scenes", "n_per_class": recipe.n_per_class, "nmf_iter": recipe.nmf_iter}, "epochs": args.epochs, "global_batch": args.batch, "runs": rows,
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for row in rows:
            print(row)


if __name__ == "__main__":
    main()
