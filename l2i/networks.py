"""The networks that read a classifier's hidden layers: Psi, which decodes them into a sequence
over the input's frames, and Theta, L2I's pooled linear head.

Book: chapter "Training the interpreter". L2I's Psi predicts the activations ``H >= 0`` of the
dictionary's components; L-MAC's decoder (:mod:`l2i.lmac`) is the same network predicting a mask
over the spectrogram's frequency bins, told which class to explain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LayerEncoder", "Psi", "Theta"]


class LayerEncoder(nn.Module):
    """One read layer ``(batch, features, time)`` -> ``(batch, hidden, time)``: a small convolution
    over time; a pooled layer (time 1) through a linear map, spread over every frame by Psi."""

    def __init__(self, features: int, hidden: int, pooled: bool):
        super().__init__()
        self.pooled = pooled
        self.net = nn.Linear(features, hidden) if pooled else nn.Conv1d(features, hidden, 3, padding=1)

    def forward(self, a: Tensor) -> Tensor:
        if self.pooled:
            return F.relu(self.net(a[..., 0])).unsqueeze(-1)
        return F.relu(self.net(a))


class Psi(nn.Module):
    """Read layers -> ``(batch, out, frames)``: each layer encoded, stretched in time to the
    input's frames, mixed, then mapped to ``out`` channels.

    Parameters
    ----------
    layouts : list of l2i.reading.Layout
        The layers read (their features and whether they have time).
    out : int
        Output channels: the K components for L2I, the frequency bins for L-MAC.
    hidden : int
        Width of each layer's encoding (the mix is twice as wide).
    n_classes : int, optional
        Condition on a class: a learnt vector per class added to the mix (L-MAC's decoder).
    nonnegative : bool
        A ReLU on the output (L2I's ``H >= 0``); else the raw output (mask logits).
    """

    def __init__(self, layouts: list, out: int, hidden: int, n_classes: int | None = None, nonnegative: bool = True):
        super().__init__()
        self.readers = nn.ModuleList(LayerEncoder(layout.features, hidden, layout.time is None) for layout in layouts)
        self.mix = nn.Conv1d(hidden * len(layouts), 2 * hidden, 3, padding=1)
        self.out = nn.Conv1d(2 * hidden, out, 3, padding=1)
        self.condition = nn.Embedding(n_classes, 2 * hidden) if n_classes else None
        self.nonnegative = nonnegative

    def forward(self, activations: list[Tensor], n_frames: int, target: Tensor | None = None) -> Tensor:
        parts = [
            F.interpolate(reader(a), size=n_frames, mode="linear", align_corners=False)
            for reader, a in zip(self.readers, activations)
        ]
        h = self.mix(torch.cat(parts, dim=1))
        if self.condition is not None:
            h = h + self.condition(target).unsqueeze(-1)
        out = self.out(F.relu(h))
        return F.relu(out) if self.nonnegative else out


class Theta(nn.Module):
    """Attention pooling of H over time, then a bias-free linear layer to the classes."""

    def __init__(self, n_components: int, n_classes: int):
        super().__init__()
        self.score = nn.Conv1d(n_components, n_components, 1, groups=n_components)
        self.linear = nn.Linear(n_components, n_classes, bias=False)

    def pool(self, H: Tensor) -> Tensor:
        """``(batch, K, frames) -> (batch, K)``: each component's attention-weighted activation."""
        weights = torch.softmax(self.score(H), dim=-1)
        return (weights * H).sum(dim=-1)

    def forward(self, H: Tensor) -> Tensor:
        return self.linear(self.pool(H))
