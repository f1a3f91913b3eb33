"""Sound in the notebook: audio players that keep loudness honest.

Book: every chapter. Players are plain HTML ``<audio>`` elements (so they also play in the built,
static book) rendered with ``IPython.display.Audio(..., normalize=False)``: clips are never
rescaled one by one, so a quiet interpretation sounds quiet.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
from IPython.display import HTML, Audio
from torch import Tensor

__all__ = ["player", "players", "explorer"]


def _samples(waveform) -> np.ndarray:
    x = waveform.detach().cpu().numpy() if isinstance(waveform, Tensor) else np.asarray(waveform)
    if x.ndim != 1:
        raise ValueError(f"a player takes one clip of shape (samples,), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("the clip contains NaN or Inf samples and cannot be played")
    return x.astype(np.float32)


def player(waveform, sample_rate: int) -> Audio:
    """One audio player; peaks above 1 are an error rather than a silent rescale."""
    x = _samples(waveform)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 1:
        raise ValueError(f"the clip peaks at {peak:.2f} > 1: scale it (and what it is compared with) before playing")
    return Audio(x, rate=int(sample_rate), normalize=False)


def players(clips: Mapping[str, object], sample_rate: int, columns: int = 4) -> HTML:
    """A grid of labelled players for ``{title: waveform (samples,)}``.

    If any clip peaks above 1, all are scaled by the same factor, so relative loudness stays true.
    """
    arrays = {name: _samples(w) for name, w in clips.items()}
    peak = max((float(np.abs(x).max()) for x in arrays.values() if x.size), default=0.0)
    gain = 1.0 / peak if peak > 1 else 1.0
    cells = []
    for name, x in arrays.items():
        audio = Audio(x * gain, rate=int(sample_rate), normalize=False)._repr_html_()
        cells.append(
            f'<div style="padding:4px 8px"><div style="font:12px sans-serif">{html.escape(name)}</div>{audio}</div>'
        )
    note = f'<div style="font:11px sans-serif">all clips scaled by {gain:.2f} to fit [-1, 1]</div>' if gain != 1 else ""
    # At most `columns` per row, fewer where the page or the output area is narrower (no side scroll).
    grid = (
        '<div style="display:grid;justify-content:start;'
        f'grid-template-columns:repeat(auto-fill, minmax(max(240px, calc(100% / {columns} - 16px)), 1fr))">'
    )
    return HTML(grid + "".join(cells) + "</div>" + note)


def explorer(interpreter, data, n_components: int = 3, cuts: tuple[float, ...] = (0.05, 0.3)):
    """Controls to choose a clip, the class to explain, the threshold, where the mask is applied
    (``domain`` of :meth:`l2i.Interpreter.explain`) and whether it is soft or binary (``binarize``,
    one of ``cuts``), with players and a plot.

    Book: chapter "Listening to interpretations". Returns an ``ipywidgets.VBox``; the controls act
    when the notebook runs live (in the static book the first view is shown).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    classes = interpreter.classes or tuple(str(c) for c in range(interpreter.n_classes))
    clip = w.IntSlider(0, 0, len(data) - 1, description="clip")
    target = w.Dropdown(options=[("classifier's decision", -1)] + [(c, i) for i, c in enumerate(classes)], description="class")
    threshold = w.FloatSlider(0.2, min=0.0, max=0.9, step=0.05, description="threshold")
    domain = w.Dropdown(options=[("log magnitude", "log1p"), ("magnitude", "magnitude")], description="mask on")
    # 0 stands for the soft mask (binarize=None): a dropdown's value must compare equal to itself.
    shape = w.Dropdown(options=[("soft", 0.0)] + [(f"binary, share >= {c:g}", c) for c in cuts], description="mask")
    out = w.Output()

    def show(_=None):
        example = data[clip.value]
        e = interpreter.explain(
            example.waveform, target=None if target.value < 0 else target.value, threshold=threshold.value,
            domain=domain.value, binarize=shape.value or None,
        )
        with out:
            out.clear_output(wait=True)
            print(e.summary(0))
            display(e.players(0, n_components))
            fig = e.plot(0)
            display(fig)
            plt.close(fig)  # shown once, in the output area; not again by the inline backend

    controls = (clip, target, threshold, domain, shape)
    for control in controls:
        control.observe(show, names="value")
    show()
    return w.VBox([w.HBox(list(controls), layout=w.Layout(flex_flow="row wrap")), out])
