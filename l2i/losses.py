"""The terms the interpreters are trained with, each a named function.

Book: chapter "Training the interpreter". L2I (:meth:`l2i.Interpreter.fit`): reconstruction,
fidelity and sparsity (the original method), and beyond it the input- and output-fidelity terms.
L-MAC (:meth:`l2i.lmac.LMAC.fit`): its mask-in and mask-out terms. Shapes: logits ``(batch,
classes)``, ``X`` ``(batch, freq, frames)``, ``W`` ``(freq, K)``, ``H`` ``(batch, K, frames)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "fidelity_loss", "input_fidelity_loss", "mask_in_loss", "mask_out_loss", "output_fidelity_loss",
    "reconstruction_loss", "removal_loss", "soft_selection", "sparsity_loss",
]


def reconstruction_loss(X: Tensor, W: Tensor, H: Tensor) -> Tensor:
    """``mean((X - W H)^2)``: the dictionary's patterns, activated by ``H``, rebuild the input."""
    return (X - W @ H).pow(2).mean()


def sparsity_loss(H: Tensor) -> Tensor:
    """``mean |H|``: few patterns active at a time."""
    return H.abs().mean()


def fidelity_loss(interpreter_logits: Tensor, classifier_logits: Tensor, multilabel: bool = False,
                  temperature: float = 1.0) -> Tensor:
    """``Theta(H)`` mimics ``f(x)``: cross-entropy of ``softmax(Theta)`` against ``softmax(f)``
    (binary cross-entropy against ``sigmoid(f)`` when multi-label). ``temperature`` ``T`` softens
    both sides (``/ T``, the loss scaled by ``T^2``, as in knowledge distillation); 1 is the original."""
    if temperature != 1.0:
        return fidelity_loss(interpreter_logits / temperature, classifier_logits / temperature, multilabel) * temperature**2
    if multilabel:
        return F.binary_cross_entropy_with_logits(interpreter_logits, torch.sigmoid(classifier_logits))
    return F.cross_entropy(interpreter_logits, torch.softmax(classifier_logits, dim=1))


def removal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """``-log(1 - p_c)`` per item, ``p = softmax(logits)``: small when class ``c`` is gone.

    Computed as ``logsumexp(logits) - logsumexp(logits without c)``, stable where ``p_c`` is near 1.
    Shapes: ``logits`` (batch, classes), ``target`` (batch,); returns (batch,).
    """
    others = logits.scatter(1, target[:, None], float("-inf"))
    return logits.logsumexp(1) - others.logsumexp(1)


def input_fidelity_loss(logits_in: Tensor, classifier_logits: Tensor, multilabel: bool = False) -> Tensor:
    """The interpretation alone keeps ``f``'s decision: cross-entropy of ``f(x_in)`` to
    ``argmax f(x)`` (multi-label: binary cross-entropy to the labels ``f`` gave, ``sigmoid > 0.5``)."""
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits_in, (torch.sigmoid(classifier_logits) > 0.5).float())
    return F.cross_entropy(logits_in, classifier_logits.argmax(dim=1))


def output_fidelity_loss(logits_out: Tensor, classifier_logits: Tensor, multilabel: bool = False) -> Tensor:
    """The input without the interpretation loses ``f``'s decision: :func:`removal_loss` of
    ``f(x - x_in)`` (multi-label: every label ``f`` gave should be lost, ``softplus`` of its logit)."""
    if multilabel:
        decided = (torch.sigmoid(classifier_logits) > 0.5).float()
        return (F.softplus(logits_out) * decided).sum(1).div(decided.sum(1).clamp_min(1)).mean()
    return removal_loss(logits_out, classifier_logits.argmax(dim=1)).mean()


def soft_selection(relevance: Tensor, threshold: float, width: float = 0.05) -> Tensor:
    """A differentiable stand-in for ``relevance / max > threshold``: a sigmoid of width ``width``
    around the threshold, ``(batch, K)`` in (0, 1). What the fidelity terms render."""
    r = relevance / relevance.amax(dim=1, keepdim=True).clamp_min(1e-8)
    return torch.sigmoid((r - threshold) / width)


def mask_in_loss(logits_in: Tensor, target: Tensor) -> Tensor:
    """L-MAC's mask-in term: ``CE(f(M |S|), c)``, the masked input keeps the class."""
    return F.cross_entropy(logits_in, target)


def mask_out_loss(logits_out: Tensor, target: Tensor) -> Tensor:
    """L-MAC's mask-out term: ``-CE(f((1 - M) |S|), c)``, what is left loses the class."""
    return -F.cross_entropy(logits_out, target)
