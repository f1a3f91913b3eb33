"""The study scripts under benchmarks/: the parts that decide what is measured on what."""

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

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


def test_speaker_fold_holds_out_one_training_speaker_and_never_uses_the_test_speaker(tmp_path, monkeypatch):
    monkeypatch.setenv("L2I_FSDD", str(fabricated_fsdd(tmp_path)))
    study = _load("fsdd_speaker_fold")
    data = study.fold_data("lucas", duration=0.2)
    assert set(data["train"].speakers) == set(data["val"].speakers) == {"jackson", "nicolas", "yweweler"}
    fold = data["fold"]
    assert len(fold) == 70 and {fold.dataset.speakers[i] for i in fold.indices} == {"lucas"}
    once, again = study.perturbed(data["val"]), study.perturbed(data["val"])
    assert len(once) == len(data["val"]) == 150 and len(data["train"]) == 60
    assert all(torch.equal(once[i].waveform, again[i].waveform) for i in range(len(once)))
    assert not torch.equal(once[0].waveform, data["val"][0].waveform)
    assert [once[i].label for i in range(len(once))] == [data["val"][i].label for i in range(len(once))]


def test_speaker_fold_refuses_the_test_speaker():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fsdd_speaker_fold.py"), "--folds", "george"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 2 and "training speakers" in out.stderr


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


def test_classifier_fold_equalizer_is_a_bounded_smooth_gain():
    study = _load("fsdd_classifier_fold")
    x = torch.randn(3, 800, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(study.random_equalizer(x, torch.Generator().manual_seed(1), max_db=0.0), x, atol=1e-5)
    once = study.random_equalizer(x, torch.Generator().manual_seed(1))
    assert once.shape == x.shape and torch.equal(once, study.random_equalizer(x, torch.Generator().manual_seed(1)))
    # Gain per frequency bin: within +-(6 dB tilt + 3 bumps of 6 dB) and the same smooth curve for a
    # clip whatever its content.
    gain = (torch.fft.rfft(once, dim=-1).abs() / torch.fft.rfft(x, dim=-1).abs()).log10() * 20
    assert gain.abs().max() <= 24.0 + 1e-3 and gain.std(dim=1).min() > 0.1
    assert (gain[:, 1:] - gain[:, :-1]).abs().max() < 0.5


def test_classifier_fold_variants_are_recipes_and_the_adopted_one_is_the_books():
    study = _load("fsdd_classifier_fold")
    fields = ("classifier_width", "classifier_n_mels", "classifier_hop_length", "classifier_epochs", "classifier_time_mask")
    pick = lambda r: tuple(getattr(r, f) for f in fields)  # noqa: E731
    assert pick(study.variant_recipe("base")) == (16, 64, None, 25, False)
    assert pick(study.variant_recipe("eq+noise")) == (16, 64, None, 25, False)  # training changes, not the recipe
    assert pick(study.variant_recipe("w32+e40")) == (32, 64, None, 40, False)
    assert pick(study.variant_recipe("w32+mels40+hop128")) == (32, 40, 128, 25, False)
    assert pick(study.variant_recipe("w64+mels40+hop128+tmask")) == (64, 40, 128, 25, True)
    assert pick(study.variant_recipe("w32+mels40+hop128+tmask")) == pick(study.artifacts.DIGITS)
    assert study.artifacts.new_classifier(study.variant_recipe("w32+mels40+hop128+tmask"), 10).time_mask
    # The lifter keeps the log-mel's first DCT coefficients: all of them change nothing.
    model = study.artifacts.new_classifier(study.BASE, 10).eval()
    wave = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    plain = model.features(wave)
    study.cepstral_lifter(model, model.mel.n_mels)
    torch.testing.assert_close(model.features(wave), plain, atol=1e-4, rtol=0)
    study.cepstral_lifter(model, 5)
    assert (model.features(wave) - plain).abs().max() > 0.1
    # The level variant scales each clip to an RMS of 0.1 before the classifier hears it.
    heard = []
    levelled = study.Levelled(lambda w: heard.append(w) or w.sum(1, keepdim=True))
    x = torch.randn(2, 400) * torch.tensor([[0.01], [3.0]])
    levelled(x)
    torch.testing.assert_close(heard[0].pow(2).mean(1).sqrt(), torch.full((2,), 0.1))


def test_classifier_fold_freq_mixstyle_and_speaker_reversal():
    study = _load("fsdd_classifier_fold")
    torch.manual_seed(0)
    model = study.artifacts.new_classifier(study.BASE, 10)
    wave = torch.randn(4, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    plain = model.features
    study.freq_mixstyle(model, p=1.0)
    # Evaluation hears the clip as it is; training gets each band's standard deviation over time
    # mixed between clips, its mean (0 after the mean removal) kept.
    model.eval()
    torch.testing.assert_close(model.features(wave), plain(wave))
    model.train()
    torch.manual_seed(1)
    mixed = model.features(wave)
    torch.manual_seed(1)
    reference = plain(wave)
    assert mixed.shape == reference.shape and (mixed - reference).abs().max() > 1e-3
    torch.testing.assert_close(mixed.mean(dim=(1, 3)), torch.zeros(4, mixed.shape[2]), atol=1e-4, rtol=0)
    sd, sd_ref = mixed.std(dim=(1, 3)), reference.std(dim=(1, 3))
    lo, hi = sd_ref.min(dim=0).values, sd_ref.max(dim=0).values
    assert bool(((sd >= lo - 1e-3) & (sd <= hi + 1e-3)).all())
    # The pooled features are what the head reads.
    model.eval()
    torch.testing.assert_close(model.head(model.pooled(wave)), model(wave))
    # The reversal: the identity forward, the gradient times -scale backward.
    x = torch.randn(3, 5, requires_grad=True)
    y = study.GradientReversal.apply(x, 0.5)
    assert torch.equal(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3, 5), -0.5))
    # Speakers as indices of the sorted names.
    fake = type("Split", (), {"speakers": ["lucas", "jackson", "lucas"], "__len__": lambda self: 3, "__getitem__": lambda self, i: i})()
    paired = study.WithSpeaker(fake)
    assert [paired[i] for i in range(3)] == [(0, 1), (1, 0), (2, 1)] and paired.n_speakers == 2


def test_classifier_fold_vocal_tract_warp_moves_formants_and_keeps_nyquist():
    study = _load("fsdd_classifier_fold")
    power = torch.rand(3, 129, 7, generator=torch.Generator().manual_seed(0))
    # alpha 1 is the identity.
    torch.testing.assert_close(study.warp_frequencies(power, torch.ones(3)), power)
    # A peak at bin 40 (below the knee, 0.6 * 128 * min(alpha, 1) / alpha) moves to alpha * 40.
    peak = torch.zeros(2, 129, 1)
    peak[:, 40] = 1.0
    warped = study.warp_frequencies(peak, torch.tensor([1.1, 0.9]))
    assert warped[0].argmax() == 44 and warped[1].argmax() == 36
    # DC and the Nyquist bin stay where they are; values stay within the input's range.
    edges = torch.zeros(2, 129, 1)
    edges[:, 0], edges[:, 128] = 2.0, 3.0
    moved = study.warp_frequencies(edges, torch.tensor([1.1, 0.9]))
    assert torch.equal(moved[:, 0], edges[:, 0]) and torch.equal(moved[:, 128], edges[:, 128])
    assert float(moved.min()) >= 0.0 and float(moved.max()) <= 3.0
    # In the classifier: evaluation hears the clip as recorded, training a warped spectrum.
    torch.manual_seed(0)
    model = study.artifacts.new_classifier(study.variant_recipe("w32+mels40+hop128+tmask+vtlp"), 10)
    wave = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    reference = copy.deepcopy(model)  # the same front end, never warped
    study.vocal_tract_perturbation(model)
    model.eval()
    torch.testing.assert_close(model.log_mel(wave), reference.log_mel(wave))
    model.train()
    torch.manual_seed(1)
    changed = model.log_mel(wave)
    assert changed.shape == reference.log_mel(wave).shape and (changed - reference.log_mel(wave)).abs().max() > 1e-3
    # The warp sits between the power spectrogram and the model's own mel bands and log.
    torch.manual_seed(1)
    alpha = 0.9 + 0.2 * torch.rand(2)
    power = study.warp_frequencies(reference.mel.spectrogram(wave), alpha)
    torch.testing.assert_close(changed, torch.log(reference.mel.mel_scale(power) + 1e-3).unsqueeze(1))


def test_classifier_fold_refuses_the_test_speaker():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fsdd_classifier_fold.py"), "--folds", "george"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 2 and "training speakers" in out.stderr


def test_fsdd_seeds_trains_the_recipe_once_per_seed_and_scores_the_unseen_speaker(tmp_path, monkeypatch, capsys):
    study = tiny_fsdd_study("fsdd_seeds", tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "argv", ["fsdd_seeds.py", "--seeds", "0", "3"])
    study.main()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seed"] for r in rows] == [0, 3]
    for r in rows:
        assert 0.0 <= r["classifier_unseen_speaker_accuracy"] <= 1.0 and 0.0 <= r["interpreter_unseen_speaker_fidelity"] <= 1.0
    # Each seed trained its own classifier, dictionary and interpreter.
    saved = cached_stages(tmp_path)
    assert saved.count("classifier") == saved.count("dictionary") == saved.count("interpreter") == 2


def test_fsdd_interpreter_variants_trains_each_seed_and_variant_on_the_recipes_classifier(tmp_path, monkeypatch, capsys):
    study = tiny_fsdd_study("fsdd_interpreter_variants", tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "argv", [
        "fsdd_interpreter_variants.py", "--json", "--seeds", "0", "3", "--temperatures", "1", "2", "--n", "4",
        "--layer-sets", "block3,block4", "block4",
    ])
    study.main()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["seed"], r["temperature"], r["layers"]) for r in rows[:-1]] == [
        (s, t, ls) for s in (0, 3) for t in (1.0, 2.0) for ls in (["block3", "block4"], ["block4"])
    ]
    for r in rows[:-1]:
        assert r["split"] == "val" and r["n"] == 4 and r["setting"] == "FSDD mix 0 dB"
        assert {"SI-SDRi", "FF", "Fid-In", "val_fidelity", "unseen_speaker_fidelity"} <= set(r)
        assert 0 <= r["mask_mean"] <= 1 and 0 <= r["jaccard"] <= 1
    # One classifier and dictionary; the book's seed's interpreters cached, the others' not.
    assert cached_stages(tmp_path) == ["classifier", "dictionary"] + ["interpreter"] * 4


def test_speaker_fold_trains_one_interpreter_per_layer_set(tmp_path, monkeypatch):
    study = tiny_fsdd_study("fsdd_speaker_fold", tmp_path, monkeypatch)
    rows = study.run_fold("lucas", [1], progress=False, layer_sets=(("block4",), ("block2", "block4")))
    assert [r["layers"] for r in rows] == [["block4"], ["block2", "block4"]]
    assert all(r["fold_speaker"] == "lucas" and 0 <= r["selected_by_val"]["fold_fidelity"] <= 1 for r in rows)
    assert [r["layers"] for r in study.run_fold("lucas", [1], progress=False)] == [["block3", "block4"]]


def test_binary_mask_study_keeps_the_si_sdr_lead_before_it_chases_ff():
    study = _load("binary_mask")
    m = lambda ff, sdr=None: {"FF": ff, **({} if sdr is None else {"SI-SDRi": sdr})}  # noqa: E731
    cuts = (0.2, 0.5)
    low, high = study.binary_name(0.2), study.binary_name(0.5)
    records = [  # a clean setting (no sources, no SI-SDRi) and two mixtures
        {"methods": {study.SOFT: m(0.4), low: m(0.9), high: m(0.6), "SLIME": m(0.7)}},
        {"methods": {study.SOFT: m(0.5, 3.0), low: m(0.8, -1.0), high: m(0.7, 2.0), "SLIME": m(0.7, 0.0)}},
        {"methods": {study.SOFT: m(0.5, 2.0), low: m(0.8, 0.5), high: m(0.6, 1.0), "SLIME": m(0.8, 1.0)}},
    ]
    choice = study.choose(records, cuts)
    # 0.2 has the higher FF (0.833 against 0.633) but its SI-SDRi (-0.25) falls under SLIME's (0.5).
    assert choice["cut"] == 0.5
    assert choice["mean_FF"][low] == 0.8333 and choice["mean_SI-SDRi"][high] == 1.5
    assert choice["mean_SI-SDRi"]["SLIME"] == 0.5
    records[2]["methods"]["SLIME"]["SI-SDRi"] = 5.0  # now no cut clears SLIME's mean (2.5)
    assert study.choose(records, cuts)["cut"] is None
    for r in records:
        del r["methods"]["SLIME"]  # without SLIME, the highest FF
    assert study.choose(records, cuts)["cut"] == 0.2


def test_output_term_study_pairs_each_variant_with_the_first_and_with_slime():
    study = _load("output_fidelity")
    by_method = {
        "lam_out 0": {"FF": torch.tensor([0.5, 0.5, 0.5]), "SI-SDRi": torch.tensor([1.0, 2.0, 3.0])},
        "lam_out 0.05": {"FF": torch.tensor([0.75, 0.5, 1.0]), "SI-SDRi": torch.tensor([1.0, 2.0, 3.0])},
        "SLIME": {"FF": torch.tensor([1.0, 1.0, 1.0])},
    }
    rows = study.paired_rows(by_method)
    assert list(rows) == ["lam_out 0.05 - lam_out 0", "lam_out 0 - SLIME", "lam_out 0.05 - SLIME"]
    assert rows["lam_out 0.05 - lam_out 0"]["FF"]["difference"] == 0.25  # (0.25 + 0 + 0.5) / 3
    assert rows["lam_out 0.05 - lam_out 0"]["SI-SDRi"]["difference"] == 0.0
    assert rows["lam_out 0 - SLIME"]["FF"] == {"difference": -0.5, "low": -0.5, "high": -0.5, "n": 3}
    assert "SI-SDRi" not in rows["lam_out 0 - SLIME"]  # SLIME has no value for it here


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
    report = (tmp_path / "out" / "interpretation.md").read_text()
    assert f"{headline} minus each baseline" in report and "| SLIME | " in report
