"""Metrics for interpretations, with the exact definitions of the L2I literature.

Book: chapter "Evaluating interpretations" (and "Training the interpreter" for fidelity).

Conventions, chosen so that the pitfalls seen in earlier implementations cannot happen:

* every function that needs probabilities takes **logits** and applies the softmax itself, once;
* ``target`` is the class being explained, ``c = argmax f(x)`` in the standard evaluation, never
  the ground-truth label; the per-clip functions return ``(batch,)`` tensors and callers average.

With ``p = softmax(f(.))``, ``x_in`` the interpretation audio and ``x_out`` the input with the
interpretation removed:

=============  =========================================================================
fidelity       share of clips where ``argmax Theta(H) == argmax f(x)``
FF             ``p_c(x) - p_c(x_out)``
Fid-In         ``1[argmax f(x_in) == c]``
AI             ``100 * 1[p_c(x_in) > p_c(x)]``
AD             ``100 * max(0, p_c(x) - p_c(x_in)) / p_c(x)``
AG             ``100 * max(0, p_c(x_in) - p_c(x)) / (1 - p_c(x))``
SPS            Gini index of the mask (1: all mass on one bin, 0: uniform)
COMP           entropy of the mask normalised to sum to 1 (nats)
SI-SDR         scale-invariant signal-to-distortion ratio (dB) against a reference source
=============  =========================================================================
"""

from __future__ import annotations

import time

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "fidelity",
    "fidelity_by_confidence",
    "energy_following",
    "source_share",
    "faithfulness",
    "input_fidelity",
    "average_increase",
    "average_drop",
    "average_gain",
    "sparseness",
    "complexity",
    "si_sdr",
    "si_sdr_improvement",
    "evaluate",
    "compare",
    "needs_sources",
    "paired_difference",
    "paired_differences",
    "paired_table",
    "results_table",
    "HIGHER_IS_BETTER",
]

_TINY = 1e-12


def _logits(logits, name: str = "logits") -> Tensor:
    """``logits`` checked: a floating-point ``(batch, classes)`` tensor with at least one of each."""
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.ndim != 2 or 0 in logits.shape:
        got = f"{tuple(logits.shape)} {logits.dtype}" if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a floating-point (batch, classes) tensor of scores, got {got}")
    return logits


def _targets(target, logits: Tensor) -> Tensor:
    """One class index per row of ``logits``, each in range: ``(batch,)``."""
    try:
        t = torch.as_tensor(target, device=logits.device)
    except (TypeError, RuntimeError, ValueError) as err:
        raise ValueError(f"target must be class indices, one per row (or one for all); got {target!r}") from err
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"target must be integer class indices, got dtype {t.dtype}")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(logits.shape[0])
    if t.shape[0] != logits.shape[0]:
        raise ValueError(f"{t.shape[0]} targets for {logits.shape[0]} rows of logits")
    if ((t < 0) | (t >= logits.shape[1])).any():
        raise ValueError(f"target {t.tolist()} has classes outside the {logits.shape[1]} of the logits")
    return t


def _p(logits: Tensor, target: Tensor, multilabel: bool = False) -> Tensor:
    """``softmax(logits)[target]`` per row (``sigmoid`` of that logit when ``multilabel``: each
    class its own probability): ``(batch, classes), (batch,) -> (batch,)``."""
    logits = _logits(logits)
    target = _targets(target, logits)
    if multilabel:
        return torch.sigmoid(logits.double().gather(1, target.unsqueeze(1)).squeeze(1))
    return torch.softmax(logits.double(), dim=1).gather(1, target.unsqueeze(1)).squeeze(1)


def fidelity(interpreter_logits: Tensor, classifier_logits: Tensor) -> float:
    """Share of clips where the interpreter's decision equals the classifier's (not the label's)."""
    _logits(interpreter_logits, "interpreter_logits"), _logits(classifier_logits, "classifier_logits")
    if interpreter_logits.shape != classifier_logits.shape:
        raise ValueError("interpreter and classifier logits must have the same shape")
    return float((interpreter_logits.argmax(1) == classifier_logits.argmax(1)).double().mean())


def fidelity_by_confidence(
    interpreter_logits: Tensor, classifier_logits: Tensor, edges: tuple[float, ...] = (0.5, 0.8, 0.95)
) -> list[dict]:
    """Fidelity in bins of the classifier's confidence ``max softmax f(x)``: where does the
    interpreter disagree with ``f``?

    Both logits ``(n, classes)``, multi-class. The bins are ``[0, e1), [e1, e2), ..., [ek, 1]``
    for ``edges`` ``e1 < ... < ek`` in (0, 1). Returns one dict per bin: ``low``, ``high``,
    ``n`` (clips in it) and ``fidelity`` (None for an empty bin). Book: chapter "Real recordings".
    """
    if interpreter_logits.shape != classifier_logits.shape or classifier_logits.ndim != 2:
        raise ValueError(
            "interpreter and classifier logits must both be (n, classes); got "
            f"{tuple(interpreter_logits.shape)} and {tuple(classifier_logits.shape)}"
        )
    bounds = [0.0, *map(float, edges), 1.0]
    if any(not 0 < e < 1 for e in edges) or any(a >= b for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"edges must increase strictly between 0 and 1, got {tuple(edges)}")
    confidence = torch.softmax(classifier_logits.double(), dim=1).amax(dim=1)
    # right=True: bin i holds bounds[i] <= confidence < bounds[i + 1]; a confidence of 1 lands in the last.
    bins = torch.bucketize(confidence, torch.tensor(bounds[1:-1], dtype=confidence.dtype, device=confidence.device), right=True)
    rows = []
    for i, (low, high) in enumerate(zip(bounds, bounds[1:])):
        inside = bins == i
        n = int(inside.sum())
        rows.append({"low": low, "high": high, "n": n,
                     "fidelity": fidelity(interpreter_logits[inside], classifier_logits[inside]) if n else None})
    return rows


def faithfulness(logits_x: Tensor, logits_out: Tensor, target: Tensor, multilabel: bool = False) -> Tensor:
    """FF ``= p_c(x) - p_c(x_out)``, per clip: high when what was removed mattered. ``multilabel``:
    ``p = sigmoid`` (every metric below takes it too)."""
    return _p(logits_x, target, multilabel) - _p(logits_out, target, multilabel)


def input_fidelity(logits_in: Tensor, target: Tensor, multilabel: bool = False) -> Tensor:
    """Fid-In ``= 1[argmax f(x_in) == c]`` per clip (multi-label: ``1[sigmoid f_c(x_in) > 0.5]``,
    the class still decided)."""
    target = _targets(target, _logits(logits_in, "logits_in"))
    if multilabel:
        return (_p(logits_in, target, True) > 0.5).double()
    return (logits_in.argmax(1) == target).double()


def average_increase(logits_x: Tensor, logits_in: Tensor, target: Tensor, multilabel: bool = False) -> Tensor:
    """AI ``= 100 * 1[p_c(x_in) > p_c(x)]``, per clip."""
    return 100.0 * (_p(logits_in, target, multilabel) > _p(logits_x, target, multilabel)).double()


def average_drop(logits_x: Tensor, logits_in: Tensor, target: Tensor, multilabel: bool = False) -> Tensor:
    """AD ``= 100 * max(0, p_c(x) - p_c(x_in)) / p_c(x)``, per clip (lower is better)."""
    px, pin = _p(logits_x, target, multilabel), _p(logits_in, target, multilabel)
    return 100.0 * (px - pin).clamp_min(0) / px.clamp_min(_TINY)


def average_gain(logits_x: Tensor, logits_in: Tensor, target: Tensor, multilabel: bool = False) -> Tensor:
    """AG ``= 100 * max(0, p_c(x_in) - p_c(x)) / (1 - p_c(x))``, per clip."""
    px, pin = _p(logits_x, target, multilabel), _p(logits_in, target, multilabel)
    return 100.0 * (pin - px).clamp_min(0) / (1 - px).clamp_min(_TINY)


def _mask(mask) -> Tensor:
    if not isinstance(mask, Tensor) or mask.ndim < 2 or mask.numel() == 0 or mask.is_complex():
        raise ValueError(f"a mask must be a (batch, ...) tensor with values, got "
                         f"{tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__}")
    if not torch.isfinite(mask.double()).all():
        raise ValueError("the mask has NaN or Inf values")
    return mask


def sparseness(mask: Tensor) -> Tensor:
    """SPS: Gini index of each mask ``(batch, ...) -> (batch,)`` (Hurley & Rickard 2009).

    ``G = 1 - 2 sum_k (m_(k) / ||m||_1) (N - k + 1/2) / N`` over the values sorted ascending; 0 for
    a constant mask, ``1 - 1/N`` when one bin holds everything. An all-zero mask gets 0.
    """
    m = _mask(mask).detach().flatten(1).double().abs()
    n = m.shape[1]
    sorted_m, _ = m.sort(dim=1)
    total = sorted_m.sum(dim=1, keepdim=True)
    k = torch.arange(1, n + 1, dtype=torch.float64, device=m.device)
    gini = 1 - 2 * ((sorted_m / total.clamp_min(_TINY)) * ((n - k + 0.5) / n)).sum(dim=1)
    return torch.where(total.squeeze(1) > 0, gini, torch.zeros_like(gini))


def complexity(mask: Tensor) -> Tensor:
    """COMP: entropy (nats) of each mask normalised to a distribution, ``(batch, ...) -> (batch,)``.

    ``-sum p log p`` with ``p = m / sum(m)``; 0 for an all-zero mask, ``log N`` for a constant one.
    """
    m = _mask(mask).detach().flatten(1).double().abs()
    p = m / m.sum(dim=1, keepdim=True).clamp_min(_TINY)
    return -(p * torch.log(p.clamp_min(_TINY))).sum(dim=1)


def energy_following(H: Tensor, X: Tensor) -> Tensor:
    """How H's total activation follows the input's energy in time: per clip, the Pearson
    correlation over frames of ``H.sum(K)`` with ``X.sum(freq)``; ``(batch,)``, NaN for a clip
    where either is constant. An interpreter that reads a layer along the wrong axis cannot follow
    the input in time, whatever its fidelity. Shapes: ``H`` (batch, K, frames), ``X`` (batch,
    freq, frames). Book: chapter "Your own classifier"."""
    a, b = H.sum(1).double(), X.sum(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).float()


def source_share(explanation, sources: Tensor, spectrogram, source: Tensor | int) -> Tensor:
    """How much of what an interpretation of a mixture keeps comes from one of its sources.

    The interpretation keeps a share ``R = |S_interp| / |S_mix|`` of each bin of the mixture's
    STFT; the same shares taken from each source's own STFT tell whose energy it kept:
    ``sum (R |S_source|)^2 / sum_k sum (R |S_k|)^2``, ``(batch,)`` in [0, 1] (1: only that source).
    Shapes: ``sources`` (batch, n_sources, samples) with the mixture their sum; ``source`` the
    index of the source to score, one per item or for all; ``spectrogram`` the interpretation's.
    Book: chapter "The crying baby and the dog"."""
    X, kept = explanation.X, explanation.X_in
    ratio = torch.expm1(kept) / torch.expm1(X).clamp_min(1e-8)  # (batch, freq, frames)
    energy = torch.stack([(ratio * torch.expm1(spectrogram(sources[:, k]))).pow(2).sum((1, 2))
                          for k in range(sources.shape[1])], dim=1)
    index = torch.as_tensor(source).long().expand(sources.shape[0])
    return energy.gather(1, index[:, None])[:, 0] / energy.sum(1).clamp_min(1e-12)


def si_sdr(estimate: Tensor, reference: Tensor) -> Tensor:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), ``(batch, samples) -> (batch,)``.

    Both signals are made zero-mean; ``s = <e, r> r / ||r||^2``; ``10 log10(||s||^2 / ||e - s||^2)``.
    """
    for name, x in (("estimate", estimate), ("reference", reference)):
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"{name} must be floating-point audio (..., samples), got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} differ in shape")
    e = estimate.double() - estimate.double().mean(dim=-1, keepdim=True)
    r = reference.double() - reference.double().mean(dim=-1, keepdim=True)
    scale = (e * r).sum(-1, keepdim=True) / r.pow(2).sum(-1, keepdim=True).clamp_min(_TINY)
    target = scale * r
    noise = e - target
    return 10 * torch.log10(target.pow(2).sum(-1).clamp_min(_TINY) / noise.pow(2).sum(-1).clamp_min(_TINY))


def si_sdr_improvement(estimate: Tensor, mixture: Tensor, reference: Tensor) -> Tensor:
    """SI-SDRi: ``si_sdr(estimate, ref) - si_sdr(mixture, ref)`` in dB; > 0 when the estimate is
    closer to the reference source than the mixture itself is."""
    return si_sdr(estimate, reference) - si_sdr(mixture, reference)


@torch.no_grad()
def evaluate(
    explain,
    classify,
    data: Dataset,
    threshold: float = 0.2,
    batch_size: int = 32,
    per_clip: bool = False,
    multilabel: bool = False,
) -> dict | tuple[dict, dict]:
    """Average every metric over ``data``, explaining the classifier's decision on each clip.

    Parameters
    ----------
    explain : callable
        ``explain(waveforms, target=None, threshold=...) -> Explanation`` (``Interpreter.explain`` or a
        baseline's). Fidelity is reported where the explanations carry interpreter logits; an
        oracle whose object sets ``needs_sources`` also gets ``sources=`` and ``source_labels=``.
    classify : callable
        ``classify(waveforms) -> logits`` of the classifier ``f`` (``Interpreter.classify``).
    data : Dataset
        l2i examples; where they carry sources (mixtures), each source's class is also explained
        and its interpretation scored against that source (SI-SDR, SI-SDRi); sources labelled
        :data:`l2i.datasets.NOISE` are not explained. A source whose class is the decision
        already explained reuses that explanation, so ``explain`` should answer the same question
        the same way (every method of :mod:`l2i.baselines` does but the random control, whose
        draws then differ, not their distribution).
    per_clip : bool
        Also return every metric's value per clip (per explained source for SI-SDR and SI-SDRi),
        in the order of ``data``: two methods evaluated on the same data are then paired item by
        item, as :func:`paired_difference` needs.
    multilabel : bool
        The classifier is multi-label (sigmoid outputs): every class it decides on a clip
        (``sigmoid > 0.5``; its top class where it decides none) is explained, and each is scored
        with its own probability, ``sigmoid`` of its logit; fidelity is then the share of
        explained items whose interpreter decides the same set of classes.

    Returns
    -------
    dict
        Means of fidelity, FF, Fid-In, AI, AD, AG, SPS, COMP (and SI-SDR, SI-SDRi, SI-SDR of the
        mixture), the share of clips with nothing to explain, the mean number of components kept,
        seconds per explanation and the number of clips. Book: chapter "Evaluating interpretations".
        With ``per_clip``, ``(means, {metric: values (items,)})``.
    """
    from .datasets import collate

    rows: dict[str, list[Tensor]] = {}
    add = lambda name, v: rows.setdefault(name, []).append(v.detach().double().cpu().reshape(-1))  # noqa: E731
    seconds, count = 0.0, 0
    oracle = needs_sources(explain)
    explain = getattr(explain, "explain", explain)
    for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate):
        x = batch.waveforms
        extra = {}
        if oracle:
            if batch.sources is None:
                raise ValueError(f"{getattr(explain, '__self__', explain)!r} needs mixtures with known sources (l2i.datasets.Mixtures)")
            extra = {"sources": batch.sources, "source_labels": batch.source_labels}
        items, asked = torch.arange(x.shape[0]), None
        if multilabel:  # one item per class the classifier decides on each clip
            logits = classify(x).cpu()
            decided = torch.sigmoid(logits) > 0.5
            decided[torch.arange(x.shape[0]), logits.argmax(1)] |= ~decided.any(1)
            items, asked = decided.nonzero(as_tuple=True)
        start = time.perf_counter()
        e = explain(x[items], target=asked, threshold=threshold, **{k: v[items] for k, v in extra.items()})
        seconds += time.perf_counter() - start
        count += len(items)
        c = e.target
        logits_in, logits_out = classify(e.audio).cpu(), classify(e.residual).cpu()
        if e.interpreter_logits is not None:
            if multilabel:
                agree = ((e.interpreter_logits > 0) == (e.logits > 0)).all(1)
            else:
                agree = e.interpreter_logits.argmax(1) == e.logits.argmax(1)
            add("fidelity", agree.double())
        add("FF", faithfulness(e.logits, logits_out, c, multilabel))
        add("Fid-In", input_fidelity(logits_in, c, multilabel))
        add("AI", average_increase(e.logits, logits_in, c, multilabel))
        add("AD", average_drop(e.logits, logits_in, c, multilabel))
        add("AG", average_gain(e.logits, logits_in, c, multilabel))
        add("SPS", sparseness(e.mask))
        add("COMP", complexity(e.mask))
        add("nothing_to_explain", e.silent.double())
        add("components", e.selected.sum(1).double())
        if batch.sources is not None:
            for s in range(batch.sources.shape[1]):
                labels = batch.source_labels[:, s]
                keep = labels >= 0  # noise is a source, not a class to explain
                if not bool(keep.any()):
                    continue
                # Where the source's class is the decision just explained, that explanation is
                # the one asked for: explain only the other clips (SLIME's cost, a thousand
                # forward passes per clip and class, is not paid twice for the same question).
                if multilabel:  # each source's class explained on the clip itself
                    audio = torch.zeros_like(x)
                    ask = keep
                else:
                    audio = e.audio.clone()
                    ask = keep & (labels != c.to(labels.device))
                if bool(ask.any()):
                    sub = {k: v[ask] for k, v in extra.items()}
                    audio[ask] = explain(x[ask], target=labels[ask], threshold=threshold, **sub).audio.to(audio)
                ref, xs = batch.sources[keep, s], x[keep]
                add("SI-SDR", si_sdr(audio[keep], ref))
                add("SI-SDR_mixture", si_sdr(xs, ref))
                add("SI-SDRi", si_sdr_improvement(audio[keep], xs, ref))
    values = {name: torch.cat(v) for name, v in rows.items()}
    result = {name: float(v.mean()) for name, v in values.items()}
    result["seconds_per_explanation"] = seconds / max(count, 1)
    result["n"] = count
    return (result, values) if per_clip else result


def needs_sources(method) -> bool:
    """Whether ``method`` (an :class:`l2i.explainers.Explainer`, or an ``explain`` callable bound to
    one) is an oracle that must be given a mixture's true sources."""
    return bool(getattr(method, "needs_sources", False) or getattr(getattr(method, "__self__", None), "needs_sources", False))


def compare(
    methods: dict, classify, data: Dataset, threshold: float = 0.2, batch_size: int = 32, progress: bool = False,
    per_clip: bool = False, multilabel: bool = False,
) -> dict | tuple[dict, dict]:
    """:func:`evaluate` for several methods on the same data: ``{name: results}``.

    ``methods`` maps a display name to an :class:`l2i.explainers.Explainer` (or an ``explain``
    callable). Oracles that need sources are skipped on data without them. With ``per_clip``,
    ``(results, {name: {metric: values (items,)}})``, the values paired across methods (same
    clips, same order) for :func:`paired_difference`. Book: chapter "Evaluating interpretations".
    """
    from tqdm.auto import tqdm

    has_sources = len(data) > 0 and data[0].sources is not None
    out, clips = {}, {}
    for name, explain in tqdm(methods.items(), desc="methods", disable=not progress, leave=False):
        if needs_sources(explain) and not has_sources:
            continue
        out[name], clips[name] = evaluate(explain, classify, data, threshold=threshold, batch_size=batch_size,
                                          per_clip=True, multilabel=multilabel)
    return (out, clips) if per_clip else out


def paired_difference(
    a: Tensor, b: Tensor, n_resamples: int = 10000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """Mean of ``a - b`` over paired items, with a percentile bootstrap interval.

    ``a`` and ``b`` ``(items,)`` are one metric's values for two methods on the same clips (from
    ``evaluate(..., per_clip=True)``). Resampling the clips, not each method's values apart, keeps
    what the two share (an easy clip is easy for both), so the interval answers "is A ahead of B
    on clips like these?" more tightly than two separate error bars could. An interval that
    contains 0 means the data do not tell the two apart. Book: chapter "Evaluating
    interpretations".

    Returns
    -------
    dict
        ``difference`` (mean of ``a - b``), ``low`` and ``high`` (the interval's ends) and ``n``.
    """
    try:
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    except (TypeError, RuntimeError, ValueError) as err:
        raise ValueError(f"paired_difference needs two sequences of numbers, one per clip ({err})") from err
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"paired_difference needs two 1-D tensors of the same length (one value per clip for each "
            f"method), got shapes {tuple(a.shape)} and {tuple(b.shape)}: evaluate both on the same data"
        )
    if a.numel() < 2:
        raise ValueError(f"paired_difference needs at least 2 paired values to resample, got {a.numel()}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence is a probability in (0, 1), got {confidence}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("paired_difference got non-finite values: drop or fix those clips first")
    d = a - b
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(d.numel(), (n_resamples, d.numel()), generator=generator)
    means = d[picks].mean(dim=1)
    tail = (1.0 - confidence) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1.0 - tail], dtype=torch.float64)).tolist()
    return {"difference": float(d.mean()), "low": low, "high": high, "n": d.numel()}


# Which way each metric is better, for tables and plots (SPS, COMP: a sparser, simpler mask is
# easier to listen to, but not more faithful, so they are shown without a winner).
HIGHER_IS_BETTER = {
    "fidelity": True, "FF": True, "Fid-In": True, "AI": True, "AD": False, "AG": True, "SI-SDRi": True,
    "seconds_per_explanation": False,
}


def results_table(
    results: dict,
    columns: tuple[str, ...] = ("FF", "Fid-In", "AI", "AD", "AG", "SPS", "COMP", "SI-SDRi", "seconds_per_explanation"),
    digits: int = 3,
    exclude_from_best: tuple[str, ...] = ("Oracle IRM",),
) -> str:
    """A markdown table of ``{method: results}`` (from :func:`compare`), the best value of each
    column with a known direction in bold (oracles excluded); a missing metric shows as "-"."""
    header = ["method"] + [
        c.replace("seconds_per_explanation", "s / explanation") + {True: " ↑", False: " ↓"}.get(HIGHER_IS_BETTER.get(c), "")
        for c in columns
    ]
    best = {}
    for c in columns:
        values = [r[c] for m, r in results.items() if c in r and m not in exclude_from_best]
        if c in HIGHER_IS_BETTER and values:
            best[c] = max(values) if HIGHER_IS_BETTER[c] else min(values)
    rows = []
    for method, r in results.items():
        cells = [method]
        for c in columns:
            if c not in r:
                cells.append("-")
                continue
            text = f"{r[c]:.{digits}g}" if c == "seconds_per_explanation" else f"{r[c]:.{digits}f}"
            cells.append(f"**{text}**" if best.get(c) == r[c] and method not in exclude_from_best else text)
        rows.append(cells)
    return _markdown_table(header, rows)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def paired_differences(
    clips: dict, method: str, metrics: tuple[str, ...] = ("FF", "Fid-In", "SI-SDRi"),
    exclude: tuple[str, ...] = ("Oracle IRM",), families: dict[str, str] | None = None, **kwargs,
) -> dict:
    """:func:`paired_difference` of ``method`` against every other method of ``clips`` (the
    per-clip values of ``compare(..., per_clip=True)``): ``{other: {metric: {difference, low,
    high, n}}}``, for the ``metrics`` both have. ``families`` (``{name: family}``,
    :func:`l2i.explainers.families`) leaves out ``method``'s own family (L2I's other renderings);
    ``exclude`` names methods to leave out too; ``kwargs`` go to :func:`paired_difference`.
    Book: chapter "Evaluating interpretations"."""
    if method not in clips:
        raise ValueError(f"no per-clip values for {method!r}; there are {sorted(clips)}")
    families = families or {}
    own = families.get(method, method)
    out = {}
    for other, values in clips.items():
        if other == method or other in exclude or families.get(other, other) == own:
            continue
        out[other] = {m: paired_difference(clips[method][m], values[m], **kwargs)
                      for m in metrics if m in clips[method] and m in values}
    return out


def paired_table(differences: dict, digits: int = 3) -> str:
    """A markdown table of :func:`paired_differences`: one row per other method, each cell the
    mean difference and its interval, ``+0.05 [-0.01, +0.11]``; in bold where the interval lies
    wholly on one side of 0 (a difference the data can tell)."""
    metrics = list(dict.fromkeys(m for row in differences.values() for m in row))
    rows = []
    for other, row in differences.items():
        cells = [other]
        for m in metrics:
            d = row.get(m)
            text = "-" if d is None else f"{d['difference']:+.{digits}f} [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]"
            cells.append(f"**{text}**" if d is not None and (d["low"] > 0 or d["high"] < 0) else text)
        rows.append(cells)
    return _markdown_table(["against"] + [f"{m} difference" for m in metrics], rows)
