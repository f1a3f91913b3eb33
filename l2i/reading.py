"""Reading a classifier: its logits from whatever it returns, and its hidden layers along their
true batch and time axes.

Book: chapter "Your own classifier". An interpreter reads the outputs of named sub-modules of a
classifier through forward hooks. Layers come in many layouts: a CNN's ``(batch, channels, freq,
time)`` (PANNs' CNN14 has ``(batch, channels, time, mel)``), a transformer's ``(batch, frames,
features)`` (wav2vec2, HuBERT), ``(time, batch, features)`` (torchaudio's Conformer), tuples of
tensors (torchaudio's wav2vec2 layers return ``(x, position_bias)``), or patch tokens behind a
few special tokens (AST, PaSST). :class:`ClassifierReader` finds each layer's batch and time axes
itself, by dry runs:

1. batch: the axis that follows the batch size (2 clips, then 3);
2. time: the axis that grows with the clip (1 s, then 1.5 s), other than the batch axis;
3. and that axis must be time-ordered: the clip shifted circularly by a quarter of its length
   shifts the activations by a quarter of the axis (patch tokens in frequency-major order grow
   with the clip too, but shift by a quarter of one frequency row). An axis of fewer than 8
   positions is too coarse to show the shift and is taken as time when it grows.

Every layer is then read as ``(batch, features, time)``, the other axes folded into the features
(a CNN's channels x frequency, so the spectral detail the dictionary needs is kept). Where the dry
runs cannot tell (no axis grows: a model that pads every clip to one length; an axis that grows
but is not time-ordered: tokens), it refuses with an error that names the layer, shows the
shapes it saw and says how to declare the layout with :class:`Layer`.

Layer outputs that are not a tensor are read by one rule: the first tensor, in order, of a tuple
or list, of a dict's values, or of a transformers ``ModelOutput``'s fields (``Layer(select=...)``
chooses another). A classifier may return logits as a tensor, as ``.logits`` or as
``["logits"]``; outputs that look like probabilities are refused (rows summing to 1) or warned
about (every value in [0, 1]).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = [
    "Layer", "TokenGrid", "Layout", "LogitsFrom", "ClassifierReader", "ReadsClassifier", "check_logits", "describe_layers",
    "frozen", "logits_of",
]

# The dry runs: batch sizes, the second length as a multiple of the first, the probe's circular
# shift as a share of the clip, and how far the shift found along a time axis may be from it.
_BATCHES = (2, 3)
_LONGER = 1.5
_SHIFT = 0.25
_SHIFT_TOLERANCE = 0.08
_SHIFT_MIN_POSITIONS = 8  # a coarser axis shows too little of the probe to follow its shift


@dataclass(frozen=True)
class TokenGrid:
    """A token sequence ``(batch, special + freq * time, features)`` holding a grid of patches.

    Parameters
    ----------
    special : int
        Leading tokens that are not patches (AST has 2: CLS and distillation).
    freq, time : int
        Patches along frequency and along time.
    order : {"freq", "time"}
        ``"freq"``: patch ``(f, t)`` is token ``special + f * time + t`` (AST, PaSST); ``"time"``:
        token ``special + t * freq + f``.
    """

    special: int
    freq: int
    time: int
    order: str = "freq"

    @classmethod
    def for_ast(cls, config) -> TokenGrid:
        """The grid of a transformers ``ASTConfig``: 2 special tokens, then the patches of its
        ``num_mel_bins`` x ``max_length`` input, frequency-major."""
        freq = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
        time = (config.max_length - config.patch_size) // config.time_stride + 1
        return cls(special=2, freq=freq, time=time)

    def __post_init__(self):
        if self.order not in ("freq", "time"):
            raise ValueError(f"TokenGrid order must be 'freq' or 'time', got {self.order!r}")
        if self.special < 0 or self.freq < 1 or self.time < 1:
            raise ValueError(f"TokenGrid needs special >= 0, freq >= 1 and time >= 1; got {self}")


@dataclass(frozen=True)
class Layer:
    """A classifier layer to read, and how to read it where the dry runs cannot tell.

    Parameters
    ----------
    name : str
        The sub-module's name in ``classifier.named_modules()``.
    time : int, optional
        The axis of time in the layer's output (negative counts from the end). By default it is
        found by the dry runs.
    pooled : bool
        The layer has no time axis (it comes after a pooling over time): its features are read
        once per clip and spread over every frame.
    tokens : TokenGrid, optional
        The output is a token sequence holding a patch grid (batch first).
    select : int or str, optional
        Which element of a tuple, list, dict or ``ModelOutput`` output to read (default: the first
        tensor).
    read : callable, optional
        The general escape hatch: ``read(output) -> (batch, features, time)`` or ``(batch,
        features)``, from the layer's raw output. Overrides everything else; not saved with an
        interpreter (pass the same ``Layer`` to ``Interpreter.load``).
    """

    name: str
    time: int | None = None
    pooled: bool = False
    tokens: TokenGrid | None = None
    select: int | str | None = None
    read: Callable | None = field(default=None, compare=False)

    def __post_init__(self):
        declared = [k for k, v in (("time", self.time), ("pooled", self.pooled or None), ("tokens", self.tokens)) if v is not None]
        if len(declared) > 1:
            raise ValueError(f"Layer {self.name!r}: declare one of time=, pooled=True or tokens=, not {' and '.join(declared)}")

    @classmethod
    def of(cls, layer: str | Layer) -> Layer:
        if isinstance(layer, Layer):
            return layer
        if isinstance(layer, str):
            return cls(layer)
        raise ValueError(f"a layer is a sub-module's name or an l2i.reading.Layer, got {type(layer).__name__}")

    def config(self) -> dict:
        """What is saved with an interpreter (the ``read`` callable cannot be)."""
        grid = None if self.tokens is None else vars(self.tokens).copy()
        return {"name": self.name, "time": self.time, "pooled": self.pooled, "tokens": grid, "select": self.select,
                "read": self.read is not None}

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        if config.get("read"):
            raise ValueError(
                f"layer {config['name']!r} was read with a read= function, which is not saved: pass the same "
                "Layer(..., read=...) to Interpreter.load(path, classifier, layers=[...])"
            )
        grid = config.get("tokens")
        return cls(config["name"], time=config.get("time"), pooled=bool(config.get("pooled")),
                   tokens=None if grid is None else TokenGrid(**grid), select=config.get("select"))


def pick(output, select: int | str | None = None, where: str = "the layer"):
    """The tensor to read from a layer's ``output``: ``output`` itself if a tensor, else the first
    tensor of a tuple or list, of a dict's values or of a ``ModelOutput``'s fields, or the element
    ``select`` names (an index, or a key)."""
    if isinstance(output, Tensor):
        if select is not None:
            raise ValueError(f"{where} returns a single tensor: select={select!r} has nothing to choose from")
        return output
    if isinstance(output, Mapping):  # dicts and transformers' ModelOutput (an OrderedDict)
        keys = [k for k, v in output.items() if isinstance(v, Tensor)]
        if isinstance(select, str):
            if select not in output or not isinstance(output[select], Tensor):
                raise ValueError(f"{where} returns a mapping without a tensor at {select!r}; its tensors: {keys}")
            return output[select]
        if isinstance(select, int):
            if not -len(keys) <= select < len(keys):
                raise ValueError(f"{where} returns {len(keys)} tensors ({keys}): select={select} is out of range")
            return output[keys[select]]
        if keys:
            return output[keys[0]]
    elif isinstance(output, Sequence) and not isinstance(output, str):
        tensors = [i for i, v in enumerate(output) if isinstance(v, Tensor)]
        if isinstance(select, int):
            if not -len(output) <= select < len(output) or not isinstance(output[select], Tensor):
                raise ValueError(f"{where} returns a {type(output).__name__} of {len(output)} whose element {select} is not a tensor")
            return output[select]
        if select is not None:
            raise ValueError(f"{where} returns a {type(output).__name__}: select an element by its index, not {select!r}")
        if tensors:
            return output[tensors[0]]
    raise ValueError(f"{where} returned {type(output).__name__} with no tensor in it: choose another layer")


def logits_of(output) -> Tensor:
    """The logits in what a classifier returned: a tensor, a ``.logits`` attribute (transformers'
    outputs) or a ``"logits"`` key."""
    if isinstance(output, Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, Mapping):
        logits = output.get("logits")
    if isinstance(logits, Tensor):
        return logits
    what = f"a {type(output).__name__}" + (f" with keys {list(output)}" if isinstance(output, Mapping) else "")
    raise ValueError(
        f"the classifier returned {what}, not logits: wrap it so that forward(waveforms) returns the "
        "(batch, classes) logits, the scores before any softmax or sigmoid (a tensor, .logits or ['logits'])"
    )


class LogitsFrom(nn.Module):
    """A classifier whose forward returns something else (probabilities, a dict), read for the
    logits one of its layers computes: ``LogitsFrom(cnn14, "fc_audioset")`` returns the scores
    PANNs' CNN14 passes through its final sigmoid. Waveforms ``(batch, samples)`` in, that layer's
    output (its first tensor) out; the model is the sub-module ``model``."""

    def __init__(self, model: nn.Module, layer: str):
        super().__init__()
        if layer not in dict(model.named_modules()) or not layer:
            raise ValueError(f"{layer!r} is not a sub-module of the model; it has: "
                             + ", ".join(n for n, _ in model.named_modules() if n))
        self.model, self.layer = model, layer
        if hasattr(model, "sample_rate"):
            self.sample_rate = model.sample_rate

    def forward(self, waveform: Tensor) -> Tensor:
        with _hooked(self.model, [self.layer]) as captured:
            self.model(waveform)
        if self.layer not in captured:
            raise ValueError(f"the model did not call {self.layer!r} in its forward pass")
        return pick(captured[self.layer], None, f"layer {self.layer!r}")


def check_logits(logits, batch: int, warn: bool = False) -> None:
    """Raise a clear error unless ``logits`` is a float ``(batch, classes)`` tensor of logits;
    refuse rows of probabilities summing to 1 and, with ``warn`` (the dry runs), warn when every
    value lies in [0, 1] (sigmoid probabilities, most likely)."""
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != batch or not logits.is_floating_point():
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"the classifier must return logits of shape (batch, classes) = ({batch}, C); it returned {got}. "
            "Wrap it so that forward(waveforms) returns the logits tensor"
        )
    rows = logits.detach().float().cpu()
    if not ((rows >= 0) & (rows <= 1)).all():
        return
    if torch.allclose(rows.sum(1), torch.ones(batch), atol=1e-4):
        raise ValueError(
            "the classifier seems to return probabilities (rows in [0, 1] summing to 1): L2I needs the "
            "logits; remove the final softmax"
        )
    if warn:
        warnings.warn(
            "every output of the classifier on the dry run lies in [0, 1]: if these are sigmoid probabilities, "
            "return the scores before the sigmoid (the logits; l2i.reading.LogitsFrom reads them from a layer)",
            stacklevel=4,
        )


@contextmanager
def frozen(model: nn.Module):
    """Evaluation mode and no parameter gradients for ``model`` inside the block; its training flag
    and each parameter's ``requires_grad`` are restored after, whatever happens inside. Used by the
    interpreter and the baselines, which read a classifier without changing it."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


@dataclass(frozen=True)
class Layout:
    """How one layer is read, as the dry runs found it (or its :class:`Layer` declared it).

    ``batch`` and ``time`` are axes of the picked tensor (``time`` None for a pooled layer); the
    read layer is ``(batch, features, time)``. ``shape`` is what the first dry run saw.
    """

    layer: Layer
    shape: tuple[int, ...]
    batch: int
    time: int | None
    features: int

    @property
    def name(self) -> str:
        return self.layer.name

    def describe(self) -> str:
        """The layout in words, e.g. ``(batch, 16, 32, time=63) -> 512 features x time``."""
        if self.layer.read is not None:
            return f"read by a function -> {self.features} features"
        if self.layer.tokens is not None:
            g = self.layer.tokens
            return f"(batch, {g.special} + {g.freq} x {g.time} tokens, {self.shape[-1]}) -> {self.features} features x {g.time} patches in time"
        dims = [("batch" if i == self.batch else f"time={n}" if i == self.time else str(n)) for i, n in enumerate(self.shape)]
        return f"({', '.join(dims)}) -> {self.features} features" + (" x time" if self.time is not None else ", no time axis")

    def read(self, output, batch: int) -> Tensor:
        """The layer's ``output`` as ``(batch, features, time)`` (time 1 for a pooled layer); a
        clear error when it does not match the layout found at construction."""
        where = f"layer {self.name!r}"
        if self.layer.read is not None:
            a = self.layer.read(output)
            if not isinstance(a, Tensor) or a.ndim not in (2, 3) or a.shape[0] != batch:
                raise ValueError(f"{where}'s read= function must return (batch, features, time) or (batch, features) "
                                 f"with batch {batch}; it returned {tuple(a.shape) if isinstance(a, Tensor) else type(a).__name__}")
            a = a.unsqueeze(-1) if a.ndim == 2 else a
        else:
            a = pick(output, self.layer.select, where)
            if a.ndim != len(self.shape) or a.shape[self.batch] != batch:
                raise ValueError(
                    f"{where} returned shape {tuple(a.shape)}, but the interpreter was built for {self.describe()} "
                    f"(batch on axis {self.batch}): is this the same classifier?"
                )
            a = a.movedim(self.batch, 0)
            if self.layer.tokens is not None:
                a = _grid(a, self.layer.tokens, where)
            elif self.time is None:
                a = a.reshape(batch, -1, 1)
            else:
                time = self.time + (self.time < self.batch)  # its axis once batch is first
                n = a.shape[time]
                a = a.movedim(time, -1).reshape(batch, -1, n)
        if a.shape[1] != self.features:
            raise ValueError(
                f"{where} gives {a.shape[1]} features where the interpreter was built for {self.features} "
                f"({self.describe()}): only the time axis may change with the clip"
            )
        return a


def _grid(a: Tensor, grid: TokenGrid, where: str) -> Tensor:
    """``(batch, special + freq * time, features) -> (batch, features * freq, time)``."""
    if a.ndim != 3 or a.shape[1] != grid.special + grid.freq * grid.time:
        raise ValueError(
            f"{where} returned shape {tuple(a.shape)}; {grid} needs (batch, {grid.special} + {grid.freq} x "
            f"{grid.time} = {grid.special + grid.freq * grid.time} tokens, features)"
        )
    patches = a[:, grid.special:]
    if grid.order == "freq":
        patches = patches.reshape(a.shape[0], grid.freq, grid.time, a.shape[2])
    else:
        patches = patches.reshape(a.shape[0], grid.time, grid.freq, a.shape[2]).transpose(1, 2)
    return patches.permute(0, 3, 1, 2).reshape(a.shape[0], a.shape[2] * grid.freq, grid.time)


class ClassifierReader:
    """A classifier's logits and the hidden layers it computed on the way, read along their batch
    and time axes.

    Book: chapter "Your own classifier".

    Parameters
    ----------
    classifier : nn.Module
        Waveforms ``(batch, samples)`` to logits ``(batch, classes)`` (a tensor, ``.logits`` or
        ``["logits"]``). Never changed: read in evaluation mode, gradients off for its parameters,
        hooks attached for each call and removed after.
    layers : list of str or Layer
        The sub-modules to read (:func:`describe_layers` lists every one with its layout).
    example_length : int
        Samples of the first dry run's clips (the second is 1.5 times longer).
    """

    def __init__(self, classifier: nn.Module, layers: Sequence[str | Layer], example_length: int):
        if not isinstance(classifier, nn.Module):
            raise ValueError(f"classifier must be a torch.nn.Module, got {type(classifier).__name__}")
        if isinstance(layers, (str, Layer)):
            layers = [layers]
        specs = [Layer.of(layer) for layer in layers]
        available = dict(classifier.named_modules())
        unknown = [s.name for s in specs if s.name not in available or not s.name]
        if unknown or not specs:
            raise ValueError(
                f"layers {unknown or list(layers)} are not sub-modules of the classifier; it has: "
                + ", ".join(name for name in available if name)
            )
        self.classifier = classifier
        self.example_length = int(example_length)
        self.layouts, self.n_classes = find_layouts(classifier, specs, self.example_length)

    @property
    def layers(self) -> list[Layer]:
        return [layout.layer for layout in self.layouts]

    @property
    def device(self) -> torch.device:
        return next((p.device for p in self.classifier.parameters()), torch.device("cpu"))

    @contextmanager
    def reading(self):
        """Hooks on the layers, the classifier frozen: yields the dict the hooks fill."""
        with _hooked(self.classifier, [s.name for s in self.layers]) as captured, frozen(self.classifier):
            yield captured

    def logits(self, waveform: Tensor) -> Tensor:
        """``f``'s logits ``(batch, classes)`` of ``(batch, samples)`` waveforms (differentiable in
        the waveform; the classifier frozen)."""
        with frozen(self.classifier):
            return self._logits(waveform)

    def _logits(self, waveform: Tensor) -> Tensor:
        dtype = next((p.dtype for p in self.classifier.parameters() if p.is_floating_point()), waveform.dtype)
        waveform = waveform.to(dtype)  # float64 clips for a float32 classifier, say
        try:
            output = self.classifier(waveform)
        except (RuntimeError, IndexError) as err:
            if isinstance(err, torch.OutOfMemoryError):
                raise
            raise ValueError(
                f"the classifier failed on {waveform.shape[0]} clip(s) of {waveform.shape[-1]} samples "
                f"({type(err).__name__}: {err}): give it clips it accepts (long enough, at its sample rate)"
            ) from err
        logits = logits_of(output)
        check_logits(logits, waveform.shape[0])
        return logits

    def read(self, waveform: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The logits and every layer as ``(batch, features, time)``."""
        with self.reading() as captured:
            logits = self._logits(waveform)
        missing = [s.name for s in self.layers if s.name not in captured]
        if missing:
            raise ValueError(f"layers {missing} were not called in the classifier's forward pass: choose others")
        return logits, [layout.read(captured[layout.name], waveform.shape[0]) for layout in self.layouts]


@contextmanager
def _hooked(model: nn.Module, names: list[str]):
    captured: dict[str, object] = {}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out))
               for name in names]
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


def _probes(batch: int, length: int) -> Tensor:
    """Dry-run clips: noise under an uneven envelope (a few bumps), the same circularly shifted by a
    quarter of its length, then independent noise for the remaining rows."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(length) / length
    centres, widths = torch.rand(5, generator=g), 0.02 + 0.06 * torch.rand(5, generator=g)
    envelope = 0.02 + (torch.exp(-0.5 * ((t[:, None] - centres) / widths) ** 2) * torch.rand(5, generator=g)).sum(1)
    x = torch.randn(batch, length, generator=g) * 0.1
    x[0] *= envelope
    x[1] = torch.roll(x[0], round(_SHIFT * length))
    return x


def _dry_run(classifier: nn.Module, names: list[str], batch: int, length: int, require_all: bool = True,
             warn: bool = False):
    device = next((p.device for p in classifier.parameters()), torch.device("cpu"))
    x = _probes(batch, length).to(device)
    with torch.no_grad(), _hooked(classifier, names) as captured, frozen(classifier):
        try:
            output = classifier(x)
        except Exception as err:
            raise ValueError(
                f"the classifier failed on a dry run of {batch} clips of {length} samples, shaped (batch, samples) "
                f"({type(err).__name__}: {err}). The interpreter gives it waveforms (batch, samples) at the "
                "dictionary's sample rate: wrap it so that forward(waveforms) returns logits (feature extraction "
                "included), or set example_length= to a length it accepts"
            ) from err
    logits = logits_of(output)
    check_logits(logits, batch, warn=warn)
    missing = [n for n in names if n not in captured]
    if missing and require_all:
        raise ValueError(f"layers {missing} were not called in the classifier's forward pass: choose others")
    return logits, captured


def find_layouts(classifier: nn.Module, layers: list[Layer], length: int) -> tuple[list[Layout], int]:
    """Each layer's :class:`Layout` from three dry runs (2 and 3 clips of ``length`` samples, 2
    clips 1.5 times longer), and the number of classes."""
    names = [s.name for s in layers]
    logits, first = _dry_run(classifier, names, _BATCHES[1], length, warn=True)
    _, fewer = _dry_run(classifier, names, _BATCHES[0], length)
    longer = _longer_run(classifier, names, length)
    layouts = [_layout(s, first[s.name], fewer[s.name], longer.get(s.name, longer.get(None)), length) for s in layers]
    return layouts, logits.shape[1]


def _longer_run(classifier: nn.Module, names: list[str], length: int, require_all: bool = True) -> dict:
    """The dry run on longer clips; ``{None: error}`` where the classifier takes one length only
    (what its layers then need is said by :func:`_layout`)."""
    try:
        return _dry_run(classifier, names, _BATCHES[0], round(length * _LONGER), require_all=require_all)[1]
    except ValueError as err:
        return {None: err}


def _layout(spec: Layer, first, fewer, longer, length: int) -> Layout:
    where = f"layer {spec.name!r}"
    if spec.read is not None:
        a = spec.read(first)
        if not isinstance(a, Tensor) or a.ndim not in (2, 3) or a.shape[0] != _BATCHES[1]:
            raise ValueError(f"{where}'s read= function must return (batch, features, time) or (batch, features); "
                             f"it returned {tuple(a.shape) if isinstance(a, Tensor) else type(a).__name__}")
        return Layout(spec, tuple(a.shape), 0, 2 if a.ndim == 3 else None, a.shape[1])
    if isinstance(longer, Exception):  # the classifier takes clips of one length only
        a = pick(first, spec.select, where)
        if a.ndim > 2 and spec.time is None and not spec.pooled and spec.tokens is None:
            raise ValueError(
                f"{where}: the classifier takes only clips of {length} samples ({longer.__cause__ or longer}), so l2i "
                f"cannot find the time axis of its output {tuple(a.shape)}: declare it with Layer({spec.name!r}, time=AXIS)"
            ) from longer
        longer = first  # a vector per clip, or a declared layout: nothing to find along the length
    shapes = [tuple(pick(o, spec.select, where).shape) for o in (first, fewer, longer)]
    seen = f"shapes {shapes[1]} for 2 clips of {length} samples, {shapes[0]} for 3, {shapes[2]} for 2 of {round(length * _LONGER)}"
    if len({len(s) for s in shapes}) != 1:
        raise ValueError(f"{where} changes its number of axes with the input ({seen}): declare how to read it with Layer(read=...)")
    batch = [i for i in range(len(shapes[0])) if shapes[0][i] == _BATCHES[1] and shapes[1][i] == _BATCHES[0]]
    if len(batch) != 1:
        raise ValueError(
            f"{where}: no single axis follows the batch size ({seen}); l2i reads each clip's activations "
            "separately: choose a layer that keeps the batch, or declare Layer(read=...)"
        )
    batch = batch[0]
    a = pick(first, spec.select, where)
    if spec.tokens is not None:
        if batch != 0:
            raise ValueError(f"{where}: a TokenGrid layer must have the batch first ({seen})")
        grid = _grid(a, spec.tokens, where)
        return Layout(spec, shapes[0], 0, 1, grid.shape[1])
    features = math.prod(n for i, n in enumerate(shapes[0]) if i != batch)
    if spec.pooled:
        return Layout(spec, shapes[0], batch, None, features)
    if spec.time is not None:
        time = spec.time % len(shapes[0])
        if time == batch:
            raise ValueError(f"{where}: time={spec.time} is the batch axis ({seen})")
        return Layout(spec, shapes[0], batch, time, features // shapes[0][time])
    grows = [i for i in range(len(shapes[0])) if i != batch and shapes[2][i] > shapes[1][i]]
    if len(shapes[0]) == 2 and not grows:  # (batch, features): one vector per clip
        return Layout(spec, shapes[0], batch, None, features)
    how = (f"declare it: Layer({spec.name!r}, time=AXIS) for the axis of time, Layer({spec.name!r}, pooled=True) "
           f"for none, Layer({spec.name!r}, tokens=TokenGrid(special, freq, time)) for patch tokens, or "
           f"Layer({spec.name!r}, read=function) for anything else")
    if len(grows) != 1:
        which = "no axis" if not grows else f"axes {grows}"
        raise ValueError(
            f"{where}: {which} grew with the clip ({seen}), so l2i cannot tell which axis is time (a model that "
            f"pads every clip to one length shows none). {how}"
        )
    time = grows[0]
    positions = shapes[0][time]
    shift = _shift(pick(first, spec.select, where), batch, time) if positions >= _SHIFT_MIN_POSITIONS else _SHIFT
    if not abs(shift - _SHIFT) <= max(_SHIFT_TOLERANCE, 1 / positions):
        raise ValueError(
            f"{where}: axis {time} grows with the clip ({seen}) but is not ordered in time (the clip shifted by "
            f"{_SHIFT:.0%} of its length shifts it by {shift:.0%} of its length): it looks like a sequence of tokens, "
            f"not frames. {how}"
        )
    return Layout(spec, shapes[0], batch, time, features // shapes[0][time])


def _shift(a: Tensor, batch: int, time: int) -> float:
    """By what share of the ``time`` axis the second probe's activations are shifted from the
    first's (the circular shift that matches them best)."""
    a = a.detach().double().cpu().movedim(batch, 0)
    axis = time + (time < batch) - 1  # in one clip's activations, once batch is first and dropped
    first, second = a[0].movedim(axis, 0), a[1].movedim(axis, 0)
    n = first.shape[0]
    errors = torch.stack([(second - torch.roll(first, k, dims=0)).pow(2).sum() for k in range(n)])
    return float(errors.argmin()) / n


def describe_layers(classifier: nn.Module, example_length: int, names: Sequence[str] | None = None) -> list[dict]:
    """Every sub-module the classifier calls (or those ``names``), in the order it calls them: its
    output's shape and the layout l2i finds for it, or why it cannot
    (``[{"name", "shape", "layout", "error"}]``).

    Book: chapter "Your own classifier", to choose the layers to read.
    """
    names = [n for n, _ in classifier.named_modules() if n] if names is None else list(names)
    runs = [_dry_run(classifier, names, b, example_length, require_all=False)[1] for b in (_BATCHES[1], _BATCHES[0])]
    longer = _longer_run(classifier, names, example_length, require_all=False)
    runs.append({name: longer.get(name, longer.get(None)) for name in runs[0]})
    rows = []
    for name in runs[0]:  # a dict keeps the order of the first call of each module
        row = {"name": name, "shape": None, "layout": None, "error": None}
        try:
            row["shape"] = tuple(pick(runs[0][name], None, f"layer {name!r}").shape)
            row["layout"] = _layout(Layer(name), *(run.get(name) for run in runs), example_length).describe()
        except ValueError as err:
            row["error"] = str(err)
        rows.append(row)
    return rows


class ReadsClassifier(nn.Module):
    """What L2I's :class:`l2i.Interpreter` and L-MAC's :class:`l2i.lmac.LMAC` share: a classifier,
    never changed and never saved with them, read through a :class:`ClassifierReader`, and the
    :class:`l2i.Spectrogram` their interpretations live on, at the classifier's rate.

    Book: chapter "Your own classifier"."""

    def __init__(self, classifier: nn.Module, layers: Sequence[str | Layer], spectrogram, example_length: int | None = None,
                 classes: tuple[str, ...] | None = None):
        super().__init__()
        rate = getattr(classifier, "sample_rate", None)
        if rate is not None and int(rate) != spectrogram.sample_rate:
            raise ValueError(
                f"the classifier works at {rate} Hz but the spectrogram (and dictionary) at {spectrogram.sample_rate} Hz: "
                "learn them at the classifier's rate"
            )
        self.spectrogram = spectrogram
        self.example_length = int(example_length or spectrogram.sample_rate)
        self.__dict__["classifier"] = classifier  # not a sub-module: never trained, never saved with us
        self.__dict__["reader"] = ClassifierReader(classifier, layers, self.example_length)
        self.n_classes = self.reader.n_classes
        self.classes = tuple(classes) if classes is not None else None

    @property
    def layers(self) -> list[Layer]:
        """The layers read, as :class:`Layer` (names and declared layouts)."""
        return self.reader.layers

    @property
    def layouts(self) -> list[Layout]:
        """How each layer is read (batch and time axes, features)."""
        return self.reader.layouts

    @property
    def device(self) -> torch.device:
        """The classifier's device; the interpreter follows it."""
        own = next(iter(list(self.parameters()) + list(self.buffers())), None)
        return next((p.device for p in self.classifier.parameters()), own.device if own is not None else torch.device("cpu"))

    def _follow_classifier(self) -> None:
        own = next(iter(list(self.parameters()) + list(self.buffers())), None)
        if own is not None and own.device != self.device:
            self.to(self.device)

    def classify(self, waveform: Tensor, hidden: bool = False):
        """The classifier's logits ``(batch, classes)``; with ``hidden``, also every layer read as
        ``(batch, features, time)``."""
        from .audio import as_batch

        waveform = as_batch(waveform).to(self.device)
        return self.reader.read(waveform) if hidden else self.reader.logits(waveform)

    def _fit(self, train, epochs: int, batch_size: int, lr: float, seed: int, augment, step, end_epoch, what: str,
             progress: bool, on_epoch, postfix, parameters) -> int:
        """The training both interpreters share (:func:`l2i.training.fit_epochs`): batches of
        ``train`` shuffled from ``seed``, changed by ``augment(waveforms, generator)``, on the
        classifier's device, given to ``step(x, epoch)``; Adam on ``parameters``. The epoch kept."""
        from .training import fit_epochs, loader, seeded

        self._follow_classifier()
        device = self.device
        with seeded(seed):
            generator = torch.Generator().manual_seed(seed)
            batches = loader(train, batch_size, generator)
            optimizer = torch.optim.Adam(parameters, lr=lr)

            def batch_step(batch, epoch):
                self._check_rate(batch.sample_rate)
                x = batch.waveforms if augment is None else augment(batch.waveforms, generator)
                return step(x.to(device), epoch)

            return fit_epochs(self, batches, epochs, optimizer, batch_step, end_epoch, what, progress,
                              on_epoch=None if on_epoch is None else lambda epoch: on_epoch(epoch, self, self.history),
                              postfix=postfix)

    def _check_rate(self, rate: int) -> None:
        if int(rate) != self.spectrogram.sample_rate:
            raise ValueError(
                f"audio at {rate} Hz given to {type(self).__name__} working at {self.spectrogram.sample_rate} Hz: "
                "resample it (l2i.audio.resample) or load the dataset at that rate"
            )

    def _check_features(self, trained: list[int]) -> None:
        """Refuse a classifier whose layers give other features than those it was trained on."""
        from .persistence import CheckpointError

        found = [layout.features for layout in self.layouts]
        if found != trained:
            raise CheckpointError(
                f"the classifier's layers {[layer.name for layer in self.layers]} now give {found} features, but "
                f"{type(self).__name__} was trained on {trained}: is this the same classifier?"
            )
