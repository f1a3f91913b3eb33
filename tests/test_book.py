"""The book's notebooks are committed executed, seeded and in the table of contents."""

import json
from pathlib import Path

import fnmatch

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
NOT_EXECUTED = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["exclude_patterns"]
EXECUTED = [nb for nb in NOTEBOOKS if not any(fnmatch.fnmatch(str(nb), p) for p in NOT_EXECUTED)]


def test_every_chapter_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    assert NOTEBOOKS
    for nb in NOTEBOOKS:
        assert f"book/{nb.stem}" in toc, nb.name


def test_only_the_gpu_chapter_is_shown_unexecuted():
    assert [nb.name for nb in NOTEBOOKS if nb not in EXECUTED] == ["10_esc50_on_a_gpu.ipynb"]


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: p.name)
def test_committed_with_outputs_and_seeded(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in cells), "every code cell was executed"
    assert sum(bool(c.get("outputs")) for c in cells) >= len(cells) // 2, "outputs are committed"
    assert not [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert any("torch.manual_seed(" in "".join(c["source"]) for c in cells), "the notebook is seeded"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_l2i_on_colab_only(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    first = "".join(cells[0]["source"])
    assert 'if "google.colab" in sys.modules:' in first and "%pip install" in first
    assert "torch" not in first.split("%pip install", 1)[1], "Colab's torch/torchaudio pair is kept"


def test_the_gpu_chapter_uses_the_tested_recipe_and_functions():
    source = "".join("".join(c["source"]) for c in json.loads((ROOT / "book" / "10_esc50_on_a_gpu.ipynb").read_text())["cells"])
    for call in ("artifacts.ESC50_PAPER", "artifacts.datasets(", "artifacts.interpreter(", "evaluation_sets(",
                 "baselines.methods(", "compare("):
        assert call in source


SPREAD = ROOT / "benchmarks" / "results" / "book_spread.jsonl"


def _spread_rows():
    return [json.loads(line) for line in SPREAD.read_text().splitlines() if line.strip()]


def test_every_checked_figure_has_a_range_and_every_range_a_chapter():
    from l2i.book.expected import EXPECTED

    for nb in EXECUTED:
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "code" and "check(" in "".join(cell["source"]):
                assert "remove-cell" in cell["metadata"].get("tags", []), f"{nb.name}: checks live in hidden cells"
    measured = {r["name"] for r in _spread_rows() if not r["broken"]}
    assert measured == set(EXPECTED), f"measured but no range: {measured - set(EXPECTED)}; range never measured: {set(EXPECTED) - measured}"


def test_the_ranges_hold_every_measured_run():
    from l2i.book.expected import EXPECTED

    runs = {(r["seed"], r["arithmetic"]) for r in _spread_rows() if not r["broken"]}
    assert len(runs) >= 4 and {a for _, a in runs} == {"native", "default"}, runs
    outside = [(r["name"], r["seed"], r["arithmetic"], r["value"]) for r in _spread_rows() if not r["broken"]
               and not EXPECTED[r["name"]].low <= r["value"] <= EXPECTED[r["name"]].high]
    assert not outside


def test_the_ranges_catch_a_broken_interpreter_in_every_chapter_that_has_one():
    from l2i.book.expected import EXPECTED

    broken = [r for r in _spread_rows() if r["broken"]]
    caught = {r["chapter"] for r in broken if not EXPECTED[r["name"]].low <= r["value"] <= EXPECTED[r["name"]].high}
    with_interpreter = {r["chapter"] for r in broken if r["chapter"][:2] >= "04"}
    assert with_interpreter == {nb.stem for nb in EXECUTED if nb.name[:2] >= "04"}
    assert caught >= with_interpreter, f"a broken interpreter passes every check of {with_interpreter - caught}"
