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
    assert [nb.name for nb in NOTEBOOKS if nb not in EXECUTED] == ["09_esc50_on_a_gpu.ipynb"]


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
    source = "".join("".join(c["source"]) for c in json.loads((ROOT / "book" / "09_esc50_on_a_gpu.ipynb").read_text())["cells"])
    for call in ("artifacts.ESC50_PAPER", "artifacts.datasets(", "artifacts.interpreter(", "evaluation_sets(",
                 "baselines.methods(", "compare("):
        assert call in source
