"""Figures used across the book: spectrograms, dictionaries, loss curves.

One style for every chapter; each function draws into ``ax`` when given and returns the axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa.display
import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor

__all__ = ["specshow", "spectrogram_grid", "plot_atoms", "plot_loss", "plot_explanation"]

CMAP = "magma"


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def specshow(X, spectrogram, ax=None, title: str | None = None, colorbar: bool = False, vmax: float | None = None):
    """Show a log1p magnitude spectrogram ``(freq, time)`` with time and frequency axes.

    Book: chapter "Listening to the data".
    """
    ax = ax or plt.gca()
    img = librosa.display.specshow(
        _numpy(X),
        sr=spectrogram.sample_rate,
        hop_length=spectrogram.hop_length,
        n_fft=spectrogram.n_fft,
        x_axis="time",
        y_axis="linear",
        cmap=CMAP,
        vmin=0,
        vmax=vmax,
        ax=ax,
    )
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        plt.colorbar(img, ax=ax, label="log(1 + |STFT|)")
    return ax


def spectrogram_grid(spectrograms: Sequence, titles: Sequence[str], spectrogram, ncols: int = 4, height: float = 2.2):
    """A grid of spectrograms sharing one colour scale; returns the figure."""
    n = len(spectrograms)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, height * nrows), squeeze=False, constrained_layout=True)
    vmax = max(float(_numpy(X).max()) for X in spectrograms)
    for ax, X, title in zip(axes.flat, spectrograms, titles):
        specshow(X, spectrogram, ax=ax, title=title, vmax=vmax)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes.flat[:n]:
        if ax not in axes[:, 0]:
            ax.set_ylabel("")
        if ax not in axes[-1, :] and nrows > 1:
            ax.set_xlabel("")
    return fig


def plot_atoms(W, spectrogram, ax=None, order: str = "centroid", title: str = "Dictionary W"):
    """The dictionary's atoms (columns of ``W``, ``(freq, K)``) as an image, sorted by spectral centroid.

    Book: chapter "Learning the dictionary". Returns the axes and the order used.
    """
    ax = ax or plt.gca()
    W = _numpy(W)
    freqs = np.linspace(0, spectrogram.sample_rate / 2, W.shape[0])
    index = np.argsort((freqs[:, None] * W).sum(0) / (W.sum(0) + 1e-12)) if order == "centroid" else np.arange(W.shape[1])
    ax.imshow(W[:, index], origin="lower", aspect="auto", cmap=CMAP, extent=[-0.5, W.shape[1] - 0.5, 0, freqs[-1]])
    ax.set_xlabel("atom (sorted by spectral centroid)" if order == "centroid" else "atom")
    ax.set_ylabel("Hz")
    ax.set_title(title, fontsize=10)
    return ax, index


def plot_loss(history, ax=None, label: str | None = None, title: str = "NMF objective"):
    """Objective per iteration on a log scale."""
    ax = ax or plt.gca()
    ax.semilogy(np.arange(len(history)), np.asarray(history, dtype=float), label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if label:
        ax.legend()
    return ax


def plot_explanation(explanation, index: int = 0, n_components: int = 3):
    """Input spectrogram, interpretation spectrogram, mask and relevances of one explained clip.

    Book: chapter "Listening to interpretations". Returns the figure.
    """
    from .audio import Spectrogram

    e, i = explanation, index
    spec = Spectrogram(**e.spectrogram_config)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2), constrained_layout=True)
    vmax = float(e.X[i].max()) or None
    specshow(e.X[i], spec, ax=axes[0], title="input", vmax=vmax)
    specshow(e.spectrogram[i], spec, ax=axes[1], title=f"interpretation: {e.class_name(e.target[i])}", vmax=vmax)
    specshow(e.mask[i], spec, ax=axes[2], title="mask", vmax=1)
    for ax in axes[1:3]:
        ax.set_ylabel("")
    rel = _numpy(e.relevance[i])
    colors = np.where(_numpy(e.selected[i]), "tab:orange", "tab:gray")
    axes[3].bar(np.arange(len(rel)), rel, color=colors, width=1.0)
    axes[3].axhline(e.threshold, color="k", lw=0.8, ls="--", label=f"threshold {e.threshold:g}")
    axes[3].set_xlabel("component k")
    axes[3].set_ylabel("relevance r / max r")
    axes[3].set_title(f"{int(e.selected[i].sum())} components kept", fontsize=10)
    axes[3].legend(fontsize=8)
    return fig
