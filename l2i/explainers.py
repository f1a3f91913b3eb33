"""What every interpretation method of l2i is: an :class:`Explainer`, Captum's one class, one verb.

Book: chapter "Evaluating interpretations". An explainer has a ``name`` (for tables), a
``family`` (the method it is a variant of: ``"L2I"``, ``"L-MAC"``, ``"SLIME"``...; paired
comparisons set a method against the other families), ``needs_sources`` (an oracle that must be
given the true sources of a mixture) and one verb, ``explain(waveform, target=None,
threshold=0.2) -> Explanation``. :class:`l2i.Interpreter`, :class:`l2i.lmac.LMAC` and every
baseline of :mod:`l2i.baselines` are explainers; :class:`L2IExplainer` is an interpreter with
one rendering of its masks chosen (on the magnitude, binary), its variant an attribute of the
object, never parsed back from its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

from .explanation import Explanation, check_binarize, check_domain

__all__ = ["Explainer", "L2IExplainer", "families"]


@runtime_checkable
class Explainer(Protocol):
    """An interpretation method: ``explain(waveform, target=None, threshold=0.2) -> Explanation``."""

    name: str
    family: str
    needs_sources: bool

    def explain(self, waveform: Tensor, target=None, threshold: float = 0.2) -> Explanation: ...


@dataclass(frozen=True)
class L2IExplainer:
    """An :class:`l2i.Interpreter`'s explanations with its masks rendered one way.

    Parameters
    ----------
    interpreter : Interpreter
    domain : {"log1p", "magnitude"}
        Where the mask is applied (:func:`l2i.explanation.apply_mask`).
    binarize : float, optional
        A binary mask at this share (:func:`l2i.explanation.binary_mask`).

    ``name`` follows from the interpreter's training terms and the rendering, e.g. "L2I + input
    fidelity, binary mask".
    """

    interpreter: object
    domain: str = "log1p"
    binarize: float | None = None
    family = "L2I"
    needs_sources = False

    def __post_init__(self):
        check_domain(self.domain)
        check_binarize(self.binarize)

    @property
    def name(self) -> str:
        rendering = ", binary mask" if self.binarize is not None else ", magnitude mask" if self.domain == "magnitude" else ""
        return self.interpreter.name + rendering

    def explain(self, waveform: Tensor, target=None, threshold: float = 0.2, **settings) -> Explanation:
        return self.interpreter.explain(waveform, target=target, threshold=threshold, domain=self.domain,
                                        binarize=self.binarize, **settings)


def families(methods: dict) -> dict[str, str]:
    """``{name: family}`` of a ``{name: explainer}`` dict (a plain callable is its own family)."""
    return {name: getattr(method, "family", name) for name, method in methods.items()}
