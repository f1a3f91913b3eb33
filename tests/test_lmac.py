"""l2i.lmac: L-MAC's decoder reads the classifier like L2I, its losses are the published terms,
and its interpretations are listenable Explanations like every method's."""

import pytest
import torch

from l2i.audio import Spectrogram
from l2i.datasets import SyntheticScenes
from l2i.explanation import apply_mask
from l2i.lmac import LMAC
from l2i.models import MelCNN
from l2i.reading import Layer

SPEC = Spectrogram(8000, 256, 64)


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    train = SyntheticScenes("train", n_per_class=2)
    classifier = MelCNN(len(train.classes), width=4).eval()
    return train, classifier


def test_mask_is_a_share_of_every_bin_for_the_class_asked(parts):
    train, f = parts
    lmac = LMAC(f, ["block2", "block4"], SPEC, classes=train.classes)
    x = torch.stack([train[i].waveform for i in range(3)])
    M, logits, target = lmac.mask(x)
    assert M.shape == (3, SPEC.n_freq, SPEC.n_frames(8000)) and ((M >= 0) & (M <= 1)).all()
    torch.testing.assert_close(target, logits.argmax(1))
    other, _, _ = lmac.mask(x, target=(target + 1) % 8)
    assert not torch.allclose(M, other), "the decoder is told which class to explain"


def test_the_losses_are_the_published_terms(parts):
    train, f = parts
    lmac = LMAC(f, ["block3"], SPEC)
    x = torch.stack([train[i].waveform for i in range(4)])
    terms = lmac._losses(x, 4.0, 0.2, 0.4)
    loss, mask_in, mask_out = terms["loss"], terms["mask_in"], terms["mask_out"]
    X, phase = SPEC.analyze(x)
    M, logits, c = lmac.mask(x, X=X)
    f_in = f(SPEC.synthesize(apply_mask(X, M, "magnitude"), phase, length=8000))
    f_out = f(SPEC.synthesize(apply_mask(X, 1 - M, "magnitude"), phase, length=8000))
    torch.testing.assert_close(mask_in, torch.nn.functional.cross_entropy(f_in, c))
    torch.testing.assert_close(mask_out, -torch.nn.functional.cross_entropy(f_out, c))
    torch.testing.assert_close(loss, 4 * mask_in + 0.2 * mask_out + 0.4 * M.mean())


def test_fit_keeps_the_best_validation_epoch_and_leaves_the_classifier(parts, tmp_path):
    train, f = parts
    before = {k: v.clone() for k, v in f.state_dict().items()}
    lmac = LMAC(f, ["block2", "block4"], SPEC, classes=train.classes)
    rng_before = torch.get_rng_state()
    history = lmac.fit(train, train, epochs=3, batch_size=8, lr=3e-3, progress=False)
    assert len(history.val_loss) == 3 and history.val_loss[history.best_epoch] == min(history.val_loss)
    assert all(torch.equal(v, f.state_dict()[k]) for k, v in before.items())
    assert torch.equal(torch.get_rng_state(), rng_before), "the caller's random state is left as it was"
    e = lmac.explain(torch.stack([train[i].waveform for i in range(2)]), binarize=0.5)
    assert e.method == "L-MAC" and e.audio.shape == (2, 8000) and set(e.mask.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(e.audio + e.residual, e.waveform)
    back = LMAC.load(lmac.save(tmp_path / "lmac.pt"), f)
    torch.testing.assert_close(back.explain(train[0].waveform).mask, lmac.explain(train[0].waveform).mask)
    with pytest.raises(FileNotFoundError):
        LMAC.load(tmp_path / "none.pt", f)


def test_bad_settings_are_named(parts):
    train, f = parts
    with pytest.raises(ValueError, match="lam_out is a weight"):
        LMAC(f, ["block3"], SPEC).fit(train, train, epochs=1, lam_out=-1, progress=False)
    with pytest.raises(ValueError, match="works at 8000 Hz but the spectrogram \(and dictionary\) at 16000"):
        LMAC(f, ["block3"], Spectrogram(16000, 256, 64))
    with pytest.raises(ValueError, match="not sub-modules"):
        LMAC(f, [Layer("conv9")], SPEC)
