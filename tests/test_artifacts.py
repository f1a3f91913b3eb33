import pytest
import torch

from l2i.book import artifacts
from l2i.datasets import Mixtures
from l2i.downloads import cache_dir
from l2i.metrics import evaluate
from l2i.models import mix_pairs, perturb

TINY = artifacts.Recipe(
    "scenes", n_per_class=2, n_components=8, nmf_iter=5, classifier_width=4, classifier_epochs=1,
    interpreter_epochs=1, layers=("block3", "block4"),
)


def test_artifacts_are_cached_under_content_keys():
    model, history = artifacts.classifier(TINY, progress=False)
    interp = artifacts.interpreter(TINY, model, progress=False)
    files = sorted(p.name for p in (cache_dir() / "artifacts").iterdir())
    assert [f.split("-")[1] for f in files] == ["classifier", "dictionary", "interpreter"]
    # A second call loads what is there: same weights, no new files.
    again, history_again = artifacts.classifier(TINY, progress=False)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    assert history_again.val_accuracy == history.val_accuracy
    x = artifacts.datasets(TINY)["test"][0].waveform
    torch.testing.assert_close(artifacts.interpreter(TINY, again, progress=False)(x), interp(x))
    assert sorted(p.name for p in (cache_dir() / "artifacts").iterdir()) == files
    # Training again as the recipe says gives the cached interpreter; another seed another one,
    # and neither is written to the cache.
    retrained = artifacts.train_interpreter(TINY, again, progress=False)
    # Bit for bit on the CPU; on a GPU to rounding (cuDNN's convolution gradients are not deterministic).
    exact = dict(rtol=1e-5, atol=1e-6) if torch.cuda.is_available() else dict(rtol=0, atol=0)
    torch.testing.assert_close(retrained(x), interp(x), **exact)
    other = artifacts.train_interpreter(TINY, again, seed=1, progress=False)
    assert not torch.equal(other(x), interp(x))
    assert sorted(p.name for p in (cache_dir() / "artifacts").iterdir()) == files
    # A changed interpreter setting trains a new interpreter only.
    artifacts.interpreter(TINY.with_(lam_in=0.5), model, progress=False)
    names = sorted(p.name for p in (cache_dir() / "artifacts").iterdir())
    assert len(names) == 4 and sum("interpreter" in n for n in names) == 2
    # Keys depend on the settings a stage depends on, and on nothing else.
    assert artifacts._key(TINY, "classifier") == artifacts._key(TINY.with_(lam_in=1.0), "classifier")
    assert artifacts._key(TINY, "interpreter") != artifacts._key(TINY.with_(lam_out=0.3), "interpreter")
    assert artifacts._key(TINY, "interpreter") != artifacts._key(TINY.with_(fidelity_domain="magnitude"), "interpreter")
    with pytest.raises(ValueError, match="domain must be one of"):
        TINY.with_(fidelity_domain="linear")
    with pytest.raises(ValueError, match="weights, 0 or more"):
        TINY.with_(lam_out=-0.1)
    assert artifacts._key(TINY, "classifier") != artifacts._key(TINY.with_(classifier_epochs=2), "classifier")
    assert artifacts._key(TINY, "interpreter") != artifacts._key(TINY.with_(classifier_epochs=2), "interpreter")


def test_every_module_is_either_training_code_or_measurement_code():
    from pathlib import Path

    package = Path(artifacts.__file__).parents[1]
    names = {str(p.relative_to(package).with_suffix("")) for p in package.rglob("*.py")}
    assert names == set(artifacts._TRAINING_MODULES) | set(artifacts._MEASUREMENT_MODULES)
    assert not set(artifacts._TRAINING_MODULES) & set(artifacts._MEASUREMENT_MODULES)


def test_evaluate_reports_every_metric_and_mixture_scores():
    model, _ = artifacts.classifier(TINY, progress=False)
    interp = artifacts.interpreter(TINY, model, progress=False)
    test = artifacts.datasets(TINY)["test"]
    result = evaluate(interp.explain, interp.classify, test, batch_size=4)
    for key in ("fidelity", "FF", "Fid-In", "AI", "AD", "AG", "SPS", "COMP", "seconds_per_explanation"):
        assert key in result
    assert result["n"] == len(test) and 0 <= result["Fid-In"] <= 1 and 0 <= result["AD"] <= 100
    mixes = evaluate(interp.explain, interp.classify, Mixtures(test, n_mixtures=4, seed=0))
    assert {"SI-SDR", "SI-SDRi", "SI-SDR_mixture"} <= set(mixes)
    assert abs(mixes["SI-SDRi"] - (mixes["SI-SDR"] - mixes["SI-SDR_mixture"])) < 1e-6


def test_the_esc50_chapter_path_runs_on_a_fabricated_archive(tmp_path, monkeypatch):
    """The functions the chapter "ESC-50 on a GPU" calls, on a tiny archive in the official layout."""
    monkeypatch.delenv("L2I_ESC50", raising=False)
    from fabricated import fabricate_esc50

    from l2i import baselines
    from l2i.datasets import ESC50, evaluation_sets
    from l2i.metrics import compare

    archive = fabricate_esc50(tmp_path)
    ESC50("all", url=archive.as_uri())  # unpacked into the cache, where the recipe finds it
    recipe = artifacts.ESC50_PAPER.with_(
        duration=0.5, n_components=6, nmf_iter=3, classifier_width=4, classifier_epochs=1,
        interpreter_epochs=1, layers=("block3", "block4"),
    )
    assert (recipe.sample_rate, recipe.n_fft, recipe.hop_length) == (44100, 1024, 512)
    data = artifacts.datasets(recipe)
    assert data["test"].classes == ("dog", "rooster", "rain") and len(data["train"]) == 9
    assert data["test"][0].waveform.shape == (22050,)
    interp = artifacts.interpreter(recipe, progress=False)
    assert interp.spectrogram.config() == {"sample_rate": 44100, "n_fft": 1024, "hop_length": 512}
    assert interp.n_components == 6
    sets = evaluation_sets(data["test"], n=2)
    results = compare(baselines.methods(interp, slime_samples=20), interp.classify, sets["mix 0.8/0.2"], batch_size=2)
    assert set(results) == {
        "L2I", "L2I, magnitude mask", "Random components", "Saliency", "Integrated Gradients", "SLIME", "Oracle IRM",
    }
    assert all("SI-SDRi" in r for r in results.values())
    with pytest.raises(ValueError, match="8 kHz"):
        artifacts.Recipe("fsdd", sample_rate=16000)


def test_recipe_mixing_share_is_checked_and_builds_the_augmentation():
    with pytest.raises(ValueError, match="interpreter_mix"):
        artifacts.Recipe("scenes", interpreter_mix=2.0)
    assert artifacts.interpreter_augment(TINY) is None
    assert artifacts._key(TINY, "interpreter") != artifacts._key(TINY.with_(interpreter_mix=0.5), "interpreter")
    assert artifacts._key(TINY, "classifier") == artifacts._key(TINY.with_(interpreter_mix=0.5), "classifier")
    x = torch.randn(6, 800) * 0.05
    mixed = artifacts.interpreter_augment(TINY.with_(interpreter_mix=1.0))(x, torch.Generator().manual_seed(0))
    assert mixed.shape == x.shape and not torch.allclose(mixed, x)
    # Perturbation first, then mixing: the same draws as the two steps one after the other.
    both = artifacts.interpreter_augment(TINY.with_(interpreter_mix=1.0, interpreter_augment=True))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(both(x, g1), mix_pairs(perturb(x, g2), g2, p=1.0))


def test_code_digest_ignores_docstrings_and_comments_but_not_code():
    digest = artifacts._code_digest
    base = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    assert digest(base) == digest('def f(x):\n    """Another doc."""\n    # why\n\n    return x + 1  # note\n')
    assert digest(base) == digest("def f(x):\n    return (x\n            + 1)\n")
    assert digest('"""Module doc."""\nclass A:\n    """A."""\n') == digest("class A:\n    pass\n")
    assert digest(base) != digest('def f(x):\n    """Doc."""\n    return x + 2\n')
    assert digest(base) != digest('def f(x):\n    """Doc."""\n    return "x + 1"\n')
    # A string statement after the first is code as far as the digest knows: kept.
    assert digest(base) != digest('def f(x):\n    """Doc."""\n    "later"\n    return x + 1\n')



def test_recipe_temperature_is_checked_keyed_and_passed_to_fit(monkeypatch):
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="interpreter_temperature"):
            TINY.with_(interpreter_temperature=bad)
    warm = TINY.with_(interpreter_temperature=3.0)
    assert artifacts._key(TINY, "interpreter") != artifacts._key(warm, "interpreter")
    assert artifacts._key(TINY, "classifier") == artifacts._key(warm, "classifier")
    assert artifacts._key(TINY, "dictionary") == artifacts._key(warm, "dictionary")
    model, _ = artifacts.classifier(TINY, progress=False)
    seen = []
    fit = artifacts.Interpreter.fit

    def spy(self, *args, **kwargs):
        seen.append(kwargs["temperature"])
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(artifacts.Interpreter, "fit", spy)
    x = artifacts.datasets(TINY)["test"][0].waveform
    plain = artifacts.train_interpreter(TINY, model, progress=False)
    softened = artifacts.train_interpreter(warm, model, progress=False)
    assert seen == [1.0, 3.0]
    # The same seed and data: only the fidelity term differs, and so do the trained interpreters.
    assert not torch.equal(plain(x), softened(x))


def test_recipe_front_end_builds_the_classifier_and_keys_it():
    coarse = TINY.with_(classifier_n_mels=40, classifier_hop_length=128)
    model = artifacts.new_classifier(coarse, 10)
    assert (model.mel.n_mels, model.mel.hop_length, model.block1[0].out_channels) == (40, 128, 4)
    default = artifacts.new_classifier(TINY, 10)
    assert (default.mel.n_mels, default.mel.hop_length) == (64, 64)  # a quarter of the 256-sample window
    assert artifacts._key(TINY, "classifier") != artifacts._key(coarse, "classifier")
    assert artifacts._key(TINY, "interpreter") != artifacts._key(coarse, "interpreter")
    assert artifacts._key(TINY, "dictionary") == artifacts._key(coarse, "dictionary")
    # The front end changes what the network sees: 1 s at 8 kHz is 63 frames every 128 samples.
    assert model.features(torch.zeros(1, 8000)).shape == (1, 1, 40, 63)
    for bad in ({"classifier_n_mels": 0}, {"classifier_hop_length": 0}):
        with pytest.raises(ValueError, match="classifier_n_mels and classifier_hop_length"):
            TINY.with_(**bad)
