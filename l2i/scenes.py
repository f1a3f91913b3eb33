"""Synthetic environmental sounds: eight classes with distinct spectro-temporal structure.

Book: chapter "Listening to the data". Each generator draws its parameters from a NumPy
``Generator`` and returns a float64 waveform of ``n`` samples at ``sr`` Hz with peak 1, so a clip
is fully determined by the generator's seed. The classes mirror ESC-50 categories, built from the
acoustics that make each one recognisable (pitch glides, harmonic stacks, bursts, noise bands,
inharmonic partials, periodic transients).
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

CLASSES = (
    "siren",
    "dog_bark",
    "crying_baby",
    "bird_chirp",
    "engine",
    "rain",
    "clock_tick",
    "church_bell",
)


def _phase(freq: np.ndarray, sr: int) -> np.ndarray:
    """Phase of an oscillator whose instantaneous frequency is ``freq`` (Hz, per sample)."""
    return 2 * np.pi * np.cumsum(freq) / sr


def _harmonics(f0: np.ndarray, sr: int, amps, rng: np.random.Generator) -> np.ndarray:
    """Sum of harmonics of a time-varying f0, skipping those above Nyquist."""
    out = np.zeros_like(f0)
    base = _phase(f0, sr)
    for h, a in enumerate(amps, start=1):
        alias = (h * f0) >= sr / 2 * 0.95
        out += np.where(alias, 0.0, a * np.sin(h * base + rng.uniform(0, 2 * np.pi)))
    return out


def _envelope(n: int, start: int, length: int, attack: int, release: int) -> np.ndarray:
    env = np.zeros(n)
    stop = min(n, start + length)
    seg = np.ones(stop - start)
    a, r = min(attack, len(seg)), min(release, len(seg))
    if a:
        seg[:a] = np.linspace(0, 1, a)
    if r:
        seg[len(seg) - r :] *= np.linspace(1, 0, r)
    env[start:stop] = seg
    return env


def _bandpass(x: np.ndarray, low: float, high: float, sr: int, order: int = 4) -> np.ndarray:
    high = min(high, sr / 2 * 0.98)
    sos = sps.butter(order, [low, high], btype="band", fs=sr, output="sos")
    return sps.sosfilt(sos, x)


def siren(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Wailing or two-tone siren: a slow periodic pitch glide with a few harmonics."""
    t = np.arange(n) / sr
    low, high = rng.uniform(550, 750), rng.uniform(1100, 1500)
    rate = rng.uniform(1.2, 3.0)
    if rng.random() < 0.5:  # wail: smooth sweep
        sweep = 0.5 - 0.5 * np.cos(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    else:  # hi-lo: two alternating tones
        sweep = (np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)) > 0).astype(float)
        sweep = np.convolve(sweep, np.ones(64) / 64, mode="same")
    f0 = low + (high - low) * sweep
    return _harmonics(f0, sr, [1.0, 0.35, 0.12], rng)


def dog_bark(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Two to four short barks: harmonic bursts with a falling pitch and a noisy onset."""
    out = np.zeros(n)
    n_barks = rng.integers(2, 5)
    starts = np.sort(rng.choice(np.arange(0, n - int(0.15 * sr)), n_barks, replace=False))
    for s in starts:
        length = int(rng.uniform(0.08, 0.16) * sr)
        length = min(length, n - s)
        k = np.arange(length)
        f0 = rng.uniform(380, 650) * (1 - 0.35 * k / length)
        voiced = _harmonics(f0, sr, [1.0, 0.8, 0.6, 0.45, 0.3, 0.2], rng)
        noise = _bandpass(rng.standard_normal(length), 400, 2500, sr) * 0.6
        env = np.exp(-k / (0.35 * length)) * (1 - np.exp(-k / (0.004 * sr)))
        out[s : s + length] += (voiced + noise) * env
    return _bandpass(out, 250, 3200, sr, order=2)


def crying_baby(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One or two long cries: high harmonic voice with vibrato and a rise-fall contour."""
    out = np.zeros(n)
    n_cries = rng.integers(1, 3)
    for c in range(n_cries):
        length = int(rng.uniform(0.3, 0.6) * sr)
        s = int(rng.uniform(0, max(1, n - length)))
        length = min(length, n - s)
        k = np.arange(length) / sr
        contour = np.sin(np.pi * k / k[-1]) if length > 1 else np.ones(1)
        f0 = rng.uniform(380, 520) * (1 + 0.25 * contour)
        f0 *= 1 + rng.uniform(0.02, 0.05) * np.sin(2 * np.pi * rng.uniform(5, 8) * k)
        amps = [1.0, 0.7, 0.9, 0.5, 0.35, 0.2, 0.1]
        voiced = _harmonics(f0, sr, amps, rng)
        env = _envelope(length, 0, length, int(0.04 * sr), int(0.08 * sr))
        out[s : s + length] += voiced * env
    return out


def bird_chirp(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Three to eight fast, pure-tone frequency sweeps high in the spectrum."""
    out = np.zeros(n)
    top = sr / 2 * 0.92
    for _ in range(rng.integers(3, 9)):
        length = int(rng.uniform(0.03, 0.09) * sr)
        s = int(rng.uniform(0, n - length))
        k = np.linspace(0, 1, length)
        f_start, f_end = rng.uniform(1800, top), rng.uniform(1800, top)
        f = f_start + (f_end - f_start) * k + rng.uniform(100, 400) * np.sin(2 * np.pi * rng.uniform(2, 5) * k)
        env = np.sin(np.pi * k) ** 2
        out[s : s + length] += np.sin(_phase(np.clip(f, 200, top), sr)) * env
    return out


def engine(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Idling engine: a low harmonic hum, amplitude-modulated at the firing rate, plus rumble."""
    t = np.arange(n) / sr
    f0 = rng.uniform(35, 70) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    amps = [1.0 / h**0.6 for h in range(1, 16)]
    hum = _harmonics(f0, sr, amps, rng)
    am = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(8, 20) * t)
    rumble = _bandpass(rng.standard_normal(n), 40, 400, sr) * 0.8
    return hum * am + rumble


def rain(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Steady broadband hiss with many short droplet clicks."""
    hiss = _bandpass(rng.standard_normal(n), rng.uniform(500, 900), sr / 2 * 0.95, sr) * 0.5
    drops = np.zeros(n)
    for _ in range(rng.integers(40, 120)):
        s = rng.integers(0, n - 64)
        length = rng.integers(16, 64)
        drops[s : s + length] += rng.uniform(0.3, 1.0) * rng.standard_normal(length) * np.exp(
            -np.arange(length) / (length / 4)
        )
    return hiss + _bandpass(drops, 1500, sr / 2 * 0.95, sr, order=2)


def clock_tick(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Periodic tick-tock: short damped resonances alternating between two pitches."""
    out = np.zeros(n)
    period = int(rng.uniform(0.2, 0.35) * sr)
    offset = int(rng.uniform(0, period))
    f_tick, f_tock = rng.uniform(2200, 3000), rng.uniform(1400, 2000)
    length = int(0.02 * sr)
    k = np.arange(length) / sr
    for i, s in enumerate(range(offset, n - length, period)):
        f = f_tick if i % 2 == 0 else f_tock
        click = np.sin(2 * np.pi * f * k) * np.exp(-k / 0.003)
        out[s : s + length] += click * rng.uniform(0.8, 1.0)
    return out


def church_bell(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One or two strikes of a bell: inharmonic partials with long exponential decays."""
    out = np.zeros(n)
    nominal = rng.uniform(280, 600)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.52, 2.99])
    amps = np.array([0.6, 1.0, 0.8, 0.5, 0.6, 0.3, 0.2])
    decays = rng.uniform(0.25, 0.6) / np.sqrt(ratios)
    for s in sorted(rng.integers(0, n // 2, size=rng.integers(1, 3))):
        k = np.arange(n - s) / sr
        strike = sum(
            a * np.sin(2 * np.pi * nominal * r * k + rng.uniform(0, 2 * np.pi)) * np.exp(-k / d)
            for r, a, d in zip(ratios, amps, decays)
            if nominal * r < sr / 2 * 0.95
        )
        out[s:] += strike * (1 - np.exp(-k / 0.002))
    return out


GENERATORS = {
    "siren": siren,
    "dog_bark": dog_bark,
    "crying_baby": crying_baby,
    "bird_chirp": bird_chirp,
    "engine": engine,
    "rain": rain,
    "clock_tick": clock_tick,
    "church_bell": church_bell,
}


def render(label: int, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A clip of class ``label`` with peak 1 (float64, ``(n,)``)."""
    clip = GENERATORS[CLASSES[label]](n, sr, rng)
    peak = np.abs(clip).max()
    return clip / peak if peak > 0 else clip
