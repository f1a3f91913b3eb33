"""The book's figure checks (l2i.book.figures): ranges enforced, recorded, described."""

import json

import pytest

from l2i.book import figures
from l2i.book.figures import EXPECTED, FigureOutOfRange, check, describe_differences, spread

NAME = "scenes_classifier_test_accuracy"


def test_a_figure_outside_its_range_or_nan_is_refused_and_an_unknown_one_named(monkeypatch):
    monkeypatch.delenv("L2I_BOOK_CHECKS", raising=False)
    monkeypatch.setitem(EXPECTED, NAME, figures.Expected(0.8, 1.0, "the test accuracy"))
    check(NAME, 0.9)
    with pytest.raises(FigureOutOfRange, match=r"the test accuracy is 0\.5, outside \[0\.8, 1\]"):
        check(NAME, 0.5)
    with pytest.raises(FigureOutOfRange):
        check(NAME, float("nan"))
    with pytest.raises(KeyError, match="add it to l2i/book/expected.py"):
        check("no_such_figure", 0.5)


def test_record_mode_writes_every_figure_and_raises_none(monkeypatch, tmp_path):
    out = tmp_path / "figures.jsonl"
    monkeypatch.setenv("L2I_BOOK_CHECKS", "record")
    monkeypatch.setenv("L2I_BOOK_FIGURES", str(out))
    monkeypatch.setitem(EXPECTED, NAME, figures.Expected(0.8, 1.0, "the test accuracy"))
    check(NAME, 0.9)
    check(NAME, 0.5)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["value"], r["inside"]) for r in rows] == [(0.9, True), (0.5, False)]


def test_spread_summarises_the_recorded_runs_without_the_broken_one(tmp_path):
    path = tmp_path / "spread.jsonl"
    rows = [(0, "native", False, 0.81), (1, "native", False, 0.83), (0, "default", False, 0.80), (0, "native", True, 0.1)]
    path.write_text("".join(json.dumps({"seed": s, "arithmetic": a, "broken": b, "name": NAME, "value": v}) + "\n"
                            for s, a, b, v in rows))
    assert spread(NAME, path) == "0.800 to 0.830 over 3 runs (seeds 0, 1; two arithmetics)"
    assert spread("other", path).startswith("not recorded yet")
    assert spread(NAME, tmp_path / "missing.jsonl").startswith("not recorded yet")


def test_describe_differences_says_ahead_behind_and_level():
    differences = {"SLIME": {"FF": {"difference": 0.2, "low": 0.1, "high": 0.3}},
                   "L-MAC": {"FF": {"difference": -0.2, "low": -0.3, "high": -0.1}},
                   "Saliency": {"FF": {"difference": 0.0, "low": -0.1, "high": 0.1}}}
    assert describe_differences(differences, "L2I") == \
        "L2I is in FF, ahead of SLIME, behind L-MAC, not told apart from Saliency."
    assert describe_differences({}, "L2I") == "L2I has no paired differences."


def test_a_claim_that_does_not_hold_is_refused_or_only_warned_about_when_recording(monkeypatch):
    from l2i.book.figures import claim

    monkeypatch.delenv("L2I_BOOK_CHECKS", raising=False)
    claim(True, "holds")
    with pytest.raises(FigureOutOfRange, match="the interpreter follows f: not so"):
        claim(False, "the interpreter follows f")
    monkeypatch.setenv("L2I_BOOK_CHECKS", "record")
    with pytest.warns(UserWarning, match="not so"):
        claim(False, "the interpreter follows f")
