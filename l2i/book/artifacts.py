"""The book's trained models (dictionary, classifier, interpreter, L-MAC), cached under content keys.

Book: every chapter from "Training the classifier" on. Each artifact is stored under
``cache_dir()/artifacts/<dataset>-<stage>-<key>.pt``, where the key hashes the recipe's settings
that stage depends on (:meth:`l2i.book.recipes.Recipe.fields_of`), the l2i version and a hash of
the training code (without docstrings and comments, which change no number): chapters share what
one of them trained, a changed setting or changed code never reuses a stale artifact, and an
empty cache is rebuilt on demand. Every model is saved and loaded the one way every l2i model is
(:mod:`l2i.persistence`).
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import partial
from pathlib import Path

import torch

from .. import __version__
from ..audio import Spectrogram
from ..datasets import ESC50, FSDD, SyntheticScenes
from ..downloads import cache_dir
from ..interpreter import Interpreter
from ..lmac import LMAC
from ..models import MelCNN, mix_pairs, perturb, train_classifier
from ..nmf import NMF, FrameBlocks
from ..training import History, default_device
from .recipes import DIGITS, ESC10, ESC50_CPU, ESC50_PAPER, SCENES, Recipe

__all__ = [
    "Recipe", "SCENES", "DIGITS", "ESC10", "ESC50_CPU", "ESC50_PAPER", "datasets", "spectrogram", "dictionary",
    "new_classifier", "classifier", "interpreter", "interpreter_augment", "train_interpreter", "lmac",
]

# The modules that decide what training produces. Evaluation, baselines, plots and widgets are left
# out on purpose: changing how an artifact is measured or shown does not make it stale.
# downloads is counted with training: how an archive is unpacked decides which files are read.
_TRAINING_MODULES = (
    "__init__", "audio", "datasets", "downloads", "explanation", "interpreter", "lmac", "losses", "models",
    "networks", "nmf", "persistence", "reading", "scenes", "training", "book/artifacts", "book/recipes", "distributed",
)
_MEASUREMENT_MODULES = ("baselines", "explainers", "metrics", "plotting", "widgets", "book/__init__", "book/expected", "book/figures",
                        "cli", "__main__")


def _code_version() -> str:
    """Hash of the training code: an artifact made by other code is never reused."""
    digest = hashlib.sha256()
    for name in _TRAINING_MODULES:
        path = Path(__file__).parents[1] / f"{name}.py"
        digest.update(name.encode() + _code_digest(path.read_text(encoding="utf-8")))
    return digest.hexdigest()[:12]


def _code_digest(source: str) -> bytes:
    """What of a module's ``source`` decides what it computes: its syntax tree without docstrings.

    Comments, docstrings, blank lines and line breaks leave the digest unchanged (so fixing a
    docstring does not retrain every artifact); any change to a statement or an expression changes
    it. The tree's text is Python's own (``ast.dump``), so another Python version may give another
    digest, and then retrains: never a stale reuse."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).digest()


def _key(recipe: Recipe, stage: str) -> str:
    parts = {"l2i": __version__, "code": _code_version(), "stage": stage, **recipe.fields_of(stage)}
    blob = json.dumps(parts, sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _path(recipe: Recipe, stage: str) -> Path:
    return cache_dir() / "artifacts" / f"{recipe.dataset}-{stage}-{_key(recipe, stage)}.pt"


def datasets(recipe: Recipe) -> dict:
    """``{"train", "val", "test"}`` datasets of the recipe, clips of ``duration`` at ``sample_rate``.

    ESC-50 is read from ``$L2I_ESC50`` or the cache, downloaded there the first time."""
    if recipe.dataset in ("esc10", "esc50"):
        return {s: ESC50(s, sample_rate=recipe.sample_rate, duration=recipe.duration, esc10=recipe.dataset == "esc10")
                for s in ("train", "val", "test")}
    if recipe.dataset == "scenes":
        n = recipe.n_per_class
        return {
            "train": SyntheticScenes("train", n, seed=recipe.seed),
            "val": SyntheticScenes("val", max(1, n // 4), seed=recipe.seed),
            "test": SyntheticScenes("test", max(1, n // 4), seed=recipe.seed),
        }
    return {split: FSDD(split, duration=recipe.duration) for split in ("train", "val", "test")}


def spectrogram(recipe: Recipe) -> Spectrogram:
    return Spectrogram(recipe.sample_rate, recipe.n_fft, recipe.hop_length)


def dictionary(recipe: Recipe, progress: bool = True) -> NMF:
    """The NMF dictionary learnt on the training split (cached)."""
    path = _path(recipe, "dictionary")
    if path.is_file():
        return NMF.load(path)
    spec = spectrogram(recipe)
    nmf = NMF(recipe.n_components, n_iter=recipe.nmf_iter, sparsity=recipe.sparsity, seed=recipe.seed, progress=progress)
    nmf.fit(FrameBlocks(datasets(recipe)["train"], spec), spectrogram=spec)
    nmf.save(path)
    return nmf


def new_classifier(recipe: Recipe, n_classes: int) -> MelCNN:
    """An untrained :class:`MelCNN` as the recipe describes it (width and mel front end)."""
    return MelCNN(
        n_classes, sample_rate=recipe.sample_rate, width=recipe.classifier_width,
        n_mels=recipe.classifier_n_mels, hop_length=recipe.classifier_hop_length, time_mask=recipe.classifier_time_mask,
    )


def classifier(recipe: Recipe, progress: bool = True) -> tuple[MelCNN, History]:
    """The reference CNN trained on the training split, selected on validation (cached)."""
    path = _path(recipe, "classifier")
    if path.is_file():
        model = MelCNN.load(path)
        return model, model.history
    data = datasets(recipe)
    torch.manual_seed(recipe.seed)  # the same weights whichever chapter trains it first
    model = new_classifier(recipe, len(data["train"].classes))
    history = train_classifier(
        model, data["train"], data["val"], epochs=recipe.classifier_epochs, seed=recipe.seed, progress=progress
    )
    model.cpu()
    model.save(path, history)
    return model, history


def interpreter_augment(recipe: Recipe):
    """The recipe's ``augment`` for :meth:`Interpreter.fit`, a function ``(waveforms (batch,
    samples), generator) -> waveforms``: perturbation (:func:`l2i.models.perturb`), then mixing
    (:func:`l2i.models.mix_pairs`), as the recipe asks; ``None`` when it asks for neither.
    Book: chapter "Real recordings"."""
    steps = ([perturb] if recipe.interpreter_augment else []) + (
        [partial(mix_pairs, p=recipe.interpreter_mix)] if recipe.interpreter_mix > 0 else []
    )
    if not steps:
        return None

    def augment(waveforms, generator):
        for step in steps:
            waveforms = step(waveforms, generator)
        return waveforms

    return augment


def train_interpreter(recipe: Recipe, model: MelCNN, nmf: NMF | None = None, seed: int | None = None, progress: bool = True) -> Interpreter:
    """An L2I interpreter of ``model`` trained as the recipe says, not cached: the recipe's
    dictionary unless ``nmf`` is given, the recipe's seed unless ``seed`` is (for studies over
    training seeds). Trained on the GPU when there is one and returned on the CPU; ``model`` is put
    back on the device it came from."""
    seed = recipe.seed if seed is None else int(seed)
    data = datasets(recipe)
    nmf = dictionary(recipe, progress) if nmf is None else nmf
    home = next(model.parameters()).device
    model.to(default_device())  # the interpreter follows its classifier
    torch.manual_seed(seed)
    interp = Interpreter(model, list(recipe.layers), nmf, classes=tuple(data["train"].classes))
    interp.fit(
        data["train"], data["val"], epochs=recipe.interpreter_epochs, lr=recipe.interpreter_lr,
        lam_rec=recipe.lam_rec, lam_in=recipe.lam_in, lam_out=recipe.lam_out, domain=recipe.fidelity_domain,
        augment=interpreter_augment(recipe), temperature=recipe.interpreter_temperature,
        seed=seed, progress=progress,
    )
    model.to(home)
    interp.cpu()
    return interp


def interpreter(recipe: Recipe, model: MelCNN | None = None, progress: bool = True) -> Interpreter:
    """The L2I interpreter of the recipe's classifier (cached; trains what is missing)."""
    if model is None:
        model, _ = classifier(recipe, progress)
    path = _path(recipe, "interpreter")
    if path.is_file():
        return Interpreter.load(path, model)
    interp = train_interpreter(recipe, model, progress=progress)
    interp.save(path)
    return interp


def lmac(recipe: Recipe, model: MelCNN | None = None, progress: bool = True) -> LMAC:
    """L-MAC's decoder for the recipe's classifier, on the interpreter's layers (cached; trains
    what is missing, on the GPU when there is one). Book: chapter "The crying baby and the dog"."""
    if model is None:
        model, _ = classifier(recipe, progress)
    data = datasets(recipe)
    path = _path(recipe, "lmac")
    if path.is_file():
        return LMAC.load(path, model)
    home = next(model.parameters()).device
    model.to(default_device())
    torch.manual_seed(recipe.seed)
    decoder = LMAC(model, list(recipe.layers), spectrogram(recipe), classes=tuple(data["train"].classes))
    decoder.fit(data["train"], data["val"], epochs=recipe.lmac_epochs, lr=recipe.lmac_lr,
                augment=partial(mix_pairs, p=recipe.interpreter_mix) if recipe.interpreter_mix > 0 else None,
                seed=recipe.seed, progress=progress)
    model.to(home)
    decoder.cpu()
    decoder.save(path)
    return decoder
