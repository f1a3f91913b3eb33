import numpy as np
import pytest
import soundfile as sf
import torch

from l2i.audio import Spectrogram, check_waveform, fit_length, load, mix_at_snr, resample, rms, save, scale_to_snr, white_noise


@pytest.mark.parametrize("n_fft,hop", [(256, 64), (1024, 512), (512, None)])
def test_round_trip_is_exact_and_batched(n_fft, hop):
    spec = Spectrogram(sample_rate=8000, n_fft=n_fft, hop_length=hop)
    x = torch.randn(3, 8000) * 0.3
    X, phase = spec.analyze(x)
    assert X.shape == (3, n_fft // 2 + 1, spec.n_frames(8000))
    assert (X >= 0).all()
    y = spec.synthesize(X, phase, length=8000)
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-4


def test_forward_matches_analyze_and_single_clip_shape():
    spec = Spectrogram(8000, 256)
    x = torch.randn(4000) * 0.1
    X = spec(x)
    assert X.shape == (129, spec.n_frames(4000))
    torch.testing.assert_close(X, spec.analyze(x)[0])
    assert spec.config() == {"sample_rate": 8000, "n_fft": 256, "hop_length": 64}


def test_masked_magnitude_stays_below_input_energy():
    spec = Spectrogram(8000, 256)
    x = torch.randn(8000) * 0.2
    X, phase = spec.analyze(x)
    y = spec.synthesize(0.5 * X, phase, length=8000)
    assert rms(y) < rms(x)


@pytest.mark.parametrize(
    "bad,message",
    [
        (torch.tensor([0.1, float("nan"), 0.2] * 200), "NaN or Inf"),
        (torch.tensor([0.1, float("inf")] * 300), "NaN or Inf"),
        (torch.zeros(0), "empty"),
        (torch.zeros(50), "shorter than one STFT frame"),
        (torch.zeros(800, dtype=torch.int16), "dtype"),
        (torch.zeros(2, 2, 800), "shape"),
        (np.zeros(800, dtype=np.float32), "numpy"),
    ],
)
def test_bad_waveforms_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        Spectrogram(8000, 256)(bad)


def test_spectrogram_settings_are_checked():
    with pytest.raises(ValueError, match="hop_length"):
        Spectrogram(8000, 256, hop_length=200)
    with pytest.raises(ValueError, match="sample_rate"):
        Spectrogram(0, 256)
    spec = Spectrogram(8000, 256)
    X, phase = spec.analyze(torch.randn(4000) * 0.1)
    with pytest.raises(ValueError, match="frequency bins"):
        Spectrogram(8000, 512).synthesize(X, phase)
    with pytest.raises(ValueError, match="same shape"):
        spec.synthesize(X, phase[:, :-1])


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0])
def test_mix_at_snr_reaches_the_requested_snr(snr):
    s, n = torch.randn(2, 8000) * 0.3, torch.randn(2, 8000)
    mix = mix_at_snr(s, n, snr)
    noise = mix - s
    measured = 20 * torch.log10(rms(s) / rms(noise))
    torch.testing.assert_close(measured, torch.full((2,), snr), atol=1e-3, rtol=0)


def test_scale_to_snr_rejects_silence_and_length_mismatch():
    with pytest.raises(ValueError, match="silent"):
        scale_to_snr(torch.randn(100), torch.zeros(100), 0)
    with pytest.raises(ValueError, match="one length"):
        scale_to_snr(torch.randn(100), torch.randn(90), 0)
    with pytest.raises(ValueError, match="'raise' or 'zero'"):
        scale_to_snr(torch.randn(100), torch.randn(100), 0, silent="skip")


def test_scale_to_snr_can_give_a_silent_other_zero_gain():
    signal, other = torch.randn(3, 800), torch.randn(3, 800)
    other[1] = 0.0
    scaled = scale_to_snr(signal, other, torch.tensor([0.0, 0.0, 6.0]), silent="zero")
    assert torch.isfinite(scaled).all() and (scaled[1] == 0).all()
    torch.testing.assert_close(rms(scaled[0]), rms(signal[0]))
    torch.testing.assert_close(20 * torch.log10(rms(signal[2]) / rms(scaled[2])), torch.tensor(6.0), atol=1e-4, rtol=0)


def test_fit_length_pads_and_crops():
    x = torch.arange(5.0)
    assert fit_length(x, 3).tolist() == [0, 1, 2]
    assert fit_length(x, 7).tolist() == [0, 1, 2, 3, 4, 0, 0]


def test_load_mixes_down_and_resamples(tmp_path):
    t = np.arange(16000) / 16000
    left, right = np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], 1) * 0.5, 16000)
    x, rate = load(tmp_path / "stereo.wav")
    assert rate == 16000 and x.shape == (16000,) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), left * 0.25, atol=1e-4)
    y, rate = load(tmp_path / "stereo.wav", sample_rate=8000)
    assert rate == 8000 and y.shape == (8000,)
    torch.testing.assert_close(y, resample(x, 16000, 8000))


def test_load_flac(tmp_path):
    sf.write(tmp_path / "a.flac", np.full(800, 0.25), 8000)
    x, rate = load(tmp_path / "a.flac")
    assert rate == 8000 and abs(float(x.mean()) - 0.25) < 1e-3


def test_load_rejects_missing_garbage_truncated_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(ValueError, match="cannot read"):
        load(tmp_path / "junk.wav")
    sf.write(tmp_path / "full.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 8000), 8000)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load(tmp_path / "cut.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0), 8000)
    with pytest.raises(ValueError, match="no samples"):
        load(tmp_path / "empty.wav")


def test_save_round_trip_and_is_atomic(tmp_path):
    x = torch.linspace(-0.5, 0.5, 800)
    path = save(tmp_path / "out" / "clip.wav", x, 8000)
    y, rate = load(path)
    assert rate == 8000 and (y - x).abs().max() < 1e-4
    with pytest.raises(ValueError):
        save(tmp_path / "out" / "bad.wav", torch.tensor([0.1, float("nan")] * 10), 8000)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.wav"]


def test_check_waveform_accepts_good_input():
    x = torch.randn(2, 100)
    assert check_waveform(x) is x


def test_white_noise_sits_at_the_asked_level_below_each_row():
    clips = torch.stack([torch.sin(torch.arange(16000) * 0.05), 0.01 * torch.ones(16000)])
    snr = torch.tensor([[10.0], [30.0]])
    noise = white_noise(clips, snr, torch.Generator().manual_seed(0))
    assert noise.shape == clips.shape
    measured = 20 * torch.log10(rms(clips) / rms(noise))
    assert torch.allclose(measured, snr.squeeze(1), atol=0.2)  # nominal level: within 0.2 dB at 16000 samples
    again = white_noise(clips, snr, torch.Generator().manual_seed(0))
    assert torch.equal(noise, again)


def test_synthesis_gradient_is_finite_at_subnormal_magnitudes():
    # torch.polar's gradient divides by |S|: NaN at a subnormal magnitude, which a soft mask on a
    # quiet bin can produce (it made an interpreter trained with the input term NaN on one machine).
    spec = Spectrogram(8000, 256)
    x = torch.randn(1, 4000, generator=torch.Generator().manual_seed(0))
    X, phase = spec.analyze(x)
    mask = torch.full_like(X, 0.5)
    # Masked magnitudes in float32's subnormal range, in the last bins: there CPUs with AVX-512 take
    # ATen's scalar path too (elsewhere their vector path happens to give a finite gradient).
    mask[..., -3:, -3:] = 1e-39 / X[..., -3:, -3:]
    mask.requires_grad_(True)
    spec.synthesize(mask * X, phase, length=4000).pow(2).sum().backward()
    assert torch.isfinite(mask.grad).all()
