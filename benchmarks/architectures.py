"""L2I on the architectures users bring: every one read along its true time axis, side by side.

Five real architectures from the packages their users take them from, built from configs (no
pretrained weights: nothing is downloaded), each wrapped to take waveforms ``(batch, samples)``
and return logits, next to the project's ``MelCNN``:

==============  ====================================================================  ===========================
name            model                                                                 layers read (layout found)
==============  ====================================================================  ===========================
melcnn          ``l2i.models.MelCNN``                                                 ``(batch, C, freq, time)``
cnn14           PANNs ``Cnn14`` (panns_inference), fewer channels                     ``(batch, C, time, mel)``
ast             transformers ``ASTForAudioClassification`` on a log-mel front end     tokens, declared ``TokenGrid``
wav2vec2        transformers ``Wav2Vec2ForSequenceClassification``                    ``(batch, frames, features)``
ta_wav2vec2     torchaudio ``wav2vec2_model``, frames averaged                        tuple ``(x, position_bias)``
conformer       torchaudio ``Conformer`` on a log-mel front end                       ``(time, batch, features)``
==============  ====================================================================  ===========================

``build(name, n_classes, sample_rate, size)`` makes one (``size="tiny"`` for the tests, ``"small"``
for the benchmark) and returns ``(model, layers)``: the classifier and the layers to read. The
benchmark (``--json``) trains each classifier on the synthetic scenes (``train_classifier``), an
interpreter on it (the scenes recipe's dictionary and settings) and reports per architecture:
test accuracy, interpreter fidelity, relative reconstruction error, how H's total activation
follows the input's energy in time (Pearson correlation over frames, averaged over test clips),
and FF, Fid-In and SI-SDRi on two-scene mixtures at 0 dB, with seconds per explanation.

Usage::

    python benchmarks/architectures.py --json > benchmarks/results/architectures.json
    python benchmarks/architectures.py --json --only melcnn wav2vec2 --epochs 2   # a quick look
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch
import torchaudio
from torch import Tensor, nn

from l2i.reading import Layer, LogitsFrom, TokenGrid

ARCHITECTURES = ("melcnn", "cnn14", "ast", "wav2vec2", "ta_wav2vec2", "conformer")
# Per size: the width of the models' hidden layers (CNN channels: the first block's).
WIDTH = {"tiny": 8, "small": 32}


class LogMel(nn.Module):
    """Waveforms ``(batch, samples)`` -> ``(batch, frames, n_mels)`` log-mel, 10 ms frames: the
    front end the spectrogram transformers here read (AST's feature extractor does the same)."""

    def __init__(self, sample_rate: int, n_mels: int):
        super().__init__()
        hop = sample_rate // 100
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=4 * hop, hop_length=hop, n_mels=n_mels)

    def forward(self, waveform: Tensor) -> Tensor:
        return torch.log(self.mel(waveform) + 1e-6).transpose(1, 2)


class ASTClassifier(nn.Module):
    """transformers' AST on :class:`LogMel` features padded or cut to the model's ``max_length``."""

    def __init__(self, model, sample_rate: int):
        super().__init__()
        self.features, self.model = LogMel(sample_rate, model.config.num_mel_bins), model
        self.sample_rate = sample_rate

    def forward(self, waveform: Tensor) -> Tensor:
        x = self.features(waveform)
        n = self.model.config.max_length
        x = nn.functional.pad(x, (0, 0, 0, max(0, n - x.shape[1])))[:, :n]
        return self.model(input_values=x).logits


class Wav2Vec2Classifier(nn.Module):
    """transformers' wav2vec2 for sequence classification on raw waveforms."""

    def __init__(self, model, sample_rate: int):
        super().__init__()
        self.model, self.sample_rate = model, sample_rate

    def forward(self, waveform: Tensor) -> Tensor:
        return self.model(input_values=waveform).logits


class TorchaudioWav2Vec2Classifier(nn.Module):
    """torchaudio's wav2vec2 with a frame-wise head (``aux_num_out``), averaged over frames."""

    def __init__(self, model, sample_rate: int):
        super().__init__()
        self.model, self.sample_rate = model, sample_rate

    def forward(self, waveform: Tensor) -> Tensor:
        frames, _ = self.model(waveform)
        return frames.mean(dim=1)


class ConformerClassifier(nn.Module):
    """torchaudio's Conformer on :class:`LogMel` features, averaged over time, a linear head."""

    def __init__(self, sample_rate: int, n_mels: int, width: int, n_classes: int):
        super().__init__()
        self.features = LogMel(sample_rate, n_mels)
        self.conformer = torchaudio.models.Conformer(input_dim=n_mels, num_heads=2, ffn_dim=2 * width, num_layers=2,
                                                      depthwise_conv_kernel_size=7)
        self.head = nn.Linear(n_mels, n_classes)
        self.sample_rate = sample_rate

    def forward(self, waveform: Tensor) -> Tensor:
        x = self.features(waveform)
        lengths = torch.full((x.shape[0],), x.shape[1], device=x.device)
        x, _ = self.conformer(x, lengths)
        return self.head(x.mean(dim=1))


def _panns_models():
    """panns_inference's models module, loaded from its file: importing the package itself runs
    a download of AudioSet's labels (``panns_inference/config.py``)."""
    spec = importlib.util.find_spec("panns_inference")
    if spec is None:
        raise ImportError("panns_inference is not installed: pip install panns_inference torchlibrosa (the test extras)")
    folder = Path(spec.origin).parent
    package = type(sys)("_l2i_panns")
    package.__path__ = [str(folder)]
    sys.modules.setdefault("_l2i_panns", package)
    for name in ("pytorch_utils", "models"):
        if f"_l2i_panns.{name}" not in sys.modules:
            module_spec = importlib.util.spec_from_file_location(f"_l2i_panns.{name}", folder / f"{name}.py")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[f"_l2i_panns.{name}"] = module
            module_spec.loader.exec_module(module)
    return sys.modules["_l2i_panns.models"]


def build(name: str, n_classes: int, sample_rate: int = 8000, size: str = "small", seconds: float = 1.0) -> tuple[nn.Module, list]:
    """``(classifier, layers)``: the architecture ``name`` (:data:`ARCHITECTURES`), wrapped to take
    waveforms ``(batch, samples)`` at ``sample_rate`` and return ``(batch, n_classes)`` logits, and
    the layers an interpreter reads. ``seconds``: the clips' length (AST's ``max_length``)."""
    w = WIDTH[size]
    if name == "melcnn":
        from l2i.models import MelCNN

        return MelCNN(n_classes, sample_rate=sample_rate, width=w // 2), ["block2", "block3", "block4"]
    if name == "cnn14":
        models = _panns_models()
        cnn = models.Cnn14(sample_rate=sample_rate, window_size=256, hop_size=sample_rate // 100, mel_bins=64,
                           fmin=50, fmax=sample_rate // 2, classes_num=n_classes)
        channels = [c * w // 2 for c in (1, 2, 4, 8, 16, 32)]  # CNN14's 64 to 2048, divided by 128 / w
        for i, (c_in, c_out) in enumerate(zip([1] + channels[:-1], channels), start=1):
            setattr(cnn, f"conv_block{i}", models.ConvBlock(in_channels=c_in, out_channels=c_out))
        cnn.fc1, cnn.fc_audioset = nn.Linear(channels[-1], channels[-1]), nn.Linear(channels[-1], n_classes)
        cnn.sample_rate = sample_rate
        # Cnn14 returns sigmoid probabilities in a dict: read the logits its last layer computes
        return LogitsFrom(cnn, "fc_audioset"), ["model.conv_block2", "model.conv_block3", "model.conv_block4"]
    if name == "ast":
        from transformers import ASTConfig, ASTForAudioClassification

        config = ASTConfig(hidden_size=w * 2, num_hidden_layers=2, num_attention_heads=2, intermediate_size=w * 4,
                           num_mel_bins=32, max_length=int(100 * seconds) + 1, patch_size=16, frequency_stride=8,
                           time_stride=4, num_labels=n_classes)
        grid = TokenGrid.for_ast(config)
        return ASTClassifier(ASTForAudioClassification(config), sample_rate), [
            Layer(f"model.audio_spectrogram_transformer.layers.{i}", tokens=grid) for i in range(2)]
    if name == "wav2vec2":
        from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

        config = Wav2Vec2Config(hidden_size=w * 2, num_hidden_layers=2, num_attention_heads=2, intermediate_size=w * 4,
                                conv_dim=(w * 2,) * 3, conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8),
                                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_labels=n_classes,
                                classifier_proj_size=w * 2, hidden_dropout=0.0, attention_dropout=0.0,
                                feat_proj_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0)
        return Wav2Vec2Classifier(Wav2Vec2ForSequenceClassification(config), sample_rate), [
            f"model.wav2vec2.encoder.layers.{i}" for i in range(2)]
    if name == "ta_wav2vec2":
        model = torchaudio.models.wav2vec2_model(
            extractor_mode="group_norm", extractor_conv_layer_config=[(w * 2, 10, 5), (w * 2, 8, 4), (w * 2, 8, 4)],
            extractor_conv_bias=False, encoder_embed_dim=w * 2, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16,
            encoder_pos_conv_groups=2, encoder_num_layers=2, encoder_num_heads=2, encoder_attention_dropout=0.0,
            encoder_ff_interm_features=w * 4, encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
            encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=n_classes)
        return TorchaudioWav2Vec2Classifier(model, sample_rate), [f"model.encoder.transformer.layers.{i}" for i in range(2)]
    if name == "conformer":
        return ConformerClassifier(sample_rate, 32, w * 2, n_classes), [f"conformer.conformer_layers.{i}" for i in range(2)]
    raise ValueError(f"unknown architecture {name!r}: one of {ARCHITECTURES}")


def energy_following_on(interp, data, batch_size: int = 32) -> float:
    """Mean over ``data``'s clips of :func:`l2i.metrics.energy_following` (H against X in time)."""
    from torch.utils.data import DataLoader

    from l2i.datasets import collate
    from l2i.metrics import energy_following

    values = []
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate):
            H, _, X = interp.activations(batch.waveforms)
            values.append(energy_following(H, X))
    return float(torch.cat(values).nanmean())


def run(name: str, recipe, data: dict, nmf, classifier_epochs: int, interpreter_epochs: int, n_mixtures: int,
        progress: bool = False) -> dict:
    """Train ``name``'s classifier and interpreter on ``data`` as ``recipe`` says; every figure."""
    from l2i.book import artifacts
    from l2i.datasets import Mixtures
    from l2i.interpreter import Interpreter
    from l2i.metrics import evaluate
    from l2i.models import accuracy, train_classifier

    n_classes = len(data["train"].classes)
    torch.manual_seed(recipe.seed)
    model, layers = build(name, n_classes, recipe.sample_rate, "small", recipe.duration)
    start = time.perf_counter()
    history = train_classifier(model, data["train"], data["val"], epochs=classifier_epochs, seed=recipe.seed, progress=progress)
    classifier_seconds = time.perf_counter() - start
    model.cpu().eval()
    torch.manual_seed(recipe.seed)
    interp = Interpreter(model, layers, nmf, classes=tuple(data["train"].classes))
    start = time.perf_counter()
    interp.fit(data["train"], data["val"], epochs=interpreter_epochs, lr=recipe.interpreter_lr, lam_rec=recipe.lam_rec,
               augment=artifacts.interpreter_augment(recipe), seed=recipe.seed, progress=progress)
    interpreter_seconds = time.perf_counter() - start
    _, reconstruction = interp._validate(data["test"])
    mixtures = Mixtures(data["test"], n_mixtures=n_mixtures, snr_db=0.0, seed=1)
    scores = evaluate(interp.explain, interp.classify, mixtures)
    return {
        "architecture": name,
        "layers": [layout.name for layout in interp.layouts],
        "layouts": [layout.describe() for layout in interp.layouts],
        "classifier_parameters": sum(p.numel() for p in model.parameters()),
        "classifier_val_accuracy": history.best_val_accuracy,
        "classifier_test_accuracy": accuracy(model, data["test"]),
        "interpreter_val_fidelity": interp.history.best_val_fidelity,
        "interpreter_test_fidelity": interp.fidelity(data["test"]),
        "reconstruction_error": reconstruction,
        "energy_following": energy_following_on(interp, data["test"]),
        **{f"mix_{k.replace('-', '_')}": scores[k] for k in ("fidelity", "FF", "Fid-In", "SI-SDRi")},
        "seconds_per_explanation": scores["seconds_per_explanation"],
        "classifier_seconds": classifier_seconds,
        "interpreter_seconds": interpreter_seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object (else a table)")
    parser.add_argument("--only", nargs="+", choices=ARCHITECTURES, default=list(ARCHITECTURES))
    parser.add_argument("--epochs", type=int, default=10, help="classifier epochs")
    parser.add_argument("--interpreter-epochs", type=int, default=20)
    parser.add_argument("--mixtures", type=int, default=40, help="two-scene mixtures at 0 dB of the test split")
    parser.add_argument("--n-per-class", type=int, default=100, help="training scenes per class")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    from l2i.book import artifacts

    recipe = artifacts.SCENES.with_(n_per_class=args.n_per_class)
    data = artifacts.datasets(recipe)
    nmf = artifacts.dictionary(recipe, progress=args.progress)
    start = time.perf_counter()
    rows = []
    for name in args.only:
        rows.append(run(name, recipe, data, nmf, args.epochs, args.interpreter_epochs, args.mixtures, args.progress))
        print(f"{name}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    meta = {"command": "python benchmarks/architectures.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "dataset": "synthetic scenes", "recipe": "artifacts.SCENES", "n_per_class": args.n_per_class,
            "classifier_epochs": args.epochs, "interpreter_epochs": args.interpreter_epochs, "mixtures": args.mixtures,
            "seed": recipe.seed, "total_seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__}
    if args.json:
        print(json.dumps({"meta": meta, "results": rows}, indent=1))
    else:
        keys = ("classifier_test_accuracy", "interpreter_test_fidelity", "reconstruction_error", "energy_following",
                "mix_FF", "mix_Fid_In", "mix_SI_SDRi", "seconds_per_explanation")
        print("| architecture | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
        for row in rows:
            print(f"| {row['architecture']} | " + " | ".join(f"{row[k]:.3g}" for k in keys) + " |")


if __name__ == "__main__":
    main()
