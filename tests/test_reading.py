"""l2i.reading: logits and hidden layers read along their true batch and time axes, on small
layouts made here and on the real architectures of benchmarks/architectures.py in tiny configs."""

import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from l2i.interpreter import Interpreter
from l2i.metrics import energy_following
from l2i.reading import ClassifierReader, Layer, LogitsFrom, TokenGrid, describe_layers, logits_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import architectures  # noqa: E402  the builders the benchmark uses

RATE = 8000
W = torch.rand(129, 12, generator=torch.Generator().manual_seed(0)) + 0.01  # (freq, K) for n_fft 256
W = W / W.norm(dim=0)


class Frames(nn.Module):
    """Strided 1-D convolutions, then a layer in the layout ``layout`` of (batch, channels, time):
    "bct", "btc", "tbc"; or tokens "tokens" (freq-major patches behind 2 special tokens, growing
    with the clip); or "padded" (every clip padded to 2 s); or "pair" (a tuple out)."""

    def __init__(self, layout: str):
        super().__init__()
        self.layout = layout
        self.front = nn.Conv1d(1, 12, 64, stride=32)
        self.layer = nn.Identity()
        self.out = nn.Linear(12, 4)

    def forward(self, x):
        if self.layout == "padded":
            x = nn.functional.pad(x, (0, 2 * RATE - x.shape[-1]))
        h = torch.relu(self.front(x.unsqueeze(1)))  # (batch, 12, time)
        if self.layout == "tokens":  # 3 frequency rows of 4 features each, time-major within a row
            rows = h.reshape(h.shape[0], 3, 4, h.shape[-1]).permute(0, 1, 3, 2).reshape(h.shape[0], -1, 4)
            tokens = torch.cat([rows[:, :2] * 0, rows], dim=1)
            self.layer(tokens)
            return self.out(h.mean(-1))
        view = {"bct": h, "btc": h.transpose(1, 2), "tbc": h.permute(2, 0, 1), "padded": h, "pair": h}[self.layout]
        read = self.layer((view, torch.zeros(1)) if self.layout == "pair" else view)
        if self.layout == "pair":
            read = read[0]
        back = {"bct": read, "btc": read.transpose(1, 2) if self.layout == "btc" else read,
                "tbc": read.permute(1, 2, 0) if self.layout == "tbc" else read, "padded": read, "pair": read}[self.layout]
        return self.out(back.mean(-1))


class Pass(nn.Module):
    """An identity hookable layer that passes tuples through."""

    def forward(self, x):
        return x


@pytest.mark.parametrize("layout, batch, time", [("bct", 0, 2), ("btc", 0, 1), ("tbc", 1, 0), ("pair", 0, 2)])
def test_batch_and_time_axes_are_found(layout, batch, time):
    model = Frames(layout)
    if layout == "pair":
        model.layer = Pass()
    found = ClassifierReader(model, ["layer"], RATE).layouts[0]
    assert (found.batch, found.time, found.features) == (batch, time, 12)
    logits, (read,) = ClassifierReader(model, ["layer"], RATE).read(torch.randn(2, 5000))
    assert read.shape[:2] == (2, 12) and logits.shape == (2, 4)


def test_tokens_that_grow_with_the_clip_are_refused_then_read_as_declared():
    model = Frames("tokens")
    with pytest.raises(ValueError, match=r"layer 'layer': axis 1 grows with the clip .* not ordered in time .*TokenGrid"):
        ClassifierReader(model, ["layer"], RATE)
    n_time = (RATE - 64) // 32 + 1
    reader = ClassifierReader(model, [Layer("layer", tokens=TokenGrid(2, 3, n_time))], RATE)
    assert reader.layouts[0].features == 4 * 3
    _, (read,) = reader.read(torch.randn(2, RATE))
    assert read.shape == (2, 12, n_time)
    with pytest.raises(ValueError, match="needs"):  # the declared grid holds for that length only
        reader.read(torch.randn(2, RATE // 2))


def test_a_model_that_pads_every_clip_is_refused_then_read_as_declared():
    model = Frames("padded")
    with pytest.raises(ValueError, match=r"no axis grew with the clip .* time=AXIS"):
        ClassifierReader(model, ["layer"], RATE)
    reader = ClassifierReader(model, [Layer("layer", time=-1)], RATE)
    assert reader.layouts[0].time == 2 and reader.layouts[0].features == 12


def test_pooled_layers_read_and_select_chooses_an_element():
    class Pooled(Frames):
        def forward(self, x):
            h = torch.relu(self.front(x.unsqueeze(1))).mean(-1)
            return self.out(self.layer({"pooled": h, "mask": None, "other": h * 2})["pooled"])

    model = Pooled("bct")
    model.layer = Pass()
    layout = ClassifierReader(model, ["layer"], RATE).layouts[0]
    assert layout.time is None and "no time axis" in layout.describe()
    reader = ClassifierReader(model, [Layer("layer", select="other")], RATE)
    _, (read,) = reader.read(torch.ones(2, RATE))
    _, (first,) = ClassifierReader(model, ["layer"], RATE).read(torch.ones(2, RATE))
    torch.testing.assert_close(read, 2 * first)
    with pytest.raises(ValueError, match="without a tensor at 'mask'"):
        ClassifierReader(model, [Layer("layer", select="mask")], RATE)


def test_logits_are_taken_from_what_classifiers_return():
    out = torch.randn(2, 3)
    assert logits_of(out) is out
    assert logits_of({"logits": out, "loss": None}) is out
    assert logits_of(type("Output", (), {"logits": out})()) is out
    with pytest.raises(ValueError, match=r"a dict with keys \['clipwise_output', 'embedding'\], not logits"):
        logits_of({"clipwise_output": out.sigmoid(), "embedding": out})


def test_probabilities_are_refused_or_warned_about():
    class Scores(nn.Module):
        def __init__(self, squash):
            super().__init__()
            self.net, self.squash = nn.Linear(RATE, 3), squash

        def forward(self, x):
            return self.squash(self.net(x) * 10)

    with pytest.raises(ValueError, match="probabilities .* remove the final softmax"):
        ClassifierReader(Scores(lambda z: z.softmax(1)), ["net"], RATE)
    with pytest.warns(UserWarning, match="sigmoid probabilities"):
        ClassifierReader(Scores(torch.sigmoid), ["net"], RATE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ClassifierReader(Scores(lambda z: z), ["net"], RATE)


def test_a_failing_classifier_is_named_with_what_it_was_given():
    class NeedsFeatures(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(40, 3)

        def forward(self, x):
            return self.net(x.reshape(x.shape[0], -1, 40)).mean(1)

    with pytest.raises(ValueError, match=r"failed on a dry run of 3 clips of 7999 samples, shaped \(batch, samples\) .*wrap it"):
        ClassifierReader(NeedsFeatures(), ["net"], 8000 - 1)


def test_logits_from_a_layer_of_a_model_that_returns_probabilities():
    class Sigmoid(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(RATE, 3)

        def forward(self, x):
            return {"clipwise_output": torch.sigmoid(self.fc(x))}

    model = Sigmoid()
    x = torch.randn(2, RATE)
    torch.testing.assert_close(LogitsFrom(model, "fc")(x), model.fc(x))
    with pytest.raises(ValueError, match="'head' is not a sub-module"):
        LogitsFrom(model, "head")


def _interpreter(name: str, layers=None) -> Interpreter:
    torch.manual_seed(0)
    model, default = architectures.build(name, 4, RATE, "tiny")
    return Interpreter(model.eval(), default if layers is None else layers, W, spectrogram=_spec(), example_length=RATE)


def _spec():
    from l2i.audio import Spectrogram

    return Spectrogram(RATE, 256, 64)


# The true time axis of the layers each architecture reads (for AST: its token grid).
TRUE_TIME = {"melcnn": 3, "cnn14": 2, "wav2vec2": 1, "ta_wav2vec2": 1, "conformer": 0, "ast": "tokens"}


def _layers(name):
    return [(name, i) for i in range(len(architectures.build(name, 4, RATE, "tiny")[1]))]


@pytest.mark.parametrize("name, index", [case for name in architectures.ARCHITECTURES for case in _layers(name)],
                         ids=lambda v: str(v))
def test_every_layer_is_read_along_its_time_axis(name, index):
    """A change at one time step of a read layer moves H near that time and nowhere else."""
    layer = architectures.build(name, 4, RATE, "tiny")[1][index]
    interp = _interpreter(name, [layer])
    layout = interp.layouts[0]
    grid = layout.layer.tokens
    positions = grid.time if grid else layout.shape[layout.time]
    if positions < 12:
        pytest.skip(f"{layout.name} has {positions} positions in time, too coarse to place a change")
    module = dict(interp.classifier.named_modules())[layout.name]
    x = torch.randn(1, RATE, generator=torch.Generator().manual_seed(1)) * 0.1
    H0, _, X = interp.activations(x)
    t0 = positions // 3

    def bump(_m, _i, out):
        first = (out[0] if isinstance(out, tuple) else out).clone()
        if grid:
            first[:, [grid.special + f * grid.time + t0 for f in range(grid.freq)]] += 5.0
        else:
            first.narrow(TRUE_TIME[name], t0, 1).add_(5.0)
        return (first,) + tuple(out[1:]) if isinstance(out, tuple) else first

    handle = module.register_forward_hook(bump)
    try:
        H1, _, _ = interp.activations(x)
    finally:
        handle.remove()
    change = (H1 - H0).abs().sum(1)[0].detach()
    frames = change.numel()
    centre, half = round((t0 + 0.5) / positions * frames), max(frames // 8, round(1.5 * frames / positions))
    near = change[max(0, centre - half): centre + half + 1].sum() / change.sum()
    assert near > 0.8, f"{layout.name}: only {float(near):.2f} of the change in H lies near the changed time step"


@pytest.mark.parametrize("name", ["melcnn", "wav2vec2", "conformer"])
def test_after_brief_training_H_follows_the_input_energy_and_a_misread_does_not(name):
    from l2i.datasets import SyntheticScenes

    train = SyntheticScenes("train", n_per_class=2)
    x = torch.stack([train[i].waveform for i in range(len(train))])
    following = {}
    for case in ("right", "misread"):
        layers = architectures.build(name, 4, RATE, "tiny")[1]
        interp = _interpreter(name, layers if case == "right" else [Layer(n, time=2) for n in layers])
        interp.fit(train, train, epochs=6, batch_size=8, lr=3e-3, progress=False)
        with torch.no_grad():
            H, _, X = interp.activations(x)
        following[case] = float(energy_following(H, X).nanmean())
    assert following["right"] > 0.35 and following["right"] > following["misread"] + 0.2, following


def test_clips_of_other_lengths_are_read_and_explained():
    interp = _interpreter("wav2vec2")
    for n in (RATE // 2, int(1.37 * RATE)):
        e = interp.explain(torch.randn(2, n) * 0.1)
        assert e.audio.shape == (2, n) and e.H.shape[-1] == _spec().n_frames(n)


def test_layer_table_lists_layers_with_their_layouts():
    model, _ = architectures.build("conformer", 4, RATE, "tiny")
    rows = {r["name"]: r for r in describe_layers(model, RATE)}
    assert rows["conformer.conformer_layers.0"]["layout"].startswith("(time=101, batch, 32)")
    assert rows["head"]["layout"] == "(batch, 4) -> 4 features, no time axis"
    assert list(rows)[0] == "features.mel.spectrogram"  # in the order the forward pass calls them


def test_save_and_load_keep_the_declared_layouts(tmp_path):
    interp = _interpreter("ast")
    path = interp.save(tmp_path / "ast.pt")
    back = Interpreter.load(path, interp.classifier)
    assert [layout.describe() for layout in back.layouts] == [layout.describe() for layout in interp.layouts]
    x = torch.randn(2, RATE) * 0.1
    torch.testing.assert_close(back(x), interp(x))
    reads = Interpreter(interp.classifier, [Layer(interp.layers[0].name, read=lambda out: out.transpose(1, 2))], W,
                        spectrogram=_spec())
    reads.save(tmp_path / "read.pt")
    with pytest.raises(ValueError, match="read= function, which is not saved"):
        Interpreter.load(tmp_path / "read.pt", interp.classifier)
    Interpreter.load(tmp_path / "read.pt", interp.classifier, layers=reads.layers)


def test_a_layer_of_other_features_is_named_before_psi_runs():
    interp = _interpreter("melcnn")
    fb = interp.classifier.mel.mel_scale.fb
    interp.classifier.mel.mel_scale.fb = torch.cat([fb, fb[:, :4]], dim=1)  # four more mel bands
    with pytest.raises(ValueError, match=r"layer 'block2' gives 136 features where the interpreter was built for 128"):
        interp.explain(torch.randn(1, RATE) * 0.1)
