"""Where L2I's mask is applied, chosen on validation data: the log1p magnitude (the original
method) against the magnitude (``Interpreter.explain(..., domain="magnitude")``).

Both interpreters of each dataset (the original loss and with the input-fidelity term) explain
validation clips and mixtures, drawn with another seed than anything the benchmark or the book
scores, in both domains; every metric of :func:`l2i.metrics.evaluate`, threshold 0.2. The test
sets of ``benchmarks/interpretation.py`` are not touched: this is where the choice was made.

Usage::

    python benchmarks/mask_domain.py --json > benchmarks/results/mask_domain.jsonl   # 13 s with a warm cache
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import torch

from l2i import artifacts
from l2i.datasets import evaluation_sets
from l2i.metrics import compare

DOMAINS = ("log1p", "magnitude")
SEED = 11  # evaluation_sets draws the benchmark's sets with seed 1


def validation_sets(recipe, n: int) -> dict:
    """``{setting: dataset}`` from the recipe's validation split."""
    val = artifacts.datasets(recipe)["val"]
    if recipe.dataset == "fsdd":
        return {"FSDD mix 0 dB": evaluation_sets(val, n, distinct=("label", "speaker"), seed=SEED)["mix 0 dB"]}
    sets = evaluation_sets(val, n, seed=SEED)
    return {"scenes": sets["clips"], **{f"scenes {k}": sets[k] for k in ("mix 0 dB", "mix 0.8/0.2", "noise 0 dB")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per setting (no progress bars)")
    parser.add_argument("--n", type=int, default=40, help="clips or mixtures per setting")
    parser.add_argument("--threshold", type=float, default=0.2)
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    for recipe in (artifacts.SCENES, artifacts.DIGITS):
        model, _ = artifacts.classifier(recipe, progress=not args.json)
        interpreters = {
            "L2I": artifacts.interpreter(recipe, model, progress=not args.json),
            "L2I + input fidelity": artifacts.interpreter(recipe.with_(lam_in=1.0), model, progress=not args.json),
        }
        methods = {f"{name}, {domain}": partial(interp.explain, domain=domain)
                   for name, interp in interpreters.items() for domain in DOMAINS}
        classify = interpreters["L2I"].classify
        for setting, data in validation_sets(recipe, args.n).items():
            results = compare(methods, classify, data, threshold=args.threshold, progress=not args.json)
            keep = ("FF", "Fid-In", "AD", "SPS", "SI-SDRi")
            rounded = {m: {k: round(r[k], 4) for k in keep if k in r} for m, r in results.items()}
            record = {"setting": setting, "split": "val", "seed": SEED, "n": len(data), "threshold": args.threshold,
                      "methods": rounded}
            print(json.dumps(record) if args.json else json.dumps(record, indent=1), flush=True)
    print(json.dumps({"total_seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
