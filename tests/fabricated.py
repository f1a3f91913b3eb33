"""Audio files and archives the tests fabricate, and whether the shared FSDD recordings are here.

A module of its own (not conftest.py, whose name the book's conftest.py shares under nbval)."""

import os
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf


def fsdd_available() -> bool:
    return bool(os.environ.get("L2I_FSDD")) and Path(os.environ["L2I_FSDD"]).is_dir()


def esc50_available() -> bool:
    return bool(os.environ.get("L2I_ESC50")) and (Path(os.environ["L2I_ESC50"]) / "meta" / "esc50.csv").is_file()


def write_wav(path: Path, seconds=0.25, rate=8000, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).uniform(-0.3, 0.3, int(seconds * rate)), rate)


def fabricate_fsdd_release(tmp_path: Path) -> Path:
    root = tmp_path / "release"
    for digit in range(10):
        for speaker in ("ann", "bob"):
            for take in range(3):
                write_wav(root / "free-spoken-digit-dataset-1.0.10" / "recordings" / f"{digit}_{speaker}_{take}.wav", seed=digit)
    archive = tmp_path / "fsdd.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in root.rglob("*.wav"):
            zf.write(f, f.relative_to(root))
    return archive


def fabricate_esc50(tmp_path: Path, missing: bool = False) -> Path:
    """A small archive in the official layout: ESC-50-master/meta/esc50.csv + audio/*.wav."""
    top = tmp_path / "src" / "ESC-50-master"
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    categories = {0: "dog", 1: "rooster", 10: "rain"}
    for fold in range(1, 6):
        for target, name in categories.items():
            fname = f"{fold}-{100 + target}-A-{target}.wav"
            rows.append(f"{fname},{fold},{target},{name},{target != 1},{100 + target},A")
            if not (missing and fold == 3):
                write_wav(top / "audio" / fname, seconds=0.5, rate=44100, seed=fold * 7 + target)
    (top / "meta").mkdir(parents=True)
    (top / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    archive = tmp_path / ("broken.zip" if missing else "ESC-50-master.zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for f in top.parent.rglob("*"):
            if f.is_file():
                zf.write(f, f.relative_to(top.parent))
    return archive
