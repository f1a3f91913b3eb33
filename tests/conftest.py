import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets an empty cache directory; nothing is written to the user's cache."""
    monkeypatch.setenv("L2I_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    yield

