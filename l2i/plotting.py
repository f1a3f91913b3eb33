"""Figures used across the book: spectrograms, dictionaries, loss curves.

One style for every chapter; each function draws into ``ax`` when given and returns the axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa.display
import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor

__all__ = [
    "specshow",
    "spectrogram_grid",
    "plot_atoms",
    "plot_loss",
    "plot_loss_against_time",
    "plot_training",
    "plot_confusion",
    "plot_interpreter_training",
    "plot_explanation",
]

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


def plot_loss_against_time(curves: dict, ax=None, title: str = "NMF: loss against time on this machine"):
    """Loss against seconds, one line per solver, from :func:`l2i.nmf.compare_solvers`."""
    ax = ax or plt.gca()
    for name, curve in curves.items():
        ax.semilogy(curve["seconds"], curve["loss"], marker="." if len(curve["loss"]) < 12 else None, label=name)
    ax.set_xlabel("seconds")
    ax.set_ylabel("0.5 ||X - WH||²")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_explanation(explanation, index: int = 0, n_components: int = 3):
    """Input spectrogram, interpretation spectrogram, mask and relevances of one explained clip.

    Book: chapter "Listening to interpretations". Returns the figure.
    """

    e, i = explanation, index
    spec = e.spectrogram
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2), constrained_layout=True)
    vmax = float(e.X[i].max()) or None
    specshow(e.X[i], spec, ax=axes[0], title="input", vmax=vmax)
    specshow(e.X_in[i], spec, ax=axes[1], title=f"interpretation: {e.class_name(e.target[i])}", vmax=vmax)
    # The mask is a ratio, meaningless where the input is near silent: shown where it has energy.
    audible = e.X[i] > 0.01 * float(e.X[i].max())
    specshow(e.mask[i] * audible, spec, ax=axes[2], title="mask (where the input has energy)", vmax=1)
    for ax in axes[1:3]:
        ax.set_ylabel("")
    if e.relevance.shape[1] == 0:  # a method that scores bins, not units: where its mask lies in time
        kept = _numpy((e.mask[i] > 0.5).double().mean(0))
        times = np.arange(len(kept)) * spec.hop_length / spec.sample_rate
        axes[3].fill_between(times, kept, color="tab:orange", step="mid")
        axes[3].set_ylim(0, 1.02)
        axes[3].set_xlabel("time (s)")
        axes[3].set_ylabel("share of bins kept")
        axes[3].set_title(f"{e.method}: mask above 0.5", fontsize=10)
        return fig
    rel = _numpy(e.relevance[i])
    colors = np.where(_numpy(e.selected[i]), "tab:orange", "tab:gray")
    axes[3].bar(np.arange(len(rel)), rel, color=colors, width=1.0)
    axes[3].axhline(e.threshold, color="k", lw=0.8, ls="--", label=f"threshold {e.threshold:g}")
    axes[3].set_xlabel(f"{e.unit} k")
    axes[3].set_ylabel("relevance r / max r")
    n = int(e.selected[i].sum())
    axes[3].set_title(f"{n} {e.unit}{'' if n == 1 else 's'} kept", fontsize=10)
    axes[3].legend(fontsize=8)
    return fig


def plot_training(history, ax=None, title: str = "Classifier training"):
    """Training loss and validation accuracy per epoch, the kept epoch marked (an :class:`l2i.training.History`).

    Book: chapter "Training the classifier".
    """
    ax = ax or plt.gca()
    epochs = np.arange(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(epochs, history.val_accuracy, color="tab:orange", label="validation accuracy")
    ax2.axvline(history.best_epoch + 1, color="k", lw=0.8, ls="--")
    ax2.set_ylabel("validation accuracy", color="tab:orange")
    ax2.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    return ax


def plot_confusion(labels, predictions, classes, ax=None, title: str = "Test confusion matrix"):
    """Confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    ax = ax or plt.gca()
    labels, predictions = _numpy(labels).astype(int), _numpy(predictions).astype(int)
    n = len(classes)
    cm = np.zeros((n, n), dtype=int)
    np.add.at(cm, (labels, predictions), 1)
    ax.imshow(cm, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=8, color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    return ax


def plot_interpreter_training(history, axes=None):
    """The interpreter's loss terms and validation fidelity per epoch (an :class:`l2i.training.History`).

    Book: chapter "Training the interpreter". Returns the figure.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), constrained_layout=True)
    else:
        fig = axes[0].figure
    epochs = np.arange(1, len(history.loss) + 1)
    for name in ("reconstruction", "fidelity_loss", "sparsity", "input_fidelity_loss", "output_fidelity_loss"):
        values = np.asarray(getattr(history, name))
        if values.any():
            axes[0].plot(epochs, values, label=name.replace("_", " "))
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_title("loss terms (unweighted)", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].plot(epochs, history.val_fidelity, color="tab:orange")
    axes[1].axvline(history.best_epoch + 1, color="k", lw=0.8, ls="--", label="kept")
    axes[1].set_ylim(0, 1.02)
    axes[1].set_xlabel("epoch")
    axes[1].set_title("validation fidelity", fontsize=10)
    axes[1].legend(fontsize=8)
    return fig


def plot_comparison(results: dict, metrics: tuple[str, ...] = ("FF", "Fid-In", "SI-SDRi"), title: str | None = None):
    """Grouped bars: one panel per metric, one group per setting, one bar per method.

    ``results`` is ``{setting: {method: {metric: value}}}`` (what ``benchmarks/interpretation.py``
    writes, or :func:`l2i.metrics.compare` per setting). Book: chapter "Evaluating interpretations".
    Returns the figure.
    """
    settings = list(results)
    methods = list(dict.fromkeys(m for s in settings for m in results[s]))
    rows = -(-len(methods) // 5)  # legend rows
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.4 + 0.25 * rows), layout="constrained", squeeze=False)
    width = 0.8 / len(methods)
    # tab10 repeats its last colour past ten methods; tab20 gives each of up to twenty its own.
    colors = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    for ax, metric in zip(axes[0], metrics):
        for j, method in enumerate(methods):
            values = [results[s].get(method, {}).get(metric, np.nan) for s in settings]
            ax.bar(np.arange(len(settings)) + (j - (len(methods) - 1) / 2) * width, values, width, label=method, color=colors(j))
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(range(len(settings)), settings, rotation=20, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=10)
    # Below the panels, not over the bars.
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(methods), 5), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
