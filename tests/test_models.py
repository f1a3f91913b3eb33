"""l2i.models: the reference CNN, its training masks and loop, and the mixing augmentation."""

import pytest
import torch

from l2i.audio import rms
from l2i.datasets import SyntheticScenes
from l2i.models import MelCNN, accuracy, mask_stretch, mix_pairs, train_classifier


def _clips(batch: int = 4, n: int = 800) -> torch.Tensor:
    t = torch.arange(n) / 8000
    return torch.stack([0.1 * (i + 1) * torch.sin(2 * torch.pi * 200 * (i + 1) * t) for i in range(batch)])


def test_every_chosen_clip_gets_another_clip_at_the_drawn_snr():
    x = _clips()
    out = mix_pairs(x, torch.Generator().manual_seed(0), p=1.0, snr_db=(3.0, 3.0))
    assert out.shape == x.shape
    added = out - x
    for i in range(len(x)):
        # The added part is one other clip of the batch, scaled: find which one.
        partners = [j for j in range(len(x)) if j != i and abs(torch.nn.functional.cosine_similarity(added[i], x[j], dim=0)) > 0.999]
        assert len(partners) == 1
        snr = 20 * torch.log10(rms(x[i]) / rms(added[i]))
        assert float(snr) == pytest.approx(3.0, abs=1e-3)


def test_no_mixing_leaves_clips_alone_and_loud_sums_are_limited():
    x = _clips()
    torch.testing.assert_close(mix_pairs(x, torch.Generator().manual_seed(0), p=0.0), x)
    torch.testing.assert_close(mix_pairs(x[:1], torch.Generator().manual_seed(0), p=1.0), x[:1])  # no partner
    loud = _clips() * 9
    out = mix_pairs(loud, torch.Generator().manual_seed(0), p=1.0)
    assert float(out.abs().max()) == pytest.approx(0.9, abs=1e-6)
    # Roughly half the clips are chosen at p = 0.5; a silent partner adds nothing and no NaN.
    x = torch.cat([_clips(63) / 63, torch.zeros(1, 800)])  # quiet: no sum is limited
    out = mix_pairs(x, torch.Generator().manual_seed(1), p=0.5)
    changed = (out - x).abs().amax(dim=1) > 0
    assert 16 <= int(changed.sum()) <= 48 and bool(torch.isfinite(out).all())


def test_bad_arguments_are_named():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        mix_pairs(_clips(), g, p=1.5)
    with pytest.raises(ValueError, match="low, high"):
        mix_pairs(_clips(), g, snr_db=(5.0, -5.0))
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        mix_pairs(_clips()[None], g)
    with pytest.raises(ValueError, match=r"mix channels down"):
        MelCNN(3)(_clips()[:, None].expand(-1, 2, -1))  # (batch, channels, samples)


def test_mask_stretch_zeroes_one_short_stretch_of_the_chosen_axis_per_example():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 40, 63) + 1.0  # no zeros of its own
    for dim, size in [(2, 40), (3, 63)]:
        out = mask_stretch(x, dim)
        assert out.shape == x.shape
        kept = out != 0
        other = 3 if dim == 2 else 2
        # whole bands (or frames): the mask does not depend on the other axis
        assert torch.equal(kept.all(dim=other), kept.any(dim=other))
        line = kept.all(dim=other).squeeze(1)  # (batch, size)
        widths = (~line).sum(dim=1)
        assert widths.max() < size // 6 and widths.sum() > 0
        for row in line:  # one contiguous stretch
            gone = (~row).nonzero().flatten()
            if len(gone):
                assert gone[-1] - gone[0] + 1 == len(gone)
        assert torch.equal(out[kept], x[kept])


def test_melcnn_masks_frames_while_training_only_and_when_asked():
    wave = torch.randn(8, 8000, generator=torch.Generator().manual_seed(1)) * 0.1
    torch.manual_seed(0)
    net = MelCNN(10, width=4, n_mels=40, hop_length=128, time_mask=True)
    plain = MelCNN(10, width=4, n_mels=40, hop_length=128)

    def masked_frames(model):
        with torch.no_grad():
            return (model.features(wave) == 0).all(dim=2).sum().item()  # frames zero in every band

    torch.manual_seed(3)
    assert masked_frames(net.train()) > 0
    torch.manual_seed(3)
    assert masked_frames(plain.train()) == 0
    assert masked_frames(net.eval()) == 0
    with torch.no_grad():
        assert torch.equal(net.features(wave), plain.eval().features(wave))


def test_pooling_without_gradients_gives_max_pool2d_values():
    import torch.nn.functional as F

    from l2i.models import MaxPool2x2, MelCNN

    pool = MaxPool2x2()
    for shape in [(2, 3, 7, 9), (1, 1, 2, 3), (2, 4, 64, 126)]:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        x[0, 0, 0, 0] = float("nan")
        with torch.no_grad():
            fast = pool(x)
        expected = F.max_pool2d(x, 2)
        assert fast.shape == expected.shape
        assert torch.equal(fast.nan_to_num(7.0), expected.nan_to_num(7.0))
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    pool(x).sum().backward()  # the gradient path: one winner per window
    assert x.grad.sum() == 4 and set(x.grad.unique().tolist()) <= {0.0, 1.0}
    torch.manual_seed(0)
    net = MelCNN(10, width=4).eval()
    wave = torch.randn(3, 8000) * 0.1
    with torch.no_grad():
        reading = net(wave)
    assert torch.equal(reading, net(wave.clone().requires_grad_()).detach())
    # The head reads the pooled features, 16 * width of them per clip.
    with torch.no_grad():
        features = net.pooled(wave)
    assert features.shape == (3, 64) and torch.equal(net.head(features), reading)


def test_train_classifier_keeps_the_best_validation_epoch_and_reports_each_epoch():
    train = SyntheticScenes("train", n_per_class=2, duration=0.5)
    val = SyntheticScenes("val", n_per_class=1, duration=0.5)
    seen = []

    def record(epoch, model, history):
        seen.append((epoch, len(history.val_accuracy), accuracy(model, val)))

    torch.manual_seed(0)
    model = MelCNN(len(train.classes), width=4)
    history = train_classifier(model, train, val, epochs=3, batch_size=8, progress=False, on_epoch=record)
    assert [s[:2] for s in seen] == [(0, 1), (1, 2), (2, 3)]
    assert [s[2] for s in seen] == history.val_accuracy  # called at the weights just validated
    assert not model.training and accuracy(model, val) == history.best_val_accuracy
    assert history.best_val_accuracy == max(history.val_accuracy)


def test_train_classifier_stops_when_the_loss_is_not_finite():
    train = SyntheticScenes("train", n_per_class=2)
    model = MelCNN(len(train.classes), width=4)
    with pytest.raises(FloatingPointError, match="classifier's training loss is nan"):
        train_classifier(model, train, train, epochs=1, batch_size=4, lr=float("inf"), progress=False)
