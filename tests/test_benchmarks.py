"""The benchmark scripts under benchmarks/: the parts that decide what is measured on what, on tiny
recipes that run in seconds."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fabricated import write_wav

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def fabricated_fsdd(folder: Path) -> Path:
    """FSDD's five speakers, 7 takes of each digit, 0.1 s each."""
    for speaker in ("george", "jackson", "lucas", "nicolas", "yweweler"):
        for digit in range(10):
            for take in range(7):
                write_wav(folder / f"{digit}_{speaker}_{take}.wav", seconds=0.1, seed=take)
    return folder


def tiny_fsdd_study(name: str, tmp_path: Path, monkeypatch):
    """The study ``name`` on a fabricated FSDD, its ``DIGITS`` a tiny recipe, its cache in ``tmp_path``."""
    monkeypatch.setenv("L2I_FSDD", str(fabricated_fsdd(tmp_path / "fsdd")))
    monkeypatch.setenv("L2I_CACHE", str(tmp_path / "cache"))
    study = _load(name)
    tiny = study.artifacts.Recipe(
        "fsdd", n_components=4, nmf_iter=3, classifier_width=4, classifier_epochs=1, interpreter_epochs=1,
        layers=("block3", "block4"), interpreter_augment=True,
    )
    monkeypatch.setattr(study.artifacts, "DIGITS", tiny)
    return study


def cached_stages(tmp_path: Path) -> list[str]:
    """The stages of the FSDD artifacts ``tiny_fsdd_study`` left in its cache, sorted."""
    return sorted(p.name.split("-")[1] for p in (tmp_path / "cache" / "artifacts").glob("fsdd-*.pt"))


def test_esc50_scale_fabricates_esc50s_layout_and_sizes(tmp_path):
    from l2i.datasets import ESC50

    root = _load("esc50_scale").fabricate(tmp_path / "esc50", n_classes=3, clips_per_class=5, seconds=0.5, workers=1)
    splits = {s: ESC50(s, root=root, download=False) for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 9, "val": 3, "test": 3}
    assert splits["train"].classes == ("class00", "class01", "class02")
    x = splits["test"][0].waveform
    assert x.shape == (22050,) and 0 < float(x.abs().max()) <= 1


def test_nmf_paths_floor_case_leaves_no_subnormal_entries():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "nmf_paths.py"), "--json", "--repeats", "1", "--iterations", "20", "--no-gpu"],
        capture_output=True, text=True, check=True,
    ).stdout
    floor = json.loads(out)["floor"]
    assert floor["iterations"] == 20 and floor["floor_on_subnormal_W_entries"] == 0
    assert floor["floor_on_s"] > 0 and floor["floor_off_s"] > 0 and "resident" not in json.loads(out)


def test_output_term_recipe_is_the_benchmarks_best_interpreter_per_dataset():
    study = _load("interpretation")
    scenes, digits = study.artifacts.SCENES, study.artifacts.DIGITS
    best = study.output_term_recipe(scenes, lam_in=1.0)
    assert (best.lam_in, best.lam_out, best.interpreter_epochs) == (1.0, 0.5, 40)
    assert study.output_term_recipe(scenes, lam_in=1.0, lam_out=0.0) is None
    assert study.output_term_recipe(digits, lam_in=1.0) is None  # FSDD gets no output term
    assert study.output_term_recipe(digits, lam_in=1.0, lam_out=0.3).lam_out == 0.3


def test_interpretation_benchmark_end_to_end_on_a_tiny_recipe(tmp_path, monkeypatch, capsys):
    study = tiny_fsdd_study("interpretation", tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "argv", ["interpretation.py", "--json", "--settings", "FSDD mix 0 dB", "--n", "3",
                                      "--out", str(tmp_path / "out")])
    study.main()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    record = lines[0]
    assert record["setting"] == "FSDD mix 0 dB" and record["n"] == 3
    headline = "L2I + input fidelity, binary mask"
    assert headline in record["methods"] and set(record["paired"]) == {headline}
    against = record["paired"][headline]
    # every baseline but the oracle, none of L2I's own variants
    assert set(against) == {"Random components", "Saliency", "Integrated Gradients", "SLIME"}
    for metric in ("FF", "Fid-In", "SI-SDRi"):
        d = against["SLIME"][metric]
        assert d["low"] <= d["difference"] <= d["high"]
        assert d["n"] == (6 if metric == "SI-SDRi" else 3)  # two sources explained per mixture
        mean = record["methods"][headline][metric] - record["methods"]["SLIME"][metric]
        assert abs(d["difference"] - mean) < 1e-3
    saved = json.loads((tmp_path / "out" / "interpretation.json").read_text())
    assert saved["paired"]["FSDD mix 0 dB"] == record["paired"]
    assert saved["meta"]["settings_left"] == [] and not list((tmp_path / "out").glob("*.part*"))
    assert saved["facts"]["FSDD mix 0 dB"]["prepare_seconds"] > 0  # training the tiny models is timed
    assert saved["meta"]["command"].endswith("--settings 'FSDD mix 0 dB' --n 3 --out " + str(tmp_path / "out"))
    report = (tmp_path / "out" / "interpretation.md").read_text()
    assert f"{headline} minus each baseline" in report and "| SLIME | " in report
    assert "classifier test accuracy" in report


def test_real_settings_name_their_report_after_the_datasets_asked_for():
    study = _load("interpretation")
    both, name = study.real_settings([])
    assert name == "interpretation_esc" and len(both) == 8 and both[0] == "ESC-10" and both[-1] == "ESC-50 + noise 0 dB"
    assert study.real_settings(["ESC-50"]) == (["ESC-50", "ESC-50 mix 0 dB", "ESC-50 mix 0.8/0.2", "ESC-50 + noise 0 dB"],
                                               "interpretation_esc50")
    assert study.real_settings(["ESC-10"])[1] == "interpretation_esc10"
    with pytest.raises(ValueError, match="choose from"):
        study.real_settings(["ESC-100"])


def test_interpretation_benchmark_runs_slime_on_a_subset_and_pairs_it_there(tmp_path, monkeypatch, capsys):
    study = tiny_fsdd_study("interpretation", tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "argv", ["interpretation.py", "--json", "--settings", "FSDD mix 0 dB", "--n", "4", "--slime-n", "2"])
    study.main()
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    headline = "L2I + input fidelity, binary mask"
    assert "SLIME" not in record["methods"] and record["methods"]["SLIME (first 2)"]["n"] == 2
    assert record["methods"][f"{headline} (first 2)"]["n"] == 2 and record["slime_n"] == 2
    assert record["paired"][headline]["SLIME (first 2)"]["FF"]["n"] == 2
    assert record["paired"][headline]["Saliency"]["FF"]["n"] == 4


def test_distributed_benchmark_runs_one_and_two_processes_side_by_side(tmp_path):
    env = {**__import__("os").environ, "L2I_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "distributed.py"), "--json", "--epochs", "2", "--n-per-class", "4",
         "--nmf-iter", "5", "--threads", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    one, two = report["runs"]
    assert (one["processes"], two["processes"]) == (1, 2) and (one["threads_per_process"], two["threads_per_process"]) == (2, 1)
    assert one["W_max_abs_difference"] == 0 and two["W_max_abs_difference"] < 1e-4  # the sharded fit is the same fit
    assert abs(one["nmf_loss"] - two["nmf_loss"]) < 1e-4 * one["nmf_loss"]
    for run in (one, two):
        assert run["epoch_seconds"] > 0 and 0 <= run["val_fidelity"] <= 1 and 0 <= run["best_epoch"] < 2
