"""The book's notebooks are committed executed, seeded and in the table of contents."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def test_every_chapter_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    assert NOTEBOOKS
    for nb in NOTEBOOKS:
        assert f"book/{nb.stem}" in toc, nb.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_with_outputs_and_seeded(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in cells), "every code cell was executed"
    assert sum(bool(c.get("outputs")) for c in cells) >= len(cells) // 2, "outputs are committed"
    assert not [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert any("torch.manual_seed(" in "".join(c["source"]) for c in cells), "the notebook is seeded"
