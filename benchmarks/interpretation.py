"""Interpretation benchmark: every metric of l2i.metrics on held-out data, as JSON.

For each dataset it trains what it needs (or reuses the cache of l2i.artifacts): the dictionary,
the reference classifier, and two interpreters, the original L2I loss and the one with the
input-fidelity term. It then reports, on the test split (never used for any choice):

* classifier test accuracy;
* for each interpreter: fidelity, FF, Fid-In, AI, AD, AG, SPS, COMP, components kept, seconds per
  explanation, on the test clips;
* on two-class mixtures (0 dB) of test clips (of validation clips of two different speakers for
  FSDD, whose test split is a single speaker): SI-SDR of the interpretation for each source's class
  against that source, and its improvement over the mixture (SI-SDRi).

Usage::

    python benchmarks/interpretation.py --json                  # both datasets, one JSON object each
    python benchmarks/interpretation.py --json --datasets scenes
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from l2i import artifacts
from l2i.datasets import Mixtures
from l2i.metrics import evaluate
from l2i.models import accuracy

RECIPES = {"scenes": artifacts.SCENES, "fsdd": artifacts.DIGITS}


def run(name: str, lam_in: float, threshold: float, n_mixtures: int, progress: bool) -> dict:
    recipe = RECIPES[name]
    start = time.perf_counter()
    data = artifacts.datasets(recipe)
    model, history = artifacts.classifier(recipe, progress=progress)
    # FSDD's test split is one (unseen) speaker: mixtures of two speakers come from the validation
    # takes of the four others, as in the chapter "Real recordings".
    mix_split = "val" if name == "fsdd" else "test"
    distinct = ("label", "speaker") if name == "fsdd" else ("label",)
    mixtures = Mixtures(data[mix_split], n_mixtures=n_mixtures, snr_db=0.0, distinct=distinct, seed=1)
    out = {
        "dataset": name,
        "threshold": threshold,
        "n_test": len(data["test"]),
        "mixtures_from": mix_split,
        "classifier_val_accuracy": round(history.best_val_accuracy, 4),
        "classifier_test_accuracy": round(accuracy(model, data["test"]), 4),
    }
    for label, weight in (("l2i", 0.0), ("l2i_input_fidelity", lam_in)):
        interp = artifacts.interpreter(recipe.with_(lam_in=weight), model, progress=progress)
        clips = evaluate(interp.explain, interp.classify, data["test"], threshold=threshold)
        mixes = evaluate(interp.explain, interp.classify, mixtures, threshold=threshold)
        out[label] = {
            "lam_in": weight,
            "val_fidelity": round(interp.history.best_val_fidelity, 4),
            **{k: round(v, 4) for k, v in clips.items()},
            "mixtures": {k: round(v, 4) for k, v in mixes.items() if k.startswith("SI-SDR") or k in ("n", "fidelity")},
        }
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object per dataset")
    parser.add_argument("--datasets", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--lam-in", type=float, default=1.0, help="weight of the input-fidelity term")
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("--mixtures", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(0)
    for name in args.datasets:
        result = run(name, args.lam_in, args.threshold, args.mixtures, progress=not args.json)
        print(json.dumps(result) if args.json else json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
