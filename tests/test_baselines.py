import copy

import pytest
import torch
from torch import nn

from l2i import baselines
from l2i.explainers import Explainer, families
from l2i.audio import Spectrogram
from l2i.datasets import NOISE, Mixtures, NoisyClips, SyntheticScenes, collate
from l2i.explanation import Explanation
from l2i.interpreter import Interpreter
from l2i.metrics import compare, evaluate, results_table, si_sdr, si_sdr_improvement
from l2i.models import MelCNN
from l2i.nmf import NMF

SPEC = Spectrogram(8000, 256, 64)
LOW_BINS, EARLY_FRAMES = 32, 60  # the region the toy classifier listens to


class RegionClassifier(nn.Module):
    """Two classes decided by the energy of one time-frequency region only (low bins, first frames)."""

    def __init__(self):
        super().__init__()
        self.spec = Spectrogram(8000, 256, 64)
        self.gain = nn.Parameter(torch.tensor(4.0))

    def forward(self, x):
        s = self.spec(x)[:, :LOW_BINS, :EARLY_FRAMES].mean(dim=(1, 2)) * self.gain - 0.5
        return torch.stack([s, -s], dim=1)


def tone(freq: float, start: float, stop: float, n: int = 8000) -> torch.Tensor:
    t = torch.arange(n) / 8000
    return 0.3 * torch.sin(2 * torch.pi * freq * t) * ((t >= start) & (t < stop))


@pytest.fixture(scope="module")
def toy():
    # class 0 is heard in a low tone early on; a high tone late in the clip is ignored by f.
    x = tone(300, 0.05, 0.4) + tone(3000, 0.6, 0.95)
    return RegionClassifier().eval(), x.unsqueeze(0)


@pytest.fixture(scope="module")
def interp():
    torch.manual_seed(0)
    train = SyntheticScenes("train", n_per_class=3)
    X = torch.cat([SPEC(train[i].waveform) for i in range(len(train))], dim=1)
    nmf = NMF(12, n_iter=30, progress=False).fit(X, spectrogram=SPEC)
    return Interpreter(MelCNN(len(train.classes), width=4).eval(), ["block2", "block4"], nmf, spectrogram=SPEC), train


def snapshot(model):
    return copy.deepcopy(model.state_dict()), model.training, [p.requires_grad for p in model.parameters()]


def assert_unchanged(model, before):
    state, training, flags = before
    assert model.training == training
    assert [p.requires_grad for p in model.parameters()] == flags
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["Saliency", "IntegratedGradients", "SLIME"])
def test_spectrogram_methods_find_the_region_the_classifier_listens_to(toy, name):
    f, x = toy
    before = snapshot(f)
    kwargs = {"n_samples": 300} if name == "SLIME" else {}
    method = getattr(baselines, name)(f, SPEC, ("low", "other"), **kwargs)
    e = method.explain(x, threshold=0.2)
    assert isinstance(e, Explanation) and e.method == method.name
    assert e.audio.shape == x.shape and torch.isfinite(e.audio).all()
    assert 0 <= float(e.mask.min()) and float(e.mask.max()) <= 1
    assert int(e.target[0]) == int(f(x).argmax()) == 0
    kept = e.mask[0] > 0.5
    assert kept.any()
    # Everything kept lies where f looks (SLIME's grid cells may straddle its edge by one cell).
    if name == "SLIME":
        rows, cols = kept.nonzero().unbind(1)
        assert int(rows.min()) < LOW_BINS and int(cols.min()) < EARLY_FRAMES
        assert not kept[LOW_BINS + 20 :, :].any() and not kept[:, EARLY_FRAMES + 20 :].any()
    else:
        assert not kept[LOW_BINS:, :].any() and not kept[:, EARLY_FRAMES:].any()
    # The ignored high tone is not in the interpretation: it stays in the residual.
    high = SPEC(e.residual[0])[90:110, 80:120].sum() / SPEC(x[0])[90:110, 80:120].sum()
    assert float(high) > 0.95
    assert_unchanged(f, before)


def test_saliency_is_the_input_gradient(toy):
    f, x = toy
    X, phase = SPEC.analyze(x)
    X = X.clone().requires_grad_(True)
    logit = f(SPEC.synthesize(X, phase, length=x.shape[-1]))[0, 1]
    (grad,) = torch.autograd.grad(logit, X)
    A = baselines.Saliency(f, SPEC).attribute(X.detach(), phase, torch.tensor([1]), x.shape[-1])
    torch.testing.assert_close(A, grad.abs())


def test_integrated_gradients_are_complete(toy):
    f, x = toy
    X, phase = SPEC.analyze(x)
    ig = baselines.IntegratedGradients(f, SPEC, n_steps=64)
    A = ig.attribute(X, phase, torch.tensor([0]), x.shape[-1])
    with torch.no_grad():
        gap = f(SPEC.synthesize(X, phase, length=8000))[0, 0] - f(SPEC.synthesize(torch.zeros_like(X), phase, length=8000))[0, 0]
    assert abs(float(A.sum()) - float(gap)) < 0.02 * abs(float(gap))


def test_slime_segments_tile_the_spectrogram_and_are_reproducible(toy):
    f, x = toy
    slime = baselines.SLIME(f, SPEC, n_time=5, n_freq=4, n_samples=200)
    seg = slime.segments(126)
    assert seg.shape == (SPEC.n_freq, 126) and set(seg.unique().tolist()) == set(range(20))
    a, b = slime.explain(x), slime.explain(x)
    assert torch.equal(a.relevance, b.relevance) and a.relevance.shape == (1, 20) and a.unit == "segment"
    # The mask is exactly the union of the selected segments.
    torch.testing.assert_close(a.mask[0], a.selected[0][seg].float())
    # KernelSHAP is the other estimator; bad settings are refused.
    assert baselines.SLIME(f, SPEC, n_samples=100, method="kernelshap").explain(x).relevance.shape == (1, 80)
    with pytest.raises(ValueError, match="lime"):
        baselines.SLIME(f, SPEC, method="shap")
    with pytest.raises(ValueError, match="bands"):
        baselines.SLIME(f, SPEC, n_freq=500)


def test_random_components_keep_as_many_as_l2i(interp):
    it, data = interp
    x = collate([data[i] for i in range(6)]).waveforms
    l2i = it.explain(x)
    rnd = baselines.RandomComponents(it, seed=3)
    e = rnd.explain(x)
    assert torch.equal(e.selected.sum(1), l2i.selected.sum(1))
    assert not torch.equal(e.selected, l2i.selected)  # 6 clips: a random draw equal to L2I's is ~impossible
    assert e.method == "Random components" and e.interpreter_logits is None
    again = baselines.RandomComponents(it, seed=3).explain(x)
    assert torch.equal(again.selected, e.selected)
    e.component_audio(int(e.components(0)[0]))  # NMF-based: components are playable


def test_oracle_ratio_mask_recovers_the_source_and_needs_sources(interp):
    it, data = interp
    mixes = Mixtures(data, n_mixtures=4, snr_db=0.0, seed=0)
    b = collate([mixes[i] for i in range(4)])
    irm = baselines.IdealRatioMask.from_interpreter(it)
    e = irm.explain(b.waveforms, target=b.source_labels[:, 0], sources=b.sources, source_labels=b.source_labels)
    improvement = si_sdr(e.audio, b.sources[:, 0]) - si_sdr(b.waveforms, b.sources[:, 0])
    assert float(improvement.min()) > 5
    # A class that is in neither source: nothing to explain, silent audio, never NaN.
    absent = [next(c for c in range(8) if c not in row.tolist()) for row in b.source_labels]
    e = irm.explain(b.waveforms, target=absent, sources=b.sources, source_labels=b.source_labels)
    assert bool(e.silent.all()) and float(e.audio.abs().max()) == 0
    with pytest.raises(ValueError, match="n_sources"):
        irm.explain(b.waveforms, sources=b.sources[:, 0], source_labels=b.source_labels)
    with pytest.raises(ValueError, match="needs mixtures"):
        evaluate(irm.explain, irm.classify, data)
    # compare() skips the oracle where there are no sources, and runs it where there are.
    assert "oracle" not in compare({"oracle": irm.explain}, irm.classify, data)
    result = compare({"oracle": irm.explain}, irm.classify, mixes)["oracle"]
    assert result["SI-SDRi"] > 5 and "fidelity" not in result
    # Per clip: the means are the means of the values returned, one per clip (SI-SDRi: one per
    # explained source), in the data's order, the same for every method.
    results, clips = compare({"oracle": irm.explain, "again": irm.explain}, irm.classify, mixes, per_clip=True)
    assert results["oracle"]["SI-SDRi"] == pytest.approx(result["SI-SDRi"])
    for metric, values in clips["oracle"].items():
        assert values.ndim == 1 and float(values.mean()) == pytest.approx(results["oracle"][metric])
    assert clips["oracle"]["FF"].numel() == len(mixes) and clips["oracle"]["SI-SDRi"].numel() == 2 * len(mixes)
    assert torch.equal(clips["oracle"]["SI-SDRi"], clips["again"]["SI-SDRi"])


def test_evaluate_explains_each_class_of_a_mixture_once(interp):
    it, data = interp
    mixes = Mixtures(data, n_mixtures=8, snr_db=0.0, seed=0)
    asked = []

    def explain(x, target=None, threshold=0.2):
        asked.append(None if target is None else target.tolist())
        return it.explain(x, target=target, threshold=threshold)

    _, clips = evaluate(explain, it.classify, mixes, batch_size=8, per_clip=True)
    b = collate([mixes[i] for i in range(8)])
    decision = it.classify(b.waveforms).argmax(1)
    # The decision first, then each source's class only for the clips where it is another class.
    assert asked[0] is None
    expected = [b.source_labels[:, s][b.source_labels[:, s] != decision].tolist() for s in range(2)]
    assert asked[1:] == [e for e in expected if e]
    assert 0 < sum(map(len, expected)) < 16  # the shortcut was taken, and not everywhere
    # The scores are those of explaining every source's class outright, in the same order.
    full = torch.cat([si_sdr_improvement(it.explain(b.waveforms, target=b.source_labels[:, s]).audio, b.waveforms, b.sources[:, s])
                      for s in range(2)])
    torch.testing.assert_close(clips["SI-SDRi"], full.double(), atol=1e-4, rtol=0)


def test_noisy_clips_add_white_noise_at_the_snr_and_noise_is_not_explained(interp):
    it, data = interp
    noisy = NoisyClips(data, snr_db=0.0, n_clips=3, seed=1)
    ex = noisy[1]
    assert ex.source_labels == (data[1].label, NOISE)
    torch.testing.assert_close(ex.sources.sum(0), ex.waveform)
    snr = 10 * torch.log10(ex.sources[0].pow(2).mean() / ex.sources[1].pow(2).mean())
    assert abs(float(snr)) < 1e-3
    assert torch.equal(noisy[1].waveform, ex.waveform)  # the same noise at every read
    result = evaluate(it.explain, it.classify, noisy)
    assert result["n"] == 3 and "SI-SDRi" in result  # the clip's class explained, the noise skipped
    with pytest.raises(IndexError):
        noisy[3]


def test_bad_input_gets_clear_errors(toy):
    f, x = toy
    with pytest.raises(TypeError, match="nn.Module"):
        baselines.Saliency(lambda w: w, SPEC)
    s = baselines.Saliency(f, SPEC)
    with pytest.raises(ValueError, match="threshold"):
        s.explain(x, threshold=1.5)
    with pytest.raises(ValueError, match="outside the classifier's 2 classes"):
        s.explain(x, target=5)
    with pytest.raises(ValueError, match="shorter than one STFT frame"):
        s.explain(torch.zeros(1, 100))


def test_silent_clip_has_nothing_to_explain(toy):
    f, _ = toy
    e = baselines.Saliency(f, SPEC).explain(torch.zeros(1, 8000))
    assert bool(e.silent[0]) and torch.isfinite(e.audio).all() and "nothing to explain" in e.summary(0)


def test_results_table_marks_the_best_non_oracle_value():
    results = {
        "A": {"FF": 0.5, "AD": 10.0, "seconds_per_explanation": 0.002},
        "B": {"FF": 0.2, "AD": 5.0, "seconds_per_explanation": 1.5},
        "Oracle IRM": {"FF": 0.9, "AD": 0.0},
    }
    table = results_table(results, columns=("FF", "AD", "seconds_per_explanation"))
    lines = table.splitlines()
    assert lines[0] == "| method | FF ↑ | AD ↓ | s / explanation ↓ |"
    assert lines[2] == "| A | **0.500** | 10.000 | **0.002** |"
    assert lines[3] == "| B | 0.200 | **5.000** | 1.5 |"
    assert lines[4] == "| Oracle IRM | 0.900 | 0.000 | - |"


def test_methods_adds_the_last_interpreter_with_a_binary_mask(interp):
    import copy

    interpreter, train = interp
    x = torch.stack([train[i].waveform for i in range(2)])
    plain = baselines.methods(interpreter, slime_samples=10)
    assert not any("binary" in name for name in plain)
    assert all(isinstance(m, Explainer) and m.name == name for name, m in plain.items())
    assert families(plain)["L2I, magnitude mask"] == "L2I" and plain["Oracle IRM"].needs_sources
    trained_in, trained_out = copy.copy(interpreter), copy.copy(interpreter)
    trained_in.objective = {"lam_in": 1.0, "lam_out": 0.0}  # as fit(lam_in=1) records it
    trained_out.objective = {"lam_in": 1.0, "lam_out": 0.5}
    with_in = baselines.methods(interpreter, input_fidelity=trained_in, slime_samples=10, binarize=0.4)
    assert [n for n in with_in if "binary" in n] == ["L2I + input fidelity, binary mask"]
    e = with_in["L2I + input fidelity, binary mask"].explain(x)
    assert e.binarize == 0.4 and set(e.mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(e.mask, (interpreter.explain(x).mask >= 0.4).float())
    with_out = baselines.methods(interpreter, output_fidelity=trained_out, slime_samples=10, binarize=0.4)
    assert [n for n in with_out if "binary" in n] == ["L2I + input/output fidelity, binary mask"]
    with pytest.raises(ValueError, match="two methods are named 'L2I'"):
        baselines.methods(interpreter, input_fidelity=interpreter)
    with pytest.raises(ValueError, match="binarize is the share"):
        baselines.methods(interpreter, binarize=1.5)
