import copy

import pytest
import torch
from torch import nn

from l2i.audio import Spectrogram
from l2i.datasets import SyntheticScenes
from l2i.explanation import apply_mask
from l2i.interpreter import Interpreter, hidden_layers
from l2i.losses import fidelity_loss, removal_loss
from l2i.models import MelCNN
from l2i.nmf import NMF

SPEC = Spectrogram(8000, 256)


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    train = SyntheticScenes("train", n_per_class=3)
    val = SyntheticScenes("val", n_per_class=2)
    X = torch.cat([SPEC(train[i].waveform) for i in range(len(train))], dim=1)
    nmf = NMF(12, n_iter=30, progress=False).fit(X, spectrogram=SPEC)
    classifier = MelCNN(len(train.classes), width=4).eval()
    return train, val, nmf, classifier


def make(classifier, nmf, **kw):
    return Interpreter(classifier, ["block2", "block4"], nmf, **kw)


@pytest.fixture(scope="module")
def trained(parts):
    train, _, nmf, f = parts
    torch.manual_seed(1)
    interp = make(f, nmf)
    start = interp.fidelity(train)
    interp.fit(train, train, epochs=25, batch_size=8, lr=3e-3, progress=False)
    return interp, start


def test_hooks_shapes_and_forward(parts):
    train, _, nmf, f = parts
    interp = make(f, nmf)
    assert interp.n_classes == 8 and interp.n_components == 12
    first = interp.layouts[0]
    assert (first.batch, first.time, first.features) == (0, 3, 8 * 16) and len(first.shape) == 4
    x = torch.stack([train[i].waveform for i in range(3)])
    H, logits, X = interp.activations(x)
    assert H.shape == (3, 12, SPEC.n_frames(8000)) and (H >= 0).all()
    assert interp(x).shape == (3, 8)
    assert not any(n.startswith("classifier") for n, _ in interp.named_parameters())


def test_classifier_is_left_exactly_as_it_was(parts):
    train, val, nmf, f = parts
    f.train()  # whatever state it is in must come back
    f.block1[0].weight.requires_grad_(False)
    before = copy.deepcopy(f.state_dict())
    flags = [p.requires_grad for p in f.parameters()]
    interp = make(f, nmf)
    interp.fit(train, val, epochs=1, batch_size=8, lam_in=0.5, lam_out=0.5, domain="magnitude", progress=False)
    interp.explain(train[0].waveform)
    for k, v in f.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert [p.requires_grad for p in f.parameters()] == flags
    assert f.training
    assert all(p.grad is None for p in f.parameters())
    assert all(not m._forward_hooks for m in f.modules())
    f.eval()
    f.block1[0].weight.requires_grad_(True)


def test_wrong_layers_and_outputs_are_named(parts):
    _, _, nmf, f = parts
    with pytest.raises(ValueError, match="block2, block2.0"):
        Interpreter(f, ["block9"], nmf)
    assert "block3" in hidden_layers(f)

    class Probabilities(nn.Module):
        sample_rate = 8000

        def __init__(self):
            super().__init__()
            self.net = nn.Linear(8000, 3)

        def forward(self, x):
            return torch.softmax(self.net(x), dim=1)

    with pytest.raises(ValueError, match="probabilities"):
        Interpreter(Probabilities(), ["net"], nmf)

    class Pair(Probabilities):
        def forward(self, x):
            return self.net(x), x

    with pytest.raises(ValueError, match="not logits"):
        Interpreter(Pair(), ["net"], nmf)


def test_dictionary_must_match_rate_and_stft(parts):
    _, _, nmf, f = parts
    with pytest.raises(ValueError, match="n_fft=256 but"):
        make(f, nmf, spectrogram=Spectrogram(8000, 512))
    other = NMF(4, n_iter=2, progress=False).fit(torch.rand(129, 50), spectrogram={"sample_rate": 16000, "n_fft": 256, "hop_length": 64})
    with pytest.raises(ValueError, match="8000 Hz"):
        make(f, other)
    with pytest.raises(ValueError, match="does not record"):
        make(f, nmf.W)
    assert make(f, nmf.W, spectrogram=SPEC).n_components == 12


def test_explanations_add_up_and_respect_the_threshold(parts, trained):
    train, _, nmf, f = parts
    interp, _ = trained
    x = torch.stack([train[i].waveform for i in range(4)])
    e = interp.explain(x)
    assert not e.silent.any()
    assert len(e) == 4 and e.audio.shape == x.shape and e.mask.shape == e.X.shape
    torch.testing.assert_close(e.audio + e.residual, x)
    assert (e.mask >= 0).all() and (e.mask <= 1).all()
    assert torch.equal(e.target, e.decision)
    assert torch.equal(e.selected, e.relevance > 0.2)
    assert (e.relevance.amax(1) == 1).all()
    one = interp.explain(x[0], target=3, threshold=0.0, top_k=2)
    assert one.target.tolist() == [3] and int(one.selected.sum()) <= 2
    assert one.component_audio(one.components()[0]).shape == (8000,)
    assert "target" in e.summary(0) and "<audio" in e._repr_html_()
    assert e[1].waveform.shape == (1, 8000)


def test_apply_mask_in_both_domains_by_hand():
    X = torch.log1p(torch.tensor([[100.0, 3.0], [0.0, 8.0]]))
    mask = torch.tensor([[0.5, 1.0], [0.3, 0.0]])
    # log1p domain: (1 + |S|)^M - 1 is kept; 100 at M = 0.5 keeps sqrt(101) - 1.
    torch.testing.assert_close(torch.expm1(apply_mask(X, mask)), torch.tensor([[101**0.5 - 1, 3.0], [0.0, 0.0]]))
    torch.testing.assert_close(torch.expm1(apply_mask(X, mask, "magnitude")), torch.tensor([[50.0, 3.0], [0.0, 0.0]]))
    binary = (mask > 0.4).float()
    torch.testing.assert_close(apply_mask(X, binary), apply_mask(X, binary, "magnitude"))
    with pytest.raises(ValueError, match="domain must be one of"):
        apply_mask(X, mask, "linear")


def test_magnitude_domain_explanations(parts, trained):
    train, _, nmf, f = parts
    interp, _ = trained
    x = torch.stack([train[i].waveform for i in range(4)])
    log, mag = interp.explain(x), interp.explain(x, domain="magnitude")
    assert torch.equal(log.mask, mag.mask) and torch.equal(log.selected, mag.selected)
    assert (log.domain, mag.domain) == ("log1p", "magnitude") and "domain='magnitude'" in repr(mag)
    torch.testing.assert_close(mag.X_in, torch.log1p(mag.mask * torch.expm1(mag.X)))
    torch.testing.assert_close(mag.audio + mag.residual, x)
    # A soft mask keeps more of each bin on the magnitude: the interpretation is louder.
    assert (mag.X_in >= log.X_in - 1e-5).all()
    assert float(mag.audio.pow(2).sum()) > float(log.audio.pow(2).sum())
    k = mag.components()[0]
    assert float(mag.component_audio(k).pow(2).sum()) >= float(log.component_audio(k).pow(2).sum())
    assert mag[0].domain == "magnitude"
    with pytest.raises(ValueError, match="domain must be one of"):
        interp.explain(x, domain="linear")


def test_binary_masks_keep_whole_bins_where_the_kept_components_explain_enough(parts, trained):
    train, _, nmf, f = parts
    interp, _ = trained
    x = torch.stack([train[i].waveform for i in range(4)])
    soft = interp.explain(x)
    for cut in (0.3, 1.0):
        hard = interp.explain(x, binarize=cut, domain="magnitude")
        assert torch.equal(hard.selected, soft.selected) and hard.binarize == cut
        assert torch.equal(hard.mask, (soft.mask >= cut).float()), "a bin is kept whole exactly where M >= cut"
        # Whole bins: the interpretation is the input's magnitude there and nothing elsewhere.
        torch.testing.assert_close(hard.X_in, hard.mask * hard.X)
        torch.testing.assert_close(hard.audio + hard.residual, x)
        assert f"binarize={cut:g}" in repr(hard) and hard[1].binarize == cut
    assert 0 < float(interp.explain(x, binarize=0.3).mask.mean()) < 1
    assert soft.binarize is None and "binarize" not in repr(soft)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"binarize is the share of a bin .* in \(0, 1\]"):
            interp.explain(x, binarize=bad)


def test_bad_targets_and_silence(parts):
    train, _, nmf, f = parts
    interp = make(f, nmf)
    with pytest.raises(ValueError, match="outside the classifier's 8 classes"):
        interp.explain(train[0].waveform, target=8)
    with pytest.raises(ValueError, match="entries"):
        interp.explain(torch.stack([train[0].waveform] * 2), target=[1, 2, 3])
    with pytest.raises(ValueError, match="Hz"):
        interp.explain(train[0].waveform, sample_rate=16000)
    with pytest.raises(ValueError, match="shorter than one STFT frame"):
        interp.explain(torch.zeros(100))
    e = interp.explain(torch.zeros(8000))
    assert bool(e.silent[0]) and int(e.selected.sum()) == 0
    assert torch.isfinite(e.audio).all() and float(e.audio.abs().max()) == 0.0
    assert torch.isfinite(e.relevance).all() and torch.isfinite(e.mask).all()
    assert "nothing to explain" in e.summary(0)


def test_fit_multilabel_and_save_load(parts, tmp_path):
    train, val, nmf, f = parts
    interp = make(f, nmf, multilabel=True, classes=SyntheticScenes.classes)
    history = interp.fit(train, val, epochs=2, batch_size=8, progress=False)
    assert len(history.loss) == 2 and 0 <= history.best_val_fidelity <= 1
    path = interp.save(tmp_path / "interp.pt")
    loaded = Interpreter.load(path, f)
    x = train[0].waveform
    torch.testing.assert_close(loaded(x), interp(x))
    assert loaded.classes == SyntheticScenes.classes and loaded.multilabel
    other = MelCNN(8, width=6).eval()
    with pytest.raises(ValueError, match="same classifier"):
        Interpreter.load(path, other)


def test_removal_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 30.0]])
    p = torch.softmax(logits, 1)
    expected = -torch.log1p(-torch.stack([p[0, 0], p[1, 1]]))
    torch.testing.assert_close(removal_loss(logits, torch.tensor([0, 1])), expected)
    # p_c within float rounding of 1: 1 - p_c would be 0 and its log infinite; this stays exact.
    far = removal_loss(torch.tensor([[40.0, 0.0]]), torch.tensor([0]))
    torch.testing.assert_close(far, torch.tensor([40.0]))


def test_output_term_is_trained_and_recorded(parts):
    train, val, nmf, f = parts
    torch.manual_seed(2)
    plain = make(f, nmf).fit(train, val, epochs=2, batch_size=8, lam_in=0.5, progress=False)
    assert plain.output_fidelity_loss == [0.0, 0.0] and min(plain.input_fidelity_loss) > 0
    torch.manual_seed(2)
    both = make(f, nmf).fit(train, val, epochs=2, batch_size=8, lam_in=0.5, lam_out=0.5, progress=False)
    assert min(both.output_fidelity_loss) > 0 and both.loss != plain.loss
    torch.manual_seed(2)
    out_only = make(f, nmf, multilabel=True).fit(train, val, epochs=1, batch_size=8, lam_out=1.0, domain="magnitude", progress=False)
    assert out_only.output_fidelity_loss[0] > 0
    with pytest.raises(ValueError, match="lam_in and lam_out are weights"):
        make(f, nmf).fit(train, val, epochs=1, lam_out=-1.0, progress=False)
    with pytest.raises(ValueError, match="domain must be one of"):
        make(f, nmf).fit(train, val, epochs=1, lam_in=1.0, domain="db", progress=False)


def test_training_reaches_the_classifier_decisions(parts, trained):
    """On the training clips themselves, a few epochs give better than chance agreement."""
    train, _, _, _ = parts
    interp, before = trained
    assert interp.history.best_val_fidelity >= 0.5 > 1 / 8
    assert interp.history.reconstruction[-1] < interp.history.reconstruction[0]
    assert interp.fidelity(train) >= before


def test_augment_perturbs_training_batches_only(parts):
    train, val, nmf, f = parts
    seen = []

    def reverse(waveforms, generator):
        seen.append(waveforms.clone())
        return waveforms.flip(-1)  # time-reversed: another spectrogram, other hidden activations

    torch.manual_seed(0)
    plain = make(f, nmf)
    torch.manual_seed(0)
    perturbed = make(f, nmf)
    plain.fit(train, val, epochs=1, batch_size=8, progress=False)
    perturbed.fit(train, val, epochs=1, batch_size=8, augment=reverse, progress=False)
    # every training clip went through it once, in batches of 8, and no validation clip did
    assert [len(b) for b in seen] == [8, 8, 8]
    clips = {tuple(train[i].waveform[:50].tolist()) for i in range(len(train))}
    assert {tuple(w[:50].tolist()) for b in seen for w in b} == clips
    trained_on = dict(perturbed.named_parameters())
    assert any(not torch.equal(p, trained_on[n]) for n, p in plain.named_parameters())


def test_on_epoch_sees_each_epoch_at_its_validated_weights(parts):
    train, val, nmf, f = parts
    seen = []

    def record(epoch, interp, history):
        # the weights validated this epoch: scoring val again gives the recorded fidelity
        seen.append((epoch, len(history.val_fidelity), interp.fidelity(val)))

    torch.manual_seed(2)
    interp = make(f, nmf)
    history = interp.fit(train, val, epochs=3, batch_size=8, progress=False, on_epoch=record)
    assert [s[:2] for s in seen] == [(0, 1), (1, 2), (2, 3)]
    assert [s[2] for s in seen] == history.val_fidelity
    torch.manual_seed(2)
    again = make(f, nmf).fit(train, val, epochs=3, batch_size=8, progress=False)
    assert again.val_fidelity == history.val_fidelity and again.loss == history.loss  # observing changes nothing


def test_temperature_softens_the_fidelity_term_and_one_is_the_original(parts):
    train, val, nmf, f = parts
    histories = {}
    for t in (None, 1.0, 3.0):
        torch.manual_seed(3)
        kw = {} if t is None else {"temperature": t}
        histories[t] = make(f, nmf).fit(train, val, epochs=2, batch_size=8, progress=False, **kw)
    assert histories[1.0].loss == histories[None].loss  # 1 is the default loss, exactly
    assert histories[3.0].fidelity_loss != histories[1.0].fidelity_loss
    # The term itself: T^2 times the cross-entropy of the softened distributions.
    interp = make(f, nmf)
    out, logits = torch.randn(5, 8), 4 * torch.randn(5, 8)
    soft = torch.softmax(logits / 3, dim=1)
    expected = 9 * -(soft * torch.log_softmax(out / 3, dim=1)).sum(1).mean()
    torch.testing.assert_close(fidelity_loss(out, logits, temperature=3.0), expected)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            interp.fit(train, val, epochs=1, temperature=bad, progress=False)


def test_explanations_are_saved_as_wav_files_at_their_loudness(parts, trained, tmp_path):
    import warnings

    from l2i.audio import load

    train, _, _, _ = parts
    interp, _ = trained
    x = torch.stack([train[i].waveform for i in range(2)]) * 0.5
    e = interp.explain(x)
    paths = e.save(tmp_path / "out", n_components=2)
    names = [p.name for p in paths]
    for i in range(2):
        cls = e.class_name(e.target[i]).replace(" ", "-")
        assert {f"{i}_input.wav", f"{i}_interpretation_{cls}.wav", f"{i}_residual.wav"} <= set(names)
        assert [n for n in names if n.startswith(f"{i}_component_")] == [f"{i}_component_{k}.wav" for k in e.components(i)[:2]]
    # Read back: the same clips at the same level, to 16-bit rounding.
    back, rate = load(tmp_path / "out" / "1_residual.wav")
    assert rate == 8000 and (back - e.residual[1]).abs().max() < 1e-4
    # Nothing replaced without asking, and nothing written before the refusal.
    before = {p: p.stat().st_mtime_ns for p in paths}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        e.save(tmp_path / "out")
    assert {p: p.stat().st_mtime_ns for p in paths} == before
    assert len(e.save(tmp_path / "out", n_components=2, overwrite=True)) == len(paths)
    with pytest.raises(ValueError, match="n_components"):
        e.save(tmp_path / "other", n_components=-1)
    assert not (tmp_path / "other").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="folder"):
        e.save(tmp_path / "file")
    # A loud item is scaled as a whole, so its clips keep their relative loudness.
    loud = interp.explain(x[:1] * 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = loud.save(tmp_path / "loud", n_components=0)
    assert any("scaled by" in str(w.message) for w in caught)
    clip, _ = load(files[0])
    peak = max(float(loud.waveform[0].abs().max()), float(loud.audio[0].abs().max()), float(loud.residual[0].abs().max()))
    assert abs(float(clip.abs().max()) - float(loud.waveform[0].abs().max()) / peak) < 1e-3


def test_fit_stops_with_a_clear_error_when_the_loss_is_not_finite(parts, tmp_path):
    train, val, nmf, f = parts
    interp = make(f, nmf)
    with pytest.raises(FloatingPointError, match="interpreter's training loss is nan at epoch 1, batch 2"):
        interp.fit(train, val, epochs=2, batch_size=8, lr=float("inf"), progress=False)


class _UndefinedGradient(torch.nn.Module):
    """A classifier whose gradient with respect to its input is NaN everywhere (``sqrt`` at 0,
    times 0), as a complex ``abs`` is at subnormal values with ATen's generic CPU kernels."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base(x) + 0.0 * torch.sqrt(x * x - x * x).sum(dim=-1, keepdim=True)


def test_a_classifier_gradient_that_is_nan_somewhere_does_not_poison_training(parts):
    from l2i.lmac import LMAC

    train, val, nmf, f = parts
    f = _UndefinedGradient(f).eval()
    x = train[0].waveform[None].requires_grad_()
    f(x).sum().backward()
    assert torch.isnan(x.grad).all()  # the gradient the fidelity terms would meet
    interp = Interpreter(f, ["base.block2", "base.block4"], nmf)
    interp.fit(train, val, epochs=2, batch_size=8, lr=3e-3, lam_in=1.0, lam_out=1.0, progress=False)
    assert all(torch.isfinite(p).all() for p in interp.parameters())
    lmac = LMAC(f, ["base.block4"], nmf.spectrogram)
    lmac.fit(train, val, epochs=1, batch_size=8, progress=False)
    assert all(torch.isfinite(p).all() for p in lmac.parameters())
