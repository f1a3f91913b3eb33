"""The command line (l2i/cli.py): each command end to end on a small folder, its errors, torchrun."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from l2i.audio import save
from l2i.cli import main, parse_layer
from l2i.datasets import AudioFiles, SyntheticScenes
from l2i.nmf import NMF

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("dictionary", "layers", "train", "explain")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """16 synthetic scenes as WAV files, half of them in a sub-folder, and a classifier factory."""
    root = tmp_path_factory.mktemp("cli")
    clips = SyntheticScenes("train", n_per_class=2)
    for i in range(len(clips)):
        save(root / "clips" / ("more" if i % 2 else "") / f"{clips.classes[clips[i].label]} {i}.wav",
             clips[i].waveform, clips[i].sample_rate)
    (root / "factory.py").write_text(textwrap.dedent("""
        import torch
        from l2i.models import MelCNN
        from l2i.scenes import CLASSES

        def trained():
            torch.manual_seed(0)
            model = MelCNN(len(CLASSES), width=4)
            model.classes = CLASSES
            return model

        def not_a_model():
            return 3
    """))
    return root


def run(folder: Path, *argv: str) -> None:
    cwd = os.getcwd()
    os.chdir(folder)  # the factory module is found from the current folder, as with python -m
    try:
        main([str(a) for a in argv])
    finally:
        os.chdir(cwd)
        sys.modules.pop("factory", None)


def fails(folder: Path, capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        run(folder, *argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_dictionary_train_and_explain_a_folder(folder, capsys):
    d, interp, out = folder / "dictionary.pt", folder / "interpreter.pt", folder / "explained"
    run(folder, "dictionary", "clips", "-o", d, "--n-fft", 256, "--components", 8, "--iterations", 20)
    nmf = NMF.load(d)
    assert nmf.W.shape == (129, 8) and nmf.spectrogram.sample_rate == 8000
    assert nmf.loss_history[-1] < nmf.loss_history[0]

    run(folder, "layers", "--classifier", "factory:trained")
    listing = capsys.readouterr().out
    assert re.search(r"^block4 +\S+ +\(batch, 32, 8, time=\d+\) -> 256 features x time$", listing, re.M), listing
    assert re.search(r"^head +\S+ +\(batch, 8\) -> 8 features, no time axis$", listing, re.M)

    run(folder, "train", "clips", "--classifier", "factory:trained", "--layers", "block2", "block4",
        "--dictionary", d, "-o", interp, "--epochs", 2, "--batch-size", 8)
    assert "validation fidelity" in capsys.readouterr().err
    saved = torch.load(interp, weights_only=True)
    assert saved["format"] == "l2i.interpreter" and saved["config"]["classes"][1] == "dog_bark"

    run(folder, "explain", "clips", "--classifier", "factory:trained", "--interpreter", interp, "-o", out,
        "--components", 2)
    page = (out / "index.html").read_text()
    sources = re.findall(r'<audio controls preload="none" src="([^"]+)"', page)
    clips = AudioFiles(folder / "clips")
    assert page.count("<section>") == len(clips) == 16
    # Every clip's input, interpretation and residual, each a WAV file the page plays.
    assert len([s for s in sources if s.endswith("_input.wav")]) == 16
    assert len([s for s in sources if "_interpretation_" in s]) == 16
    assert all((out / s).is_file() for s in sources)
    written = torch.tensor(__import__("soundfile").read(out / sources[0])[0])
    assert written.shape[0] == clips[0].waveform.shape[0]

    # Explaining again into the same folder is refused, and nothing there changes.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert "exists and is not an empty folder" in fails(folder, capsys, "explain", "clips", "--classifier",
                                                         "factory:trained", "--interpreter", interp, "-o", out)
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    # L-MAC through the same command, and explained by the same explain command.
    run(folder, "train", "clips", "--classifier", "factory:trained", "--layers", "block3", "--method", "lmac",
        "--dictionary", d, "-o", folder / "lmac.pt", "--epochs", 1, "--batch-size", 8)
    run(folder, "explain", "clips", "--classifier", "factory:trained", "--interpreter", folder / "lmac.pt",
        "-o", folder / "lmac", "--target", "siren")
    assert "L-MAC" in (folder / "lmac" / "index.html").read_text()
    assert "target siren" in (folder / "lmac" / "index.html").read_text()


def test_bad_inputs_end_with_the_apis_message_before_any_work(folder, capsys):
    (folder / "taken.pt").write_bytes(b"mine")
    cases = {
        ("dictionary", "nowhere", "-o", "d.pt"): "nowhere is not a folder",
        ("dictionary", "clips", "-o", "taken.pt"): "taken.pt exists: give another -o, or --force",
        ("dictionary", "clips", "-o", "x.pt", "--n-fft", "4"): "n_fft must be at least 8",
        ("train", "clips", "--classifier", "nomodule:trained", "--layers", "block4", "--method", "lmac",
         "-o", "i.pt"): "cannot import nomodule",
        ("train", "clips", "--classifier", "factory:missing", "--layers", "block4", "--method", "lmac",
         "-o", "i.pt"): "factory has no 'missing'",
        ("train", "clips", "--classifier", "factory:not_a_model", "--layers", "block4", "--method", "lmac",
         "-o", "i.pt"): "returned int, not a torch.nn.Module",
        ("train", "clips", "--classifier", "factory:trained", "--layers", "block4", "-o", "i.pt"):
            "--method l2i needs --dictionary",
        ("train", "clips", "--classifier", "factory:trained", "--layers", "block4:when=3", "--method", "lmac",
         "-o", "i.pt"): "options are name:time=N",
        ("train", "clips", "--classifier", "factory:trained", "--layers", "no_such_layer", "--method", "lmac",
         "-o", "i.pt"): "no_such_layer",
        ("explain", "clips", "--classifier", "factory:trained", "--interpreter", "taken.pt", "-o", "e"):
            "taken.pt is not a readable l2i model",
    }
    for argv, message in cases.items():
        assert message in fails(folder, capsys, *argv), argv
    assert (folder / "taken.pt").read_bytes() == b"mine"
    assert not any((folder / n).exists() for n in ("d.pt", "x.pt", "i.pt", "e"))


def test_every_command_has_help():
    for command in ("", *COMMANDS):
        result = subprocess.run([sys.executable, "-m", "l2i", *([command] if command else []), "--help"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "usage: l2i" in result.stdout, (command, result.stderr)


def test_layer_options():
    assert parse_layer("encoder.layers.3:time=1").time == 1
    assert parse_layer("head:pooled").pooled and parse_layer("block:select=0").select == 0


def test_dictionary_under_torchrun_equals_one_process(folder, tmp_path):
    args = ["dictionary", folder / "clips", "--n-fft", 256, "--components", 6, "--iterations", 15]
    run(folder, *args, "-o", tmp_path / "one.pt")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc-per-node", "2", "-m", "l2i", *map(str, args), "-o", str(tmp_path / "two.pt")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "8 on each of 2 ranks" in result.stderr
    torch.testing.assert_close(NMF.load(tmp_path / "two.pt").W, NMF.load(tmp_path / "one.pt").W, atol=1e-5, rtol=1e-4)
