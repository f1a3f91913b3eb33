import math

import pytest
import torch

from l2i import metrics as M


def logits_for(*probs):
    """Logits whose softmax is exactly the given probability rows."""
    return torch.log(torch.tensor(probs, dtype=torch.float64))


def test_fidelity_compares_with_the_classifier_not_the_labels():
    f = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    theta = torch.tensor([[1.0, 0.0], [1.0, 0.0], [5.0, 0.0], [0.0, 0.5]])
    assert M.fidelity(theta, f) == 0.75  # labels play no part


def test_fidelity_by_confidence_bins_the_classifier_confidence():
    # Two classes; confidence = sigmoid(logit gap): gap 0 -> 0.5, ln 3 -> 0.75, ln 24 -> 0.96, ln 99 -> 0.99.
    gaps = torch.tensor([0.0, math.log(3), math.log(3), math.log(24), math.log(99)])
    f = torch.stack([gaps, torch.zeros(5)], dim=1)
    interp = torch.tensor([[0.0, 1], [1, 0], [0, 1], [1, 0], [1, 0]])  # agrees on clips 2, 4, 5
    rows = M.fidelity_by_confidence(interp, f, edges=(0.5, 0.8, 0.95))
    assert [(r["low"], r["high"], r["n"]) for r in rows] == [(0.0, 0.5, 0), (0.5, 0.8, 3), (0.8, 0.95, 0), (0.95, 1.0, 2)]
    assert rows[0]["fidelity"] is None and rows[1]["fidelity"] == pytest.approx(1 / 3) and rows[3]["fidelity"] == 1.0
    # Clip 1 (argmax of a tie is class 0, confidence exactly 0.5) falls in [0.5, 0.8): the low edge is in.
    assert sum(r["n"] for r in rows) == 5
    with pytest.raises(ValueError, match="increase strictly"):
        M.fidelity_by_confidence(interp, f, edges=(0.8, 0.5))
    with pytest.raises(ValueError, match=r"\(n, classes\)"):
        M.fidelity_by_confidence(interp[:, :1], f)


def test_faithfulness_hand_computed():
    x = logits_for([0.7, 0.2, 0.1], [0.5, 0.25, 0.25])
    out = logits_for([0.4, 0.3, 0.3], [0.6, 0.2, 0.2])
    ff = M.faithfulness(x, out, torch.tensor([0, 0]))
    torch.testing.assert_close(ff, torch.tensor([0.3, -0.1], dtype=torch.float64))


def test_probabilities_are_computed_once_from_logits():
    """Passing probabilities where logits belong would apply softmax twice: AD must use p_c(x)
    exactly once. Here p_c(x) = 0.8 and p_c(x_in) = 0.4, so AD = 50."""
    x = logits_for([0.8, 0.2])
    x_in = logits_for([0.4, 0.6])
    assert float(M.average_drop(x, x_in, torch.tensor([0]))) == pytest.approx(50.0)
    twice = M.average_drop(torch.softmax(x, 1), torch.softmax(x_in, 1), torch.tensor([0]))
    assert float(twice) != pytest.approx(50.0)  # the pitfall gives another number


def test_input_fidelity_uses_the_target_per_clip():
    x_in = torch.tensor([[0.1, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    target = torch.tensor([1, 1, 2])  # argmax f(x) per clip, not a constant
    assert M.input_fidelity(x_in, target).tolist() == [1.0, 0.0, 1.0]


def test_ai_ad_ag_hand_computed():
    x = logits_for([0.6, 0.4], [0.5, 0.5], [0.9, 0.1])
    x_in = logits_for([0.8, 0.2], [0.25, 0.75], [0.9, 0.1])
    c = torch.tensor([0, 0, 0])
    assert M.average_increase(x, x_in, c).tolist() == [100.0, 0.0, 0.0]
    torch.testing.assert_close(M.average_drop(x, x_in, c), torch.tensor([0.0, 50.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(M.average_gain(x, x_in, c), torch.tensor([50.0, 0.0, 0.0], dtype=torch.float64))


def test_gini_sparseness_hand_computed():
    assert float(M.sparseness(torch.ones(1, 10))) == pytest.approx(0.0, abs=1e-12)
    one_hot = torch.zeros(1, 10)
    one_hot[0, 3] = 5.0
    assert float(M.sparseness(one_hot)) == pytest.approx(1 - 1 / 10)
    # [0, 1]: sorted (0, 1), total 1 -> 1 - 2 * (1 * (2 - 2 + 0.5) / 2) = 0.5
    assert float(M.sparseness(torch.tensor([[1.0, 0.0]]))) == pytest.approx(0.5)
    assert float(M.sparseness(torch.zeros(1, 4))) == 0.0
    assert M.sparseness(torch.rand(3, 4, 5)).shape == (3,)


def test_complexity_is_entropy_of_the_normalised_mask():
    assert float(M.complexity(torch.ones(1, 8))) == pytest.approx(math.log(8))
    assert float(M.complexity(torch.tensor([[0.0, 2.0, 0.0]]))) == pytest.approx(0.0)
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert float(M.complexity(torch.tensor([[1.0, 3.0]]))) == pytest.approx(expected)
    assert float(M.complexity(torch.zeros(1, 5))) == 0.0


def test_si_sdr_hand_computed():
    t = torch.linspace(0, 1, 1000)
    ref = torch.sin(2 * math.pi * 5 * t).unsqueeze(0)
    # Scaling does not matter; equal-energy orthogonal noise gives 0 dB.
    noise = torch.cos(2 * math.pi * 5 * t).unsqueeze(0)
    noise = noise - noise.mean()
    noise = noise - (noise * (ref - ref.mean())).sum() / (ref - ref.mean()).pow(2).sum() * (ref - ref.mean())
    noise = noise * (ref - ref.mean()).norm() / noise.norm()
    assert float(M.si_sdr(3 * ref, ref)) > 100
    assert float(M.si_sdr(ref + noise, ref)) == pytest.approx(0.0, abs=1e-6)
    assert float(M.si_sdr(ref + 0.1 * noise, ref)) == pytest.approx(20.0, abs=1e-6)
    mixture = ref + noise
    assert float(M.si_sdr_improvement(ref + 0.1 * noise, mixture, ref)) == pytest.approx(20.0, abs=1e-6)
    with pytest.raises(ValueError, match="shape"):
        M.si_sdr(ref, ref[:, :10])


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="batch, classes"):
        M.faithfulness(torch.zeros(3), torch.zeros(3), torch.tensor([0]))
    with pytest.raises(ValueError, match="targets"):
        M.faithfulness(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1, 2]))


def test_paired_difference_hand_computed():
    # A constant difference: every resample has the same mean, so the interval is that point.
    out = M.paired_difference(torch.tensor([0.5, 0.7, 0.9]), torch.tensor([0.4, 0.6, 0.8]))
    assert out["difference"] == pytest.approx(0.1) and out["n"] == 3
    assert out["low"] == pytest.approx(0.1) and out["high"] == pytest.approx(0.1)
    # Two clips, differences 1 and 0: resampled means are 0 (1/4), 0.5 (1/2) or 1 (1/4), so the
    # 95% interval runs from 0 to 1 and contains 0: the data cannot tell the methods apart.
    out = M.paired_difference(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))
    assert (out["difference"], out["low"], out["high"]) == (0.5, 0.0, 1.0)
    # Pairing: B is A plus a shift on every clip, however spread A is; the interval is the shift.
    a = torch.randn(50, generator=torch.Generator().manual_seed(0)) * 10
    out = M.paired_difference(a + 0.3, a)
    assert out["low"] == pytest.approx(0.3) and out["high"] == pytest.approx(0.3)
    # Same seed, same interval; the interval narrows as the confidence drops.
    b = torch.rand(50, generator=torch.Generator().manual_seed(1))
    assert M.paired_difference(a, b) == M.paired_difference(a, b)
    wide, narrow = M.paired_difference(a, b), M.paired_difference(a, b, confidence=0.5)
    assert wide["low"] < narrow["low"] <= narrow["high"] < wide["high"]


def test_paired_difference_refuses_what_is_not_paired():
    with pytest.raises(ValueError, match="same length"):
        M.paired_difference(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="same length"):
        M.paired_difference(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="at least 2"):
        M.paired_difference(torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match="confidence"):
        M.paired_difference(torch.zeros(3), torch.zeros(3), confidence=95)
    with pytest.raises(ValueError, match="non-finite"):
        M.paired_difference(torch.tensor([0.0, float("nan")]), torch.zeros(2))


def test_paired_differences_against_every_other_family_and_the_table():
    one = torch.tensor([1.0, 1.0, 1.0, 1.0])
    clips = {
        "L2I": {"FF": one, "SI-SDRi": one},
        "L2I, binary mask": {"FF": one * 2, "SI-SDRi": one},
        "SLIME": {"FF": one * 3, "SI-SDRi": torch.tensor([0.0, 2.0, 0.0, 2.0])},
        "Oracle IRM": {"FF": one, "SI-SDRi": one},
        "Saliency": {"FF": one},
    }
    family = {"L2I": "L2I", "L2I, binary mask": "L2I", "SLIME": "SLIME", "Oracle IRM": "Oracle IRM", "Saliency": "Saliency"}
    out = M.paired_differences(clips, "L2I, binary mask", families=family)
    assert set(out) == {"SLIME", "Saliency"}  # not L2I's own variants, not the oracle
    assert set(M.paired_differences(clips, "L2I, binary mask")) == {"L2I", "SLIME", "Saliency"}  # no families given
    assert out["SLIME"]["FF"]["difference"] == -1.0 and set(out["Saliency"]) == {"FF"}
    table = M.paired_table(out, digits=2)
    assert "| SLIME | **-1.00 [-1.00, -1.00]** | +0.00 [-1.00, +1.00] |" in table  # bold: clear of 0
    assert "| Saliency | **+1.00 [+1.00, +1.00]** | - |" in table
    with pytest.raises(ValueError, match="no per-clip values"):
        M.paired_differences(clips, "L2I + input fidelity")


def test_source_share_tells_whose_energy_an_interpretation_kept():
    from l2i.audio import Spectrogram
    from l2i.explanation import Analysis, explanation_from_mask

    spec = Spectrogram(8000, 256, 64)
    t = torch.arange(8000) / 8000
    low, high = 0.3 * torch.sin(2 * torch.pi * 300 * t), 0.3 * torch.sin(2 * torch.pi * 3000 * t)
    sources = torch.stack([low, high])[None]
    mix = sources.sum(1)
    X, phase = spec.analyze(mix)
    below = (torch.arange(spec.n_freq) < spec.n_freq // 2).float()[None, :, None].expand_as(X)
    analysis = Analysis(mix, X, phase, torch.zeros(1, 2), spec)
    e = explanation_from_mask(analysis, below, torch.tensor([0]), 0.2, "mask", domain="magnitude")
    assert float(M.source_share(e, sources, spec, 0)) > 0.99 and float(M.source_share(e, sources, spec, 1)) < 0.01
    whole = explanation_from_mask(analysis, torch.ones_like(X), torch.tensor([0]), 0.2, "mask")
    torch.testing.assert_close(M.source_share(whole, sources, spec, 0) + M.source_share(whole, sources, spec, 1), torch.ones(1))
