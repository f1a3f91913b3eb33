"""Property-based fuzzing of every public entry point that takes user data: whatever hypothesis
generates, l2i either answers (finite, well-shaped) or raises one of its documented errors with a
message, and a call that fails writes nothing.

The documented errors: ``ValueError`` (and ``l2i.persistence.CheckpointError``) for bad values,
types, shapes and files; ``FileNotFoundError``, ``FileExistsError`` and ``NotADirectoryError`` for paths;
``FloatingPointError`` for training that diverges. Every example counts towards ``GENERATED``,
printed at the end of the run (``-s``) and checked to reach 1,000.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from l2i import baselines
from l2i.audio import Spectrogram, load
from l2i.datasets import SyntheticScenes
from l2i.interpreter import Interpreter
from l2i.lmac import LMAC
from l2i.metrics import average_drop, faithfulness, fidelity, input_fidelity, paired_difference, si_sdr, sparseness
from l2i.models import MelCNN
from l2i.nmf import NMF

DOCUMENTED = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, FloatingPointError)
GENERATED = {"count": 0}
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])
SPEC = Spectrogram(8000, 256, 64)


def answered_or_documented(call):
    """Run ``call``; a documented error must say something. The result, or None on an error."""
    GENERATED["count"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except DOCUMENTED as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return None


values = st.sampled_from([0.0, 0.5, -0.3, 1.0, 1e-30, 1e4, float("nan"), float("inf"), -float("inf")])
dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int16, torch.int64, torch.bool, torch.complex64])


@st.composite
def tensors(draw, max_dims: int = 3, max_size: int = 3000):
    """Tensors of any rank up to ``max_dims``, odd sizes, dtypes and values (NaN, Inf, huge)."""
    shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=max_dims))
    if shape:
        shape[-1] = draw(st.integers(0, max_size))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 99)))) * draw(st.sampled_from([0.0, 0.1, 1.0, 100.0]))
    if x.numel() and draw(st.booleans()):
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = draw(values)
    dtype = draw(dtypes)
    return x.to(dtype) if dtype != torch.bool else x > 0


@FUZZ
@given(tensors())
def test_spectrogram_answers_or_names_the_problem(x):
    out = answered_or_documented(lambda: SPEC.analyze(x))
    if out is not None:
        X, phase = out
        assert X.shape == phase.shape and torch.isfinite(X).all() and (X >= 0).all()


@FUZZ
@given(st.binary(max_size=400), st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ""]),
       st.integers(0, 3), st.sampled_from([None, 8000, 16000]))
def test_audio_files_are_read_or_refused(tmp_path_factory, data, suffix, kind, rate):
    folder = tmp_path_factory.mktemp("audio")
    path = folder / f"clip{suffix}"
    if kind == 1:  # a real file, cut short at a random point
        buffer = io.BytesIO()
        sf.write(buffer, np.random.default_rng(len(data)).uniform(-0.5, 0.5, 4000), 8000, format="WAV")
        path.write_bytes(buffer.getvalue()[: max(1, len(data))])
    elif kind == 2:  # a whole real file
        sf.write(path.with_suffix(".wav"), np.random.default_rng(0).uniform(-0.5, 0.5, 100 + len(data)), 8000)
        path = path.with_suffix(".wav")
    elif kind == 3:  # no file at all
        path = folder / "missing.wav"
    else:
        path.write_bytes(data)
    out = answered_or_documented(lambda: load(path, rate))
    if out is not None:
        waveform, got = out
        assert waveform.ndim == 1 and waveform.numel() > 0 and torch.isfinite(waveform).all()
        assert got == (rate or 8000)


@FUZZ
@given(tensors(max_dims=3, max_size=60), st.integers(-1, 6), st.sampled_from([2, 1, 0, "kullback-leibler", "oops"]))
def test_nmf_fit_and_transform_answer_or_name_the_problem(X, k, beta):
    nmf = answered_or_documented(lambda: NMF(k, n_iter=3, beta=beta, progress=False).fit(X))
    if nmf is not None:
        assert (nmf.W >= 0).all() and torch.isfinite(nmf.W).all()
        H = answered_or_documented(lambda: nmf.transform(X))
        if H is not None:
            assert (H >= 0).all() and H.shape[-2] == k


class _Odd(nn.Module):
    """Classifiers as users wrap them, right and wrong."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind, self.conv, self.head = kind, nn.Conv1d(1, 4, 64, stride=32), nn.Linear(4, 3)

    def forward(self, x):
        if self.kind == "needs_features":
            x = x.reshape(x.shape[0], -1, 40)
        h = torch.relu(self.conv(x.unsqueeze(1)))
        logits = self.head(h.mean(-1))
        return {"softmax": logits.softmax(1), "sigmoid": torch.sigmoid(logits), "tuple": (logits, h),
                "dict": {"logits": logits}, "none": None, "needs_features": logits, "ok": logits,
                "3d": logits[:, :, None]}[self.kind]


@FUZZ
@given(st.sampled_from(["softmax", "sigmoid", "tuple", "dict", "none", "needs_features", "ok", "3d"]),
       st.lists(st.sampled_from(["conv", "head", "", "missing", "conv.weight"]), min_size=0, max_size=3),
       st.sampled_from([None, 100, 255, 8000]))
def test_interpreter_construction_answers_or_names_the_problem(kind, layers, length):
    W = torch.rand(SPEC.n_freq, 5)
    interp = answered_or_documented(lambda: Interpreter(_Odd(kind), layers, W, spectrogram=SPEC, example_length=length))
    if interp is not None:
        assert interp.n_classes == 3 and len(interp.layouts) == len(layers)


@pytest.fixture(scope="module")
def interpreter():
    torch.manual_seed(0)
    train = SyntheticScenes("train", n_per_class=2)
    nmf = NMF(8, n_iter=5, progress=False).fit(torch.cat([SPEC(train[i].waveform) for i in range(len(train))], 1), spectrogram=SPEC)
    interp = Interpreter(MelCNN(8, width=4).eval(), ["block2", "block4"], nmf)
    interp.fit(train, train, epochs=1, batch_size=8, progress=False)
    return interp


targets = st.one_of(st.none(), st.integers(-2, 9), st.lists(st.integers(-1, 8), max_size=4), st.just("dog"))


@FUZZ
@given(tensors(max_dims=2, max_size=9000), targets, st.one_of(st.floats(-0.5, 1.5), st.just(float("nan"))),
       st.sampled_from([None, 0, 1, 3]), st.sampled_from(["log1p", "magnitude", "linear"]),
       st.sampled_from([None, 0.0, 0.05, 1.0, 2.0]))
def test_explain_answers_or_names_the_problem(interpreter, x, target, threshold, top_k, domain, binarize):
    e = answered_or_documented(lambda: interpreter.explain(x, target=target, threshold=threshold, top_k=top_k,
                                                           domain=domain, binarize=binarize))
    if e is not None:
        assert e.audio.shape == e.waveform.shape and torch.isfinite(e.audio).all()
        assert ((e.mask >= 0) & (e.mask <= 1)).all()


@FUZZ
@given(st.sampled_from(["Saliency", "Random components", "Oracle IRM", "L-MAC"]), tensors(max_dims=2, max_size=9000),
       targets, st.floats(-0.5, 1.5))
def test_every_method_explains_or_names_the_problem(interpreter, name, x, target, threshold):
    if name == "L-MAC":
        method = LMAC(interpreter.classifier, ["block3"], SPEC)
    else:
        method = {m.name: m for m in (baselines.Saliency.from_interpreter(interpreter), baselines.RandomComponents(interpreter),
                                      baselines.IdealRatioMask.from_interpreter(interpreter))}[name]
    extra = {}
    if method.needs_sources and x.ndim == 2 and x.is_floating_point():
        extra = {"sources": torch.stack([x / 2, x / 2], 1), "source_labels": torch.zeros(x.shape[0], 2, dtype=torch.long)}
    e = answered_or_documented(lambda: method.explain(x, target=target, threshold=threshold, **extra))
    if e is not None:
        assert torch.isfinite(e.audio).all() and e.audio.shape == e.waveform.shape


@FUZZ
@given(tensors(max_dims=2, max_size=6), tensors(max_dims=2, max_size=6), targets)
def test_metrics_answer_or_name_the_problem(a, b, target):
    for metric in (lambda: faithfulness(a, b, target), lambda: input_fidelity(a, target), lambda: average_drop(a, b, target),
                   lambda: fidelity(a, b), lambda: si_sdr(a, b), lambda: sparseness(a), lambda: paired_difference(a, b)):
        answered_or_documented(metric)


@FUZZ
@given(st.sampled_from(["heard", "file.txt", "", "deep/er/folder"]), st.booleans(), st.integers(-1, 4))
def test_explanation_save_writes_whole_files_or_nothing(interpreter, tmp_path_factory, name, overwrite, components):
    root = tmp_path_factory.mktemp("save")
    (root / "file.txt").write_text("not a folder")
    e = interpreter.explain(torch.randn(2, 8000) * 0.1)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    written = answered_or_documented(lambda: e.save(root / name, n_components=components, overwrite=overwrite))
    after = sorted(p.relative_to(root) for p in root.rglob("*"))
    if written is None:
        assert after == before, "a failed save wrote something"
    else:
        assert all(p.stat().st_size > 44 for p in written)  # every WAV whole: a header and samples
        assert not [p for p in root.rglob("*.part*")]


@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from([1e-3, 0.0, float("inf"), -1.0]), st.sampled_from([0.0, 1.0, -1.0, float("nan")]),
       st.sampled_from([1.0, 0.0, float("nan")]), st.integers(0, 2))
def test_fit_trains_or_names_the_problem(interpreter, lr, lam_in, temperature, epochs):
    train = SyntheticScenes("val", n_per_class=1)
    copy = Interpreter(interpreter.classifier, ["block4"], interpreter.W, spectrogram=SPEC)
    history = answered_or_documented(lambda: copy.fit(train, train, epochs=epochs, batch_size=4, lr=lr, lam_in=lam_in,
                                                      temperature=temperature, progress=False))
    if history is not None:
        assert len(history.val_fidelity) == epochs and all(math.isfinite(v) for v in history.loss)


def test_the_fuzzing_reached_a_thousand_inputs():
    print(f"\nfuzzing: {GENERATED['count']} generated inputs, every one answered or refused with a documented error")
    assert GENERATED["count"] >= 1000
