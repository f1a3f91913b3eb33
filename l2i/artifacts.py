"""The book's trained artifacts (dictionary, classifier, interpreter), cached under content keys.

Book: every chapter from "Training the classifier" on. A :class:`Recipe` names everything that
determines an artifact: data, sizes, epochs, loss weights, seed. Each artifact is stored under
``cache_dir()/artifacts/<stage>-<key>`` where the key hashes the recipe fields that stage depends
on (and the stages before it), the l2i version and a hash of its source code, so chapters share
what one of them trained, a changed setting or changed code never reuses a stale artifact, and an
empty cache is rebuilt on demand.

The knobs for scaling up (more components, more epochs, a GPU) are the fields of :class:`Recipe`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from . import __version__
from .audio import Spectrogram
from .datasets import FSDD, SyntheticScenes, cache_dir
from .interpreter import Interpreter
from .models import MelCNN, TrainingHistory, train_classifier
from .nmf import NMF, FrameBlocks
from .persistence import save_torch

__all__ = ["Recipe", "SCENES", "DIGITS", "datasets", "spectrogram", "dictionary", "classifier", "interpreter"]


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the book's artifacts for one dataset.

    Parameters
    ----------
    dataset : {"scenes", "fsdd"}
    n_per_class : int
        Synthetic clips per class in the training split (validation and test get a quarter).
    n_fft, hop_length : int
        The interpreter's spectrogram ``X`` (8 kHz for both datasets).
    n_components, nmf_iter, sparsity : NMF dictionary settings.
    classifier_width, classifier_epochs : the reference CNN.
    layers : names of the classifier layers the interpreter reads.
    interpreter_epochs, interpreter_lr, lam_rec, lam_in : interpreter training (``lam_in`` > 0
        adds the input-fidelity term).
    seed : int
    """

    dataset: str = "scenes"
    n_per_class: int = 100
    n_fft: int = 256
    hop_length: int = 64
    n_components: int = 32
    nmf_iter: int = 200
    sparsity: float = 0.0
    classifier_width: int = 16
    classifier_epochs: int = 10
    layers: tuple[str, ...] = ("block1", "block2", "block3", "block4")
    interpreter_epochs: int = 20
    interpreter_lr: float = 1e-3
    # The original weights the reconstruction by 5 for 44.1 kHz ESC-50 spectrograms; these 8 kHz
    # spectrograms are sparser and smaller, and at 5 the activations describe them poorly
    # (relative reconstruction error 0.48 against 0.42 at 50, on the scenes, validation split).
    lam_rec: float = 50.0
    lam_in: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in ("scenes", "fsdd"):
            raise ValueError(f"dataset must be 'scenes' or 'fsdd', got {self.dataset!r}")

    def with_(self, **changes) -> Recipe:
        return replace(self, **changes)


SCENES = Recipe("scenes")
DIGITS = Recipe("fsdd", classifier_epochs=25, interpreter_epochs=25)

_STAGES = {
    "data": ("dataset", "n_per_class"),
    "dictionary": ("n_fft", "hop_length", "n_components", "nmf_iter", "sparsity", "seed"),
    "classifier": ("classifier_width", "classifier_epochs", "seed"),
    "interpreter": ("layers", "interpreter_epochs", "interpreter_lr", "lam_rec", "lam_in", "seed"),
}
_DEPENDS = {"dictionary": ("data",), "classifier": ("data",), "interpreter": ("data", "dictionary", "classifier")}


# The modules that decide what training produces. Evaluation, baselines, plots and widgets are left
# out on purpose: changing how an artifact is measured or shown does not make it stale.
_TRAINING_MODULES = (
    "__init__", "artifacts", "audio", "datasets", "explanation", "interpreter", "models", "nmf",
    "persistence", "scenes",
)
_MEASUREMENT_MODULES = ("baselines", "metrics", "plotting", "widgets")


def _code_version() -> str:
    """Hash of the training code: an artifact made by other code is never reused."""
    digest = hashlib.sha256()
    for name in _TRAINING_MODULES:
        path = Path(__file__).parent / f"{name}.py"
        digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _key(recipe: Recipe, stage: str) -> str:
    fields = asdict(recipe)
    parts = {"l2i": __version__, "code": _code_version(), "stage": stage}
    for s in _DEPENDS.get(stage, ()) + (stage,):
        parts.update({k: fields[k] for k in _STAGES[s]})
    blob = json.dumps(parts, sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _path(recipe: Recipe, stage: str) -> Path:
    return cache_dir() / "artifacts" / f"{recipe.dataset}-{stage}-{_key(recipe, stage)}.pt"


def datasets(recipe: Recipe) -> dict:
    """``{"train", "val", "test"}`` datasets of the recipe, every clip one second at 8 kHz."""
    if recipe.dataset == "scenes":
        n = recipe.n_per_class
        return {
            "train": SyntheticScenes("train", n, seed=recipe.seed),
            "val": SyntheticScenes("val", max(1, n // 4), seed=recipe.seed),
            "test": SyntheticScenes("test", max(1, n // 4), seed=recipe.seed),
        }
    return {split: FSDD(split, duration=1.0) for split in ("train", "val", "test")}


def spectrogram(recipe: Recipe) -> Spectrogram:
    return Spectrogram(8000, recipe.n_fft, recipe.hop_length)


def dictionary(recipe: Recipe, progress: bool = True) -> NMF:
    """The NMF dictionary learnt on the training split (cached)."""
    path = _path(recipe, "dictionary")
    if path.is_file():
        return NMF.load(path)
    spec = spectrogram(recipe)
    nmf = NMF(recipe.n_components, n_iter=recipe.nmf_iter, sparsity=recipe.sparsity, seed=recipe.seed, progress=progress)
    nmf.fit(FrameBlocks(datasets(recipe)["train"], spec), spectrogram=spec.config())
    nmf.save(path)
    return nmf


def classifier(recipe: Recipe, progress: bool = True) -> tuple[MelCNN, TrainingHistory]:
    """The reference CNN trained on the training split, selected on validation (cached)."""
    data = datasets(recipe)
    torch.manual_seed(recipe.seed)  # the same weights whichever chapter trains it first
    model = MelCNN(len(data["train"].classes), sample_rate=8000, width=recipe.classifier_width)
    path = _path(recipe, "classifier")
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["state_dict"])
        model.eval()
        return model, TrainingHistory(**saved["history"])
    history = train_classifier(
        model, data["train"], data["val"], epochs=recipe.classifier_epochs, seed=recipe.seed, progress=progress
    )
    model.cpu()
    save_torch({"state_dict": model.state_dict(), "history": history.__dict__}, path)
    return model, history


def interpreter(recipe: Recipe, model: MelCNN | None = None, progress: bool = True) -> Interpreter:
    """The L2I interpreter of the recipe's classifier (cached; trains what is missing)."""
    if model is None:
        model, _ = classifier(recipe, progress)
    path = _path(recipe, "interpreter")
    if path.is_file():
        return Interpreter.load(path, model)
    data = datasets(recipe)
    nmf = dictionary(recipe, progress)
    torch.manual_seed(recipe.seed)
    interp = Interpreter(model, list(recipe.layers), nmf, classes=tuple(data["train"].classes))
    interp.fit(
        data["train"], data["val"], epochs=recipe.interpreter_epochs, lr=recipe.interpreter_lr,
        lam_rec=recipe.lam_rec, lam_in=recipe.lam_in, seed=recipe.seed, progress=progress,
    )
    interp.save(path)
    return interp
