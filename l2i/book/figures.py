"""The figures the book quotes: checked against measured ranges, and handed to the prose.

Book: every chapter that trains a model. Training is deterministic on one machine but not bit for
bit across CPUs, thread counts and GPUs, so a figure of a trained model (an accuracy, a fidelity,
an SI-SDR) is never compared with a printed value. A chapter prints it under
``# NBVAL_IGNORE_OUTPUT`` and passes it to :func:`check`, which

1. raises :class:`FigureOutOfRange` when it falls outside the range of :data:`EXPECTED`, the spread
   measured over seeds and machines widened by a margin (``benchmarks/book_spread.py``; the
   tests check that every recorded run falls inside and a deliberately broken model outside);
2. glues it under its name, so that the text quotes the run's own figure
   (``{glue:text}`name:.2f```) on whatever machine built the book.

``L2I_BOOK_FIGURES=path`` appends every checked figure to that JSON-lines file, and
``L2I_BOOK_CHECKS=record`` records without raising: how ``benchmarks/book_spread.py`` measures.
"""

from __future__ import annotations

import json
import math
import os
import warnings

from .expected import EXPECTED, Expected

__all__ = ["EXPECTED", "Expected", "FigureOutOfRange", "check", "claim", "describe_differences", "glue", "spread"]


class FigureOutOfRange(AssertionError):
    """A figure of a trained model outside the range measured over seeds and machines."""


def glue(name: str, value) -> None:
    """Hand ``value`` to the chapter's text as ``{glue:text}`name```; nothing where myst-nb is not
    installed (on Colab, say: the printed figure is there to read)."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=False)


def check(name: str, value) -> None:
    """Check ``value`` against ``EXPECTED[name]`` and glue it (as a float) under ``name``.

    Raises
    ------
    KeyError
        ``name`` has no range in :data:`EXPECTED`.
    FigureOutOfRange
        ``value`` is NaN or outside the range (unless ``L2I_BOOK_CHECKS=record``).
    """
    if name not in EXPECTED:
        raise KeyError(f"no expected range for the figure {name!r}: add it to l2i/book/expected.py")
    expected = EXPECTED[name]
    value = float(value)
    inside = not math.isnan(value) and expected.low <= value <= expected.high
    _record(name, value, inside)
    if not inside and os.environ.get("L2I_BOOK_CHECKS") != "record":
        raise FigureOutOfRange(
            f"{expected.what} is {value:.4g}, outside [{expected.low:g}, {expected.high:g}], the range measured "
            f"over seeds and machines (benchmarks/book_spread.py): the model trained here is not the one the "
            "chapter describes. Retrain from an empty cache (L2I_CACHE) and, if it persists, report it."
        )
    glue(name, value)


def claim(holds: bool, what: str) -> None:
    """A chapter's claim about its trained models that no single range states (e.g. the interpreter
    follows the classifier best where the classifier is sure): :class:`FigureOutOfRange` when it
    does not hold; with ``L2I_BOOK_CHECKS=record`` a warning, and the chapter goes on."""
    if holds:
        return
    message = f"{what}: not so for the model trained here"
    if os.environ.get("L2I_BOOK_CHECKS") == "record":
        warnings.warn(message, stacklevel=2)
        return
    raise FigureOutOfRange(f"{message}. Retrain from an empty cache (L2I_CACHE) and, if it persists, report it.")


def _record(name: str, value: float, inside: bool) -> None:
    path = os.environ.get("L2I_BOOK_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"name": name, "value": value, "inside": inside}) + "\n")


def spread(name: str, path: str | os.PathLike) -> str:
    """``"0.802 to 0.826 over 4 runs (seeds 0, 1, 2; two arithmetics)"``: what the recorded runs of
    ``benchmarks/book_spread.py`` in the JSON-lines file at ``path`` gave for the figure ``name``
    (a broken interpreter's run left out), for the text to quote next to its own run's figure."""
    from pathlib import Path

    path = Path(path)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    values = [r for r in rows if r["name"] == name and not r["broken"]]
    if not values:
        return f"not recorded yet (run benchmarks/book_spread.py, which writes {path.name})"
    low, high = min(r["value"] for r in values), max(r["value"] for r in values)
    seeds = sorted({r["seed"] for r in values})
    arithmetics = {r["arithmetic"] for r in values}
    return (f"{low:.3f} to {high:.3f} over {len(values)} runs (seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))}; {'two arithmetics' if len(arithmetics) > 1 else 'one arithmetic'})")


def describe_differences(differences: dict, method: str) -> str:
    """One markdown sentence on :func:`l2i.metrics.paired_differences`: for each metric, the
    methods ``method`` is ahead of, behind, or not told apart from (an interval that contains 0).

    The chapters glue it as ``{glue:md}`...```, so the text says what the run's intervals say."""
    metrics = list(dict.fromkeys(m for row in differences.values() for m in row))
    parts = []
    for metric in metrics:
        ahead = [o for o, row in differences.items() if metric in row and row[metric]["low"] > 0]
        behind = [o for o, row in differences.items() if metric in row and row[metric]["high"] < 0]
        level = [o for o, row in differences.items() if metric in row and o not in ahead + behind]
        said = [f"ahead of {_names(ahead)}" if ahead else "", f"behind {_names(behind)}" if behind else "",
                f"not told apart from {_names(level)}" if level else ""]
        parts.append(f"in {metric}, " + ", ".join(s for s in said if s))
    return f"{method} is " + "; ".join(parts) + "." if parts else f"{method} has no paired differences."


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
