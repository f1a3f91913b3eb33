"""Listenable interpretations: what :meth:`Interpreter.explain` returns.

Book: chapter "Listening to interpretations". For a target class ``c`` (the classifier's decision
by default):

1. relevance ``r_k = z_k * theta_{c,k}`` with ``z`` the time-pooled activations, normalised by its
   maximum;
2. the components ``L = {k : r_k > threshold}`` (optionally only the ``top_k`` most relevant);
3. the soft mask ``M = (W_L H_L) / (W H + eps)`` and the interpretation spectrogram ``M * X``;
4. the interpretation audio: ``expm1(M * X)`` with the input's phase, inverse STFT.

The residual is the input minus the interpretation audio (the linear-magnitude complement with the
same phase), so ``interpretation + residual == input``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import torch
from torch import Tensor

from .audio import Spectrogram

__all__ = ["Explanation", "build_explanation", "soft_mask"]

_EPS = 1e-8


def soft_mask(W: Tensor, H: Tensor, weights: Tensor) -> Tensor:
    """``M = W (w * H) / (W H + eps)``, the share of each bin that the weighted components explain.

    Shapes: ``W`` (freq, K), ``H`` (..., K, frames), ``weights`` (..., K) in [0, 1] (1 for the
    selected components); returns (..., freq, frames) in [0, 1].
    """
    return (W @ (weights.unsqueeze(-1) * H)) / (W @ H + _EPS)


@dataclass
class Explanation:
    """A batch of listenable interpretations. Tensors are on the CPU; ``B`` is the batch size.

    Attributes
    ----------
    waveform : (B, samples)  the inputs
    sample_rate : int
    target : (B,)  explained class
    decision : (B,)  the classifier's argmax
    logits, interpreter_logits : (B, classes)  of ``f`` and of ``Theta(H)``
    relevance : (B, K)  ``r / max(r)`` for the target (0 for silent clips)
    selected : (B, K)  bool, the components kept
    H : (B, K, frames)  activations
    X, phase : (B, freq, frames)  input log1p magnitude and phase
    mask : (B, freq, frames)  soft mask in [0, 1]
    spectrogram : (B, freq, frames)  interpretation, ``mask * X``
    audio : (B, samples)  the interpretation, listenable
    residual : (B, samples)  input minus interpretation
    silent : (B,)  bool, True where there was nothing to explain (silent input or no positive
        relevance); those items have an empty selection and silent audio
    threshold : float
    W : (freq, K)  the dictionary
    classes : tuple of str, optional  class names
    """

    waveform: Tensor
    sample_rate: int
    target: Tensor
    decision: Tensor
    logits: Tensor
    interpreter_logits: Tensor
    relevance: Tensor
    selected: Tensor
    H: Tensor
    X: Tensor
    phase: Tensor
    mask: Tensor
    spectrogram: Tensor
    audio: Tensor
    residual: Tensor
    silent: Tensor
    threshold: float
    W: Tensor
    spectrogram_config: dict
    classes: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return self.waveform.shape[0]

    def __repr__(self) -> str:
        targets = ", ".join(self.class_name(t) for t in self.target[:4].tolist())
        more = ", ..." if len(self) > 4 else ""
        return (
            f"Explanation(batch={len(self)}, targets=[{targets}{more}], threshold={self.threshold:g}, "
            f"components kept={self.selected.sum(1).tolist()[:4]}{more}, sample_rate={self.sample_rate})"
        )

    def __getitem__(self, index: int) -> Explanation:
        """The ``index``-th item as an Explanation of batch size 1."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} explanations")
        sl = slice(index, index + 1) if index >= 0 else slice(len(self) + index, len(self) + index + 1)
        fields = {k: (v[sl] if isinstance(v, Tensor) and k != "W" else v) for k, v in self.__dict__.items()}
        return Explanation(**fields)

    def class_name(self, c: int) -> str:
        return self.classes[c] if self.classes else str(int(c))

    def components(self, index: int = 0) -> list[int]:
        """Indices of the selected components of item ``index``, most relevant first."""
        sel = self.selected[index].nonzero().flatten()
        return sel[self.relevance[index, sel].argsort(descending=True)].tolist()

    def component_audio(self, k: int, index: int = 0) -> Tensor:
        """Audio of component ``k`` alone in item ``index``: mask ``W_k H_k / (W H)`` on the input."""
        if not 0 <= k < self.W.shape[1]:
            raise ValueError(f"component {k} is outside the dictionary's {self.W.shape[1]} components")
        weights = torch.zeros(self.W.shape[1])
        weights[k] = 1.0
        mask = soft_mask(self.W, self.H[index], weights)
        spec = Spectrogram(**self.spectrogram_config)
        return spec.synthesize(mask * self.X[index], self.phase[index], length=self.waveform.shape[-1])

    def plot(self, index: int = 0, n_components: int = 3):
        """Input, interpretation and relevances of item ``index`` (see :func:`l2i.plotting.plot_explanation`)."""
        from .plotting import plot_explanation

        return plot_explanation(self, index, n_components=n_components)

    def players(self, index: int = 0, n_components: int = 3):
        """Players for the input, the interpretation, the residual and the top components."""
        from .widgets import players

        clips = {
            "input": self.waveform[index],
            f"interpretation ({self.class_name(self.target[index])})": self.audio[index],
            "residual": self.residual[index],
        }
        for k in self.components(index)[:n_components]:
            clips[f"component {k} (r={self.relevance[index, k]:.2f})"] = self.component_audio(k, index)
        return players(clips, self.sample_rate, columns=3)

    def summary(self, index: int = 0) -> str:
        """One line: target, decision, interpreter's agreement, components kept."""
        t, d = int(self.target[index]), int(self.decision[index])
        if bool(self.silent[index]):
            return f"{self.class_name(t)}: nothing to explain (silent input or no relevant component)"
        agree = int(self.interpreter_logits[index].argmax()) == d
        n = int(self.selected[index].sum())
        return (
            f"target {self.class_name(t)} (classifier: {self.class_name(d)}; interpreter "
            f"{'agrees' if agree else 'disagrees'}), {n} component{'' if n == 1 else 's'} "
            f"above {self.threshold:g}: {self.components(index)}"
        )

    def _repr_html_(self) -> str:
        items = []
        for i in range(min(len(self), 4)):
            items.append(
                f'<div style="margin:6px 0"><div style="font:13px sans-serif">{html.escape(self.summary(i))}</div>'
                f"{self.players(i)._repr_html_()}</div>"
            )
        more = f'<div style="font:12px sans-serif">... and {len(self) - 4} more</div>' if len(self) > 4 else ""
        return "".join(items) + more


def build_explanation(
    waveform: Tensor,
    X: Tensor,
    phase: Tensor,
    H: Tensor,
    logits: Tensor,
    interpreter_logits: Tensor,
    relevance: Tensor,
    target: Tensor,
    W: Tensor,
    spectrogram: Spectrogram,
    threshold: float,
    top_k: int | None,
    classes: tuple[str, ...] | None,
) -> Explanation:
    """Steps 1-4 of the module docstring on a batch; used by :meth:`Interpreter.explain`."""
    r_max = relevance.amax(dim=1)
    silent = (X.flatten(1).amax(dim=1) <= 1e-6) | (r_max <= 0)
    rel = relevance / r_max.clamp_min(_EPS).unsqueeze(1)
    rel = torch.where(silent.unsqueeze(1), torch.zeros_like(rel), rel.clamp_min(0))
    selected = rel > threshold
    if top_k is not None:
        rank = rel.argsort(dim=1, descending=True).argsort(dim=1)
        selected &= rank < top_k
    mask = soft_mask(W, H, selected.to(H.dtype)).clamp(0, 1)
    interp = mask * X
    audio = spectrogram.synthesize(interp, phase, length=waveform.shape[-1])
    audio = torch.where(silent.unsqueeze(1), torch.zeros_like(audio), audio)
    cpu = lambda t: t.detach().cpu()  # noqa: E731
    return Explanation(
        waveform=cpu(waveform),
        sample_rate=spectrogram.sample_rate,
        target=cpu(target),
        decision=cpu(logits.argmax(dim=1)),
        logits=cpu(logits),
        interpreter_logits=cpu(interpreter_logits),
        relevance=cpu(rel),
        selected=cpu(selected),
        H=cpu(H),
        X=cpu(X),
        phase=cpu(phase),
        mask=cpu(mask),
        spectrogram=cpu(interp),
        audio=cpu(audio),
        residual=cpu(waveform - audio),
        silent=cpu(silent),
        threshold=float(threshold),
        W=cpu(W),
        spectrogram_config=spectrogram.config(),
        classes=classes,
    )
