import json
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from l2i.audio import Spectrogram
from l2i.plotting import plot_atoms, plot_comparison, plot_loss, specshow, spectrogram_grid
from l2i.widgets import player, players

ROOT = Path(__file__).resolve().parents[1]


def test_players_render_audio_elements_with_honest_loudness():
    html = players({"loud": torch.full((800,), 0.5), "quiet": torch.full((800,), 0.05)}, 8000)._repr_html_()
    assert html.count("<audio") == 2 and "loud" in html and "scaled" not in html
    too_loud = players({"a": torch.full((800,), 2.0), "b": torch.full((800,), 0.5)}, 8000)._repr_html_()
    assert "scaled by 0.50" in too_loud
    with pytest.raises(ValueError, match="peaks at"):
        player(torch.full((100,), 1.5), 8000)
    with pytest.raises(ValueError, match="NaN"):
        player(torch.tensor([0.0, float("nan")]), 8000)
    with pytest.raises(ValueError, match="one clip"):
        player(torch.zeros(2, 10), 8000)


def test_plots_draw():
    spec = Spectrogram(8000, 256)
    X = spec(torch.randn(8000) * 0.1)
    ax = specshow(X, spec, title="noise")
    assert ax.get_title() == "noise"
    fig = spectrogram_grid([X, X, X], ["a", "b", "c"], spec, ncols=2)
    assert len(fig.axes) == 4
    _, order = plot_atoms(torch.rand(129, 10), spec, ax=plt.figure().gca())
    assert sorted(order.tolist()) == list(range(10))
    plot_loss([3.0, 2.0, 1.0], ax=plt.figure().gca())
    plt.close("all")


def test_nmf_benchmark_prints_its_json():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "nmf_speed.py"), "--json", "--freq", "33",
         "--frames", "400", "--components", "4", "--iterations", "5", "--repeats", "1"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    result = json.loads(out.stdout)
    for key in ("l2i_s", "sklearn_s", "ratio_vs_sklearn", "l2i_loss", "sklearn_loss", "device"):
        assert key in result
    assert abs(result["l2i_loss"] - result["sklearn_loss"]) / result["sklearn_loss"] < 1e-3


def test_explorer_controls_reach_explain():
    from l2i.datasets import SyntheticScenes
    from l2i.interpreter import Interpreter
    from l2i.models import MelCNN
    from l2i.nmf import NMF
    from l2i.widgets import explorer

    torch.manual_seed(0)
    spec = Spectrogram(8000, 256)
    data = SyntheticScenes("val", n_per_class=1)
    nmf = NMF(6, n_iter=5, progress=False).fit(spec(data[0].waveform), spectrogram=spec)
    interp = Interpreter(MelCNN(len(data.classes), width=4).eval(), ["block2"], nmf, classes=data.classes)
    calls = []
    explain = interp.explain
    interp.explain = lambda *args, **kw: calls.append(kw) or explain(*args, **kw)
    box = explorer(interp, data)
    controls = box.children[0].children
    assert [c.description for c in controls] == ["clip", "class", "threshold", "mask on", "mask"]
    assert calls[-1] == {"target": None, "threshold": 0.2, "domain": "log1p", "binarize": None}
    controls[3].value = "magnitude"
    controls[1].value = 2
    assert calls[-1] == {"target": 2, "threshold": 0.2, "domain": "magnitude", "binarize": None}
    controls[4].value = 0.3
    assert calls[-1]["binarize"] == 0.3
    plt.close("all")


def test_comparison_gives_every_method_its_own_colour():
    for n in (3, 12):
        results = {s: {f"method {j}": {"FF": 0.1 * j, "Fid-In": 1.0, "SI-SDRi": -j} for j in range(n)} for s in ("a", "b")}
        fig = plot_comparison(results)
        colours = {tuple(p.get_facecolor()) for p in fig.axes[0].patches}
        assert len(fig.axes[0].patches) == 2 * n and len(colours) == n
        plt.close(fig)
