"""How much of the FSDD figures is the seed? The book's recipe trained from other seeds.

The book reports its FSDD classifier on the unseen speaker (george) and its interpreter's agreement
with it there, from one training run (``l2i.artifacts.DIGITS``, seed 0). With one unseen speaker
and four training voices, another seed is another draw: this script trains the whole recipe (the
dictionary, the classifier and the interpreter, each from that seed) and prints, per seed, what
chapter "Real recordings" prints. Nothing here is chosen: the seeds are reported side by side, so
a reader can tell the spread from a change of recipe. Artifacts are cached like the book's (about
5 min per new seed on 2 CPU cores; seed 0 is the book's own).

Usage::

    python benchmarks/fsdd_seeds.py --seeds 0 1 2 > benchmarks/results/fsdd_seeds.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

from l2i import artifacts
from l2i.models import accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    for seed in args.seeds:
        recipe = artifacts.DIGITS.with_(seed=seed)
        data = artifacts.datasets(recipe)
        start = time.perf_counter()
        model, history = artifacts.classifier(recipe, progress=False)
        interp = artifacts.interpreter(recipe, model, progress=False)
        row = {
            "seed": seed,
            "classifier_val_accuracy": round(history.best_val_accuracy, 3),
            "classifier_unseen_speaker_accuracy": round(accuracy(model, data["test"]), 3),
            "interpreter_val_fidelity": round(interp.history.best_val_fidelity, 3),
            "interpreter_unseen_speaker_fidelity": round(interp.fidelity(data["test"]), 3),
            "seconds_to_load_or_train": round(time.perf_counter() - start, 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
