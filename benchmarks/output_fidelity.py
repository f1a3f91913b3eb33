"""The output term of ``Interpreter.fit`` (``lam_out``), chosen on validation data.

Scenes interpreters trained with the input-fidelity term (``lam_in=1``) and an output term of
weight ``lam_out`` (the input minus the interpretation should lose the classifier's decision),
the terms rendering the interpretation with the mask on the log magnitude or on the magnitude
(``fidelity_domain``). Each explains validation clips and mixtures (drawn with another seed than
anything the benchmark or the book scores) in both explanation domains; threshold 0.2. The test
sets of ``benchmarks/interpretation.py`` are not touched: this is where the weight was chosen.
Interpreters are cached by ``l2i.artifacts`` (about 2.5 min each to train on 2 cores).

Usage::

    python benchmarks/output_fidelity.py --json > benchmarks/results/output_fidelity.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import torch
from mask_domain import DOMAINS, validation_sets

from l2i import artifacts
from l2i.metrics import compare

VARIANTS = ((0.0, "log1p"), (0.0, "magnitude"), (0.3, "log1p"), (0.3, "magnitude"), (1.0, "magnitude"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per variant and setting (no progress bars)")
    parser.add_argument("--n", type=int, default=40, help="clips or mixtures per setting")
    parser.add_argument("--threshold", type=float, default=0.2)
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    model, _ = artifacts.classifier(artifacts.SCENES, progress=not args.json)
    sets = validation_sets(artifacts.SCENES, args.n)
    for lam_out, fidelity_domain in VARIANTS:
        recipe = artifacts.SCENES.with_(lam_in=1.0, lam_out=lam_out, fidelity_domain=fidelity_domain)
        t0 = time.perf_counter()
        interp = artifacts.interpreter(recipe, model, progress=not args.json)
        variant = {"lam_in": 1.0, "lam_out": lam_out, "fidelity_domain": fidelity_domain,
                   "val_fidelity": round(interp.history.best_val_fidelity, 4),
                   "seconds_to_load_or_train": round(time.perf_counter() - t0, 1)}
        methods = {domain: partial(interp.explain, domain=domain) for domain in DOMAINS}
        for setting, data in sets.items():
            results = compare(methods, interp.classify, data, threshold=args.threshold, progress=not args.json)
            keep = ("fidelity", "FF", "Fid-In", "AD", "SI-SDRi")
            rounded = {m: {k: round(r[k], 4) for k in keep if k in r} for m, r in results.items()}
            record = {**variant, "setting": setting, "split": "val", "n": len(data), "explained_with": rounded}
            print(json.dumps(record) if args.json else json.dumps(record, indent=1), flush=True)
    print(json.dumps({"total_seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
