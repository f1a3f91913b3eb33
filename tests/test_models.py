"""l2i.models.mix_pairs: the mixing augmentation for interpreter training."""

import pytest
import torch

from l2i.audio import rms
from l2i.models import mix_pairs


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
