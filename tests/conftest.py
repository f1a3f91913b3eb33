import os
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

# The project's shared recordings beside the checkout, where they are (the Makefile does the same);
# l2i itself finds data only through arguments and environment variables.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if (_SHARED / "fsdd" / "recordings").is_dir():
    os.environ.setdefault("L2I_FSDD", str(_SHARED / "fsdd" / "recordings"))
if (_SHARED / "esc50" / "meta" / "esc50.csv").is_file():
    os.environ.setdefault("L2I_ESC50", str(_SHARED / "esc50"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets an empty cache directory; nothing is written to the user's cache."""
    monkeypatch.setenv("L2I_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    yield

