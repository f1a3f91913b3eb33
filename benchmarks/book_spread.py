"""The book's checked figures over seeds and machines: what the ranges of ``l2i/book/expected.py``
are made from.

Every chapter that trains a model passes its figures to ``l2i.book.figures.check``. This script
executes the chapters, each in a fresh kernel, and records every checked figure
(``L2I_BOOK_FIGURES``; ``L2I_BOOK_CHECKS=record`` so that a figure outside its range is recorded,
not raised):

- ``--seeds 0 1 2``: the book's recipes (``artifacts.SCENES``, ``artifacts.DIGITS``,
  ``artifacts.ESC10``) from each seed, data, dictionary, classifier and interpreter alike (a first
  cell sets the seed before the chapter's own cells run);
- ``--arithmetic default``: the same under ``ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE``
  (ATen's generic kernels and MKL's compatible branch: the last bits of another machine);
- ``--broken``: seed 0 with every interpreter's Psi and Theta re-initialised after training or
  loading, a deliberately broken interpreter that the checks must catch.

Models are cached per arithmetic (``--cache``, default ``$L2I_CACHE/book_spread-<arithmetic>``,
the artifact keys do not name the arithmetic); the broken run works on a copy of the seed-0
cache and never writes a broken model where a chapter would read it. Rows are appended to
``--out`` as JSON lines; ``--summary`` writes the markdown table of what was recorded next to the
ranges of ``EXPECTED`` (``results/book_spread.md``).

Usage::

    python benchmarks/book_spread.py --seeds 0 1 2 --out benchmarks/results/book_spread.jsonl
    python benchmarks/book_spread.py --seeds 0 1 --arithmetic default --out benchmarks/results/book_spread.jsonl
    python benchmarks/book_spread.py --broken --out benchmarks/results/book_spread.jsonl
    python benchmarks/book_spread.py --summary benchmarks/results/book_spread.jsonl > benchmarks/results/book_spread.md

About 10 minutes per seed on 2 CPU cores from an empty cache (15 with ATen's generic kernels).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
ARITHMETIC = {"native": {}, "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}}

SEED_CELL = """
from l2i.book import artifacts as _artifacts
_artifacts.SCENES = _artifacts.SCENES.with_(seed={seed})
_artifacts.DIGITS = _artifacts.DIGITS.with_(seed={seed})
_artifacts.ESC10 = _artifacts.ESC10.with_(seed={seed})
"""
BROKEN_CELL = """
import torch as _torch
from l2i.interpreter import Interpreter as _Interpreter


def _break(interp):
    generator = _torch.Generator().manual_seed(12345)
    with _torch.no_grad():
        for p in list(interp.psi.parameters()) + list(interp.theta.parameters()):
            p.copy_(_torch.randn(p.shape, generator=generator) * 0.05)
    return interp


_fit, _load = _Interpreter.fit, _Interpreter.load.__func__
def _broken_fit(self, *args, **kwargs):
    history = _fit(self, *args, **kwargs)
    _break(self)
    return history
_Interpreter.fit = _broken_fit
_Interpreter.load = classmethod(lambda cls, *args, **kwargs: _break(_load(cls, *args, **kwargs)))
"""


def chapters(names: list[str] | None = None) -> list[Path]:
    """The executed chapters (all but those ``_config.yml`` shows unexecuted), or those named."""
    sys.path.insert(0, str(BOOK))
    from conftest import NOT_EXECUTED  # the one list of chapters shown without outputs

    import fnmatch

    found = [p for p in sorted(BOOK.glob("[0-9]*.ipynb")) if not any(fnmatch.fnmatch(str(p), n) for n in NOT_EXECUTED)]
    return [p for p in found if not names or any(p.name.startswith(n) for n in names)]


def execute(path: Path, env: dict, first_cell: str, write: bool = False) -> float:
    """Run the notebook at ``path`` in a fresh kernel with ``env`` and ``first_cell`` run first;
    the seconds it took. A failing cell raises. ``write``: save the executed notebook over ``path``,
    without ``first_cell`` (the committed outputs)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(first_cell))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}}).execute()
        seconds = time.perf_counter() - start
        if write:
            del nb.cells[1]
            nbformat.write(nb, path)
        return seconds
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def run(seed: int, arithmetic: str, broken: bool, cache: Path, out: Path, names: list[str] | None,
        write: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.jsonl"
        env = {"L2I_CACHE": str(cache), "L2I_BOOK_FIGURES": str(figures), "L2I_BOOK_CHECKS": "record",
               **ARITHMETIC[arithmetic]}
        cell = SEED_CELL.format(seed=seed) + (BROKEN_CELL if broken else "")
        for path in chapters(names):
            seconds = execute(path, env, cell, write=write and seed == 0 and not broken)
            rows = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
            figures.unlink(missing_ok=True)
            with out.open("a", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps({"seed": seed, "arithmetic": arithmetic, "broken": broken,
                                        "chapter": path.stem, **row}) + "\n")
            print(f"seed {seed} {arithmetic}{' broken' if broken else ''} {path.stem}: {len(rows)} figures, {seconds:.0f} s",
                  file=sys.stderr, flush=True)


def summary(rows: list[dict]) -> str:
    """Markdown: per figure, the runs' min and max, the broken run's value and the expected range."""
    sys.path.insert(0, str(ROOT))
    from l2i.book.expected import EXPECTED

    values, broken, runs = defaultdict(list), {}, set()
    for r in rows:
        if r["broken"]:
            broken[r["name"]] = r["value"]
        else:
            values[r["name"]].append(r["value"])
            runs.add((r["seed"], r["arithmetic"]))
    lines = [
        "# The book's checked figures over seeds and machines",
        "",
        f"Written by `python benchmarks/book_spread.py --summary`, from {len(runs)} runs of every chapter "
        f"({', '.join(f'seed {s} {a}' for s, a in sorted(runs))}) and one with a broken interpreter. "
        "Range: `l2i/book/expected.py`; outside: a figure the chapter's check would refuse.",
        "",
        "| figure | runs: min | max | broken interpreter | expected range |",
        "|---|---|---|---|---|",
    ]
    for name, exp in EXPECTED.items():
        v = values.get(name, [])
        b = broken.get(name)
        flag = "" if b is None or exp.low <= b <= exp.high else " (outside)"
        lines.append(f"| {name} | {min(v):.3f} | {max(v):.3f} | {'-' if b is None else f'{b:.3f}{flag}'} | "
                     f"[{exp.low:g}, {exp.high:g}] |" if v else f"| {name} | - | - | - | [{exp.low:g}, {exp.high:g}] |")
    return "\n".join(lines) + "\n"


# The margin added on each side of the recorded runs' range: the larger of that range and a floor
# per kind of figure, so that a few runs do not make a range tighter than another machine needs.
FLOORS = {"SI_SDRi": 2.0, "AD": 8.0, "components": 4.0}
SHARE_FLOOR = 0.08


def ranges(rows: list[dict]) -> str:
    """The source of ``EXPECTED`` (``l2i/book/expected.py``) from the recorded runs: per figure, the
    runs' range widened on each side by the larger of its width and the floor of its kind, clipped to
    the figure's natural bounds; each figure's description kept from the current ``EXPECTED``."""
    sys.path.insert(0, str(ROOT))
    from l2i.book.expected import EXPECTED

    values, chapter = defaultdict(list), {}
    for r in rows:
        if not r["broken"]:
            values[r["name"]].append(r["value"])
            chapter.setdefault(r["name"], r["chapter"])
    lines, last = [], None
    for name in sorted(values, key=lambda n: (chapter[n], list(EXPECTED).index(n) if n in EXPECTED else 0)):
        if chapter[name] != last:
            lines.append(f"    # {chapter[name]}")
            last = chapter[name]
        low, high = min(values[name]), max(values[name])
        kind = next((k for k in FLOORS if name.endswith(k) or k in name), None)
        margin = max(high - low, FLOORS[kind] if kind else SHARE_FLOOR)
        bounds = {"SI_SDRi": (-60.0, 60.0), "AD": (0.0, 100.0), "components": (0.0, 1e6)}.get(kind, (-1.0, 1.0) if name.endswith(("FF", "following")) else (0.0, 1.0))
        lo, hi = max(bounds[0], low - margin), min(bounds[1], high + margin)
        what = EXPECTED[name].what if name in EXPECTED else name
        lines.append(f"    {name!r}: Expected({lo:.3g}, {hi:.3g}, {what!r}),")
    return "EXPECTED: dict[str, Expected] = {\n" + "\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--arithmetic", choices=sorted(ARITHMETIC), default="native")
    parser.add_argument("--broken", action="store_true", help="seed 0, every interpreter re-initialised")
    parser.add_argument("--chapters", nargs="*", help="chapter prefixes (e.g. 04 06); default: all executed")
    parser.add_argument("--cache", type=Path, help="artifact cache (default: $L2I_CACHE/book_spread-<arithmetic>)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "book_spread.jsonl")
    parser.add_argument("--write", action="store_true", help="save seed 0's executed chapters in book/ (the committed outputs)")
    parser.add_argument("--summary", type=Path, metavar="JSONL", help="print the markdown summary of a results file and stop")
    parser.add_argument("--ranges", type=Path, metavar="JSONL", help="print the EXPECTED ranges a results file gives and stop")
    args = parser.parse_args(argv)
    if args.ranges:
        print(ranges([json.loads(line) for line in args.ranges.read_text().splitlines() if line.strip()]), end="")
        return
    if args.summary:
        print(summary([json.loads(line) for line in args.summary.read_text().splitlines() if line.strip()]), end="")
        return
    from l2i.downloads import cache_dir

    cache = args.cache or cache_dir() / f"book_spread-{args.arithmetic}"
    if args.broken:  # on a copy: a broken interpreter must never be cached where a chapter reads it
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "cache"
            shutil.copytree(cache, copy) if cache.is_dir() else copy.mkdir()
            run(0, args.arithmetic, True, copy, args.out, args.chapters)
        return
    for seed in args.seeds:
        run(seed, args.arithmetic, False, cache, args.out, args.chapters, write=args.write)


if __name__ == "__main__":
    main()
