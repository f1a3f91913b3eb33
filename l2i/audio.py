"""Audio front end: files in, log-magnitude spectrograms out, and back to sound.

Book: chapter "Listening to the data" (loading, mixing) and chapter "Learning the
dictionary" (the log1p magnitude spectrogram ``X`` and its inverse).

Conventions
-----------
* Waveforms are float tensors of shape ``(samples,)`` or ``(batch, samples)``.
* Spectrograms are ``(freq, time)`` or ``(batch, freq, time)``: ``X = log(1 + |STFT(x)|)``.
* Phases are angles in radians with the same shape as ``X``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor, nn

from .persistence import atomic_path

__all__ = [
    "Spectrogram",
    "check_waveform",
    "as_batch",
    "load",
    "save",
    "resample",
    "fit_length",
    "scale_to_snr",
    "mix_at_snr",
    "rms",
    "white_noise",
]


def check_waveform(waveform: Tensor, name: str = "waveform", min_samples: int = 1) -> Tensor:
    """Check that ``waveform`` is a usable ``(samples,)`` or ``(batch, samples)`` float tensor.

    Raises
    ------
    ValueError
        With the problem and the fix, for non-tensors, integer/complex/bool dtypes, other
        shapes, empty clips or batches, clips shorter than ``min_samples`` and NaN or Inf samples.
    """
    if isinstance(waveform, np.ndarray):
        raise ValueError(f"{name} is a numpy array; pass torch.from_numpy({name}) instead")
    if not isinstance(waveform, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(waveform).__name__}")
    if not waveform.is_floating_point():
        raise ValueError(
            f"{name} has dtype {waveform.dtype}; audio must be floating point in [-1, 1]: "
            f"for 16-bit PCM use {name}.float() / 32768"
        )
    if waveform.ndim not in (1, 2):
        raise ValueError(
            f"{name} has shape {tuple(waveform.shape)}; expected (samples,) or (batch, samples): "
            "mix channels down first (waveform.mean(dim=0))"
        )
    n = waveform.shape[-1]
    if n == 0:
        raise ValueError(f"{name} is empty (0 samples): there is nothing to analyse")
    if waveform.ndim == 2 and waveform.shape[0] == 0:
        raise ValueError(f"{name} is a batch of no clips, shape {tuple(waveform.shape)}: give at least one")
    if n < min_samples:
        raise ValueError(
            f"{name} has {n} samples, shorter than one STFT frame ({min_samples} samples): "
            "pad the clip (l2i.audio.fit_length) or use a smaller n_fft"
        )
    if not torch.isfinite(waveform).all():
        bad = int((~torch.isfinite(waveform)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN or Inf samples: fix the source of the clip or replace them "
            "(torch.nan_to_num)"
        )
    return waveform


class Spectrogram(nn.Module):
    """Log-magnitude STFT front end and its inverse, the ``X`` of the L2I method.

    ``X = log(1 + |STFT(x)|)`` with a Hann window, ``center=True``; ``freq = n_fft // 2 + 1``
    and ``time = 1 + samples // hop_length``. The inverse takes a (possibly masked) ``X`` and a
    phase and returns a waveform; the unmasked round trip is exact to float precision.

    Book: chapter "Learning the dictionary".

    Parameters
    ----------
    sample_rate : int
        Sample rate the spectrogram is computed at. Recorded so that a dictionary learnt at one
        rate is never applied at another.
    n_fft : int
        FFT size (and window length).
    hop_length : int, optional
        Hop between frames; defaults to ``n_fft // 4``.

    Examples
    --------
    >>> spec = Spectrogram(sample_rate=8000, n_fft=256)
    >>> X, phase = spec.analyze(torch.randn(2, 8000) * 0.1)   # (2, 129, 126) each
    >>> y = spec.synthesize(X, phase, length=8000)            # (2, 8000)
    """

    def __init__(self, sample_rate: int = 8000, n_fft: int = 256, hop_length: int | None = None):
        super().__init__()
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if int(n_fft) < 8:
            raise ValueError(f"n_fft must be at least 8, got {n_fft}")
        hop_length = n_fft // 4 if hop_length is None else int(hop_length)
        if not 0 < hop_length <= n_fft // 2:
            raise ValueError(
                f"hop_length must be in (0, n_fft/2] for an invertible STFT, got {hop_length} "
                f"with n_fft={n_fft}"
            )
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    @property
    def n_freq(self) -> int:
        """Number of frequency bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        """Number of frames for a clip of ``n_samples`` samples."""
        return 1 + n_samples // self.hop_length

    def check_length(self, waveform: Tensor) -> None:
        """Raise a clear error when ``(..., samples)`` clips are shorter than one STFT frame."""
        if waveform.shape[-1] < self.n_fft:
            raise ValueError(
                f"the clip has {waveform.shape[-1]} samples, shorter than one STFT frame ({self.n_fft}): "
                "pad it (l2i.audio.fit_length)"
            )

    def config(self) -> dict:
        """The settings that define ``X``: stored with dictionaries and interpreters."""
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())

    def _stft(self, waveform: Tensor) -> Tensor:
        check_waveform(waveform, min_samples=self.n_fft // 2 + 1)
        if waveform.dtype in (torch.float16, torch.bfloat16):  # the FFT needs at least float32 on a CPU
            waveform = waveform.float()
        window = self.window.to(device=waveform.device, dtype=waveform.dtype)
        return torch.stft(
            waveform,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )

    def forward(self, waveform: Tensor) -> Tensor:
        """Log1p magnitude ``X``: ``(samples,) -> (freq, time)``, ``(batch, samples) -> (batch, freq, time)``."""
        return torch.log1p(self._stft(waveform).abs())

    def analyze(self, waveform: Tensor) -> tuple[Tensor, Tensor]:
        """``X`` and the phase (radians), both ``(batch, freq, time)`` for a batch."""
        S = self._stft(waveform)
        return torch.log1p(S.abs()), torch.angle(S)

    def synthesize(self, X: Tensor, phase: Tensor, length: int | None = None) -> Tensor:
        """Waveform from a log1p magnitude and a phase (the inverse of :meth:`analyze`).

        Parameters
        ----------
        X : Tensor
            ``(freq, time)`` or ``(batch, freq, time)`` log1p magnitudes, non-negative.
        phase : Tensor
            Same shape as ``X``; usually the input's phase.
        length : int, optional
            Number of samples to return (the input's length, for an exact round trip).
        """
        if X.shape != phase.shape:
            raise ValueError(f"X {tuple(X.shape)} and phase {tuple(phase.shape)} must have the same shape")
        if X.shape[-2] != self.n_freq:
            raise ValueError(
                f"X has {X.shape[-2]} frequency bins but this Spectrogram has {self.n_freq} "
                f"(n_fft={self.n_fft}): use the Spectrogram that computed X"
            )
        # The magnitude times a unit phasor, not torch.polar(magnitude, phase): polar's gradient
        # divides by |S| and is NaN where a masked magnitude is subnormal, which poisoned training
        # with the input-fidelity term on some machines. The phase gets no gradient here.
        S = torch.expm1(X.clamp_min(0)) * torch.polar(torch.ones_like(phase), phase.detach())
        window = self.window.to(device=X.device, dtype=X.dtype)
        return torch.istft(
            S, n_fft=self.n_fft, hop_length=self.hop_length, window=window, center=True, length=length
        )


def rms(waveform: Tensor) -> Tensor:
    """Root mean square over the last axis: ``(..., samples) -> (...)``."""
    return waveform.pow(2).mean(dim=-1).sqrt()


def white_noise(like: Tensor, snr_db: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """White Gaussian noise shaped like ``like`` ``(batch, samples)``, each row ``snr_db``
    ``(batch, 1)`` dB below that row's RMS.

    The level is set from the noise's expected power, not the power of the draw (cheaper than
    :func:`scale_to_snr`, and off by a small fraction of a dB for clips of a second); used to
    perturb training clips (:func:`l2i.models.perturb`).
    """
    return torch.randn(like.shape, generator=generator, dtype=like.dtype) * rms(like).unsqueeze(-1) * 10 ** (-snr_db / 20)


PEAK = 0.9
"""The level l2i brings a sum of clips down to when it would clip (mixtures, noisy clips, training
mixes), and what it scales audio to when it must."""


def peak_gain(audio: Tensor, peak: float = PEAK, always: bool = False) -> Tensor:
    """The factor ``(..., 1)`` that brings each row of ``audio`` ``(..., samples)`` to a peak of at
    most ``peak`` (1 for a row already below it; with ``always``, every non-silent row to exactly
    ``peak``). Clips mixed together are scaled by their sum's factor, so they still add up to it."""
    top = audio.abs().amax(dim=-1, keepdim=True)
    return torch.where((top > peak) | (always & (top > 0)), peak / top.clamp_min(1e-12), torch.ones_like(top))


def limit_peak(audio: Tensor, peak: float = PEAK, always: bool = False) -> Tensor:
    """``audio * peak_gain(audio, peak, always)``: each row at most ``peak`` loud."""
    return audio * peak_gain(audio, peak, always)


def as_batch(waveform: Tensor, name: str = "waveform") -> Tensor:
    """Checked ``waveform`` as ``(batch, samples)``: a ``(samples,)`` clip becomes a batch of one."""
    check_waveform(waveform, name)
    return waveform.unsqueeze(0) if waveform.ndim == 1 else waveform


def scale_to_snr(signal: Tensor, other: Tensor, snr_db: float | Tensor, silent: str = "raise") -> Tensor:
    """Scale ``other`` so that ``10 log10(P_signal / P_other) = snr_db``.

    Shapes ``(samples,)`` or ``(batch, samples)``; ``snr_db`` is a float or a ``(batch,)`` tensor.
    A silent ``other`` has no SNR: ``silent="raise"`` (default) says so, ``silent="zero"`` returns
    zeros for it, for callers such as :func:`l2i.models.mix_pairs` that must not stop mid-batch.
    """
    check_waveform(signal, "signal")
    check_waveform(other, "other")
    if silent not in ("raise", "zero"):
        raise ValueError(f"silent must be 'raise' or 'zero', got {silent!r}")
    if signal.shape[-1] != other.shape[-1]:
        raise ValueError(
            f"signal has {signal.shape[-1]} samples and other {other.shape[-1]}: "
            "bring them to one length first (l2i.audio.fit_length)"
        )
    p_other = rms(other)
    if silent == "raise" and bool((p_other == 0).any()):
        raise ValueError("other is silent (all zeros): it cannot be scaled to an SNR; pass silent='zero' to add nothing instead")
    snr = torch.as_tensor(snr_db, dtype=signal.dtype, device=signal.device)
    gain = rms(signal) / (p_other.clamp_min(1e-12) * torch.pow(10.0, snr / 20))
    gain = torch.where(p_other > 0, gain, torch.zeros_like(gain))
    return other * gain.unsqueeze(-1)


def mix_at_snr(signal: Tensor, other: Tensor, snr_db: float | Tensor) -> Tensor:
    """Mixture ``signal + g * other`` with ``g`` chosen so the SNR of ``signal`` is ``snr_db``.

    Book: chapter "Listening to the data". Shapes as in :func:`scale_to_snr`.
    """
    return signal + scale_to_snr(signal, other, snr_db)


def fit_length(waveform: Tensor, n_samples: int) -> Tensor:
    """Zero-pad at the end or crop to ``n_samples``: ``(..., samples) -> (..., n_samples)``."""
    n = waveform.shape[-1]
    if n >= n_samples:
        return waveform[..., :n_samples]
    return torch.nn.functional.pad(waveform, (0, n_samples - n))


def resample(waveform: Tensor, orig_rate: int, new_rate: int) -> Tensor:
    """Band-limited resampling through torchaudio: ``(..., samples) -> (..., samples')``."""
    if int(orig_rate) == int(new_rate):
        return waveform
    return AF.resample(waveform, int(orig_rate), int(new_rate))


def load(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[Tensor, int]:
    """Read a WAV/FLAC/OGG file as a mono float32 waveform ``(samples,)``.

    Channels are averaged; with ``sample_rate`` the clip is resampled to it.

    Returns
    -------
    (waveform, sample_rate)

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        For an unreadable or truncated file, or one with no samples or non-finite samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for broken files
        raise ValueError(
            f"cannot read audio file {path}: {err}. The file is damaged or not audio; "
            "re-download or re-export it (WAV, FLAC and OGG are supported)"
        ) from err
    if data.shape[0] == 0:
        raise ValueError(f"audio file {path} holds no samples: re-export it or remove it")
    if info.format == "WAV" and _wav_is_truncated(path, info):
        raise ValueError(
            f"audio file {path} is truncated: its header promises more samples than it holds; "
            "re-download or re-export it"
        )
    waveform = torch.from_numpy(data.mean(axis=1))
    check_waveform(waveform, name=f"audio in {path}")
    if sample_rate is not None:
        waveform = resample(waveform, rate, sample_rate)
        rate = int(sample_rate)
    return waveform, int(rate)


def _wav_is_truncated(path: Path, info) -> bool:
    """True when a WAV's data chunk claims more bytes than the file holds.

    libsndfile quietly reads what is there; a cut download should be an error instead.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return False
        size = path.stat().st_size
        little = head[:4] == b"RIFF"
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return False
            cid, n = chunk[:4], int.from_bytes(chunk[4:], "little" if little else "big")
            if cid == b"data":
                return f.tell() + n > size
            f.seek(n + (n & 1), os.SEEK_CUR)


def save(path: str | os.PathLike, waveform: Tensor, sample_rate: int) -> Path:
    """Write a mono ``(samples,)`` waveform as 16-bit WAV, atomically (no half-written file)."""
    check_waveform(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"save writes one clip of shape (samples,), got {tuple(waveform.shape)}")
    with atomic_path(path) as tmp:
        sf.write(tmp, waveform.detach().cpu().clamp(-1, 1).numpy(), int(sample_rate), subtype="PCM_16")
    return Path(path)
