"""The README's quickstart runs as written, on clips fabricated in its folder layout."""

import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from l2i.models import MelCNN

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def quickstart() -> str:
    section = README.split("## Quickstart", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 200 and len(README.encode()) <= 16 * 1024


def test_quickstart_runs(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for split, n in (("train", 3), ("val", 2)):
        for label, freq in (("hum", 150.0), ("whistle", 2500.0)):
            for i in range(n):
                clip = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.05 * i) * t) + 0.01 * rng.standard_normal(t.size)
                path = tmp_path / "my_clips" / split / label / f"{i}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, clip, 16000)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace = {"my_classifier": MelCNN(2, sample_rate=16000, width=4).eval(),
                 "waveforms": torch.from_numpy(0.3 * np.sin(2 * np.pi * 150 * t)).float()[None].repeat(2, 1)}
    exec(compile(quickstart(), "README quickstart", "exec"), namespace)
    assert namespace["explanation"].audio.shape == (2, 16000)
    assert sorted(p.name for p in (tmp_path / "heard").iterdir())
    assert (tmp_path / "interpreter.pt").is_file()
