"""The book's trained artifacts (dictionary, classifier, interpreter), cached under content keys.

Book: every chapter from "Training the classifier" on. A :class:`Recipe` names everything that
determines an artifact: data, sizes, epochs, loss weights, seed. Each artifact is stored under
``cache_dir()/artifacts/<stage>-<key>`` where the key hashes the recipe fields that stage depends
on (and the stages before it), the l2i version and a hash of its source code (without docstrings
and comments, which change no number), so chapters share what one of them trained, a changed
setting or changed code never reuses a stale artifact, and an empty cache is rebuilt on demand.

The knobs for scaling up (more components, more epochs, a GPU) are the fields of :class:`Recipe`.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import torch

from . import __version__
from .audio import Spectrogram
from .datasets import ESC50, FSDD, SyntheticScenes
from .downloads import cache_dir
from .explanation import check_domain
from .interpreter import Interpreter
from .lmac import LMAC
from .models import MelCNN, TrainingHistory, mix_pairs, perturb, train_classifier
from .nmf import NMF, FrameBlocks
from .persistence import save_torch

__all__ = ["Recipe", "SCENES", "DIGITS", "ESC10", "ESC50_CPU", "ESC50_PAPER", "datasets", "spectrogram", "dictionary", "new_classifier", "classifier", "interpreter", "interpreter_augment", "train_interpreter", "lmac"]


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the book's artifacts for one dataset.

    Parameters
    ----------
    dataset : {"scenes", "fsdd", "esc10", "esc50"}
    n_per_class : int
        Synthetic clips per class in the training split (validation and test get a quarter).
    sample_rate, duration : int, float
        Every clip resampled to ``sample_rate`` and cut or padded to ``duration`` seconds (8 kHz
        and 1 s for the scenes and FSDD; 44.1 kHz and 5 s for ESC-50).
    n_fft, hop_length : int
        The interpreter's spectrogram ``X``.
    n_components, nmf_iter, sparsity : NMF dictionary settings.
    classifier_width, classifier_epochs : the reference CNN.
    classifier_n_mels, classifier_hop_length : its mel front end: bands, and samples between frames
        (``None``: :class:`l2i.models.MelCNN`'s default, a quarter of its window).
    classifier_time_mask : bool
        Train it with SpecAugment's time mask too (:class:`l2i.models.MelCNN`'s ``time_mask``).
    layers : names of the classifier layers the interpreter reads.
    interpreter_epochs, interpreter_lr, lam_rec, lam_in, lam_out : interpreter training (``lam_in``
        > 0 adds the input-fidelity term, ``lam_out`` > 0 the output term; see
        :meth:`l2i.Interpreter.fit`).
    fidelity_domain : {"log1p", "magnitude"}
        Where those terms apply the mask when they render the interpretation.
    interpreter_augment : bool
        Train the interpreter on clips perturbed as the classifier's were
        (:func:`l2i.models.perturb`), so it mimics the classifier on unseen speakers too.
    interpreter_mix : float
        Share of the training clips mixed with another clip of the batch
        (:func:`l2i.models.mix_pairs`, after ``interpreter_augment``'s perturbation), so the
        interpreter has seen mixtures before it is asked to take them apart.
    lmac_epochs, lmac_lr : int, float
        L-MAC's decoder (:class:`l2i.lmac.LMAC`), trained on the same layers, with the same share of
        mixed clips (``interpreter_mix``).
    interpreter_temperature : float
        Temperature of the fidelity term (:meth:`l2i.Interpreter.fit`'s ``temperature``): 1 is the
        original loss; above 1 the interpreter learns how the classifier ranks every class.
    seed : int
    """

    dataset: str = "scenes"
    n_per_class: int = 100
    sample_rate: int = 8000
    duration: float = 1.0
    n_fft: int = 256
    hop_length: int = 64
    n_components: int = 32
    nmf_iter: int = 200
    sparsity: float = 0.0
    classifier_width: int = 16
    classifier_epochs: int = 10
    classifier_n_mels: int = 64
    classifier_hop_length: int | None = None
    classifier_time_mask: bool = False
    layers: tuple[str, ...] = ("block1", "block2", "block3", "block4")
    interpreter_epochs: int = 20
    interpreter_lr: float = 1e-3
    # The original weights the reconstruction by 5 for 44.1 kHz ESC-50 spectrograms; these 8 kHz
    # spectrograms are sparser and smaller, and at 5 the activations describe them poorly.
    lam_rec: float = 50.0
    lam_in: float = 0.0
    lam_out: float = 0.0
    fidelity_domain: str = "log1p"
    interpreter_augment: bool = False
    interpreter_mix: float = 0.0
    interpreter_temperature: float = 1.0
    lmac_epochs: int = 20
    lmac_lr: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in ("scenes", "fsdd", "esc10", "esc50"):
            raise ValueError(f"dataset must be 'scenes', 'fsdd', 'esc10' or 'esc50', got {self.dataset!r}")
        if self.dataset in ("scenes", "fsdd") and (self.sample_rate, self.duration) != (8000, 1.0):
            raise ValueError(f"the {self.dataset} recipes are 8 kHz, 1 s clips; got {self.sample_rate} Hz, {self.duration} s")
        check_domain(self.fidelity_domain)
        if self.classifier_n_mels < 1 or (self.classifier_hop_length is not None and self.classifier_hop_length < 1):
            raise ValueError(
                "classifier_n_mels and classifier_hop_length count mel bands and samples, 1 or more "
                f"(classifier_hop_length None for MelCNN's default); got {self.classifier_n_mels} and {self.classifier_hop_length}"
            )
        if self.lam_in < 0 or self.lam_out < 0:
            raise ValueError(f"lam_in and lam_out are weights, 0 or more; got {self.lam_in} and {self.lam_out}")
        if not 0.0 <= self.interpreter_mix <= 1.0:
            raise ValueError(f"interpreter_mix is a share of the training clips, between 0 and 1; got {self.interpreter_mix}")
        if not self.interpreter_temperature > 0:
            raise ValueError(f"interpreter_temperature divides the logits of the fidelity term: give a number above 0, got {self.interpreter_temperature}")

    def with_(self, **changes) -> Recipe:
        return replace(self, **changes)


# Each choice below was made on validation data; what was measured: benchmarks/README.md.
SCENES = Recipe("scenes", interpreter_mix=0.3)
# The FSDD test speaker (george) is unseen and was never used to choose: the classifier and the
# interpreter were chosen on the training speakers held out in turn (benchmarks/README.md).
DIGITS = Recipe(
    "fsdd", classifier_width=32, classifier_n_mels=40, classifier_hop_length=128, classifier_epochs=25, classifier_time_mask=True,
    interpreter_epochs=25, interpreter_augment=True,
)
# ESC-10's real recordings (chapter "The crying baby and the dog") at 16 kHz, the rate SpeechBrain's
# ESC-50 recipes use: 32 ms frames every 16 ms, K = 64; a classifier trained from scratch on folds
# 1-3 (no pretrained weights can be downloaded), selected on fold 4. The reconstruction weight is
# the original's 5 (chosen on fold 4: benchmarks/README.md).
ESC10 = Recipe(
    "esc10", sample_rate=16000, duration=5.0, n_fft=512, hop_length=256, n_components=64,
    classifier_width=16, classifier_epochs=30, classifier_hop_length=256, classifier_time_mask=True,
    interpreter_epochs=20, interpreter_mix=0.3, lam_rec=5.0,
)
# ESC-50's 50 classes on the CPU, for the benchmark: ESC-10's recipe with the paper's K = 100.
ESC50_CPU = ESC10.with_(dataset="esc50", n_components=100)
# The paper's setting on ESC-50 (chapter "ESC-50 on a GPU"): 44.1 kHz, 5 s, n_fft 1024, hop 512,
# K = 100, lam_rec 5, Adam 2e-4, 35 epochs. The classifier is the book's CNN trained from scratch,
# not the paper's pretrained one.
ESC50_PAPER = Recipe(
    "esc50", sample_rate=44100, duration=5.0, n_fft=1024, hop_length=512, n_components=100, nmf_iter=300,
    classifier_width=32, classifier_epochs=60, interpreter_epochs=35, interpreter_lr=2e-4, lam_rec=5.0,
)

_STAGES = {
    "data": ("dataset", "n_per_class", "sample_rate", "duration"),
    "dictionary": ("n_fft", "hop_length", "n_components", "nmf_iter", "sparsity", "seed"),
    "classifier": ("classifier_width", "classifier_epochs", "classifier_n_mels", "classifier_hop_length", "classifier_time_mask", "seed"),
    "interpreter": ("layers", "interpreter_epochs", "interpreter_lr", "lam_rec", "lam_in", "lam_out", "fidelity_domain", "interpreter_augment", "interpreter_mix", "interpreter_temperature", "seed"),
    "lmac": ("layers", "n_fft", "hop_length", "lmac_epochs", "lmac_lr", "interpreter_mix", "seed"),
}
_DEPENDS = {"dictionary": ("data",), "classifier": ("data",), "interpreter": ("data", "dictionary", "classifier"),
            "lmac": ("data", "classifier")}


# The modules that decide what training produces. Evaluation, baselines, plots and widgets are left
# out on purpose: changing how an artifact is measured or shown does not make it stale.
# downloads is counted with training: how an archive is unpacked decides which files are read.
_TRAINING_MODULES = (
    "__init__", "artifacts", "audio", "datasets", "downloads", "explanation", "interpreter", "models",
    "lmac", "networks", "nmf", "persistence", "reading", "scenes",
)
_MEASUREMENT_MODULES = ("baselines", "metrics", "plotting", "widgets")


def _code_version() -> str:
    """Hash of the training code: an artifact made by other code is never reused."""
    digest = hashlib.sha256()
    for name in _TRAINING_MODULES:
        path = Path(__file__).parent / f"{name}.py"
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
    fields = asdict(recipe)
    parts = {"l2i": __version__, "code": _code_version(), "stage": stage}
    for s in _DEPENDS.get(stage, ()) + (stage,):
        parts.update({k: fields[k] for k in _STAGES[s]})
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
    nmf.fit(FrameBlocks(datasets(recipe)["train"], spec), spectrogram=spec.config())
    nmf.save(path)
    return nmf


def new_classifier(recipe: Recipe, n_classes: int) -> MelCNN:
    """An untrained :class:`MelCNN` as the recipe describes it (width and mel front end)."""
    return MelCNN(
        n_classes, sample_rate=recipe.sample_rate, width=recipe.classifier_width,
        n_mels=recipe.classifier_n_mels, hop_length=recipe.classifier_hop_length, time_mask=recipe.classifier_time_mask,
    )


def classifier(recipe: Recipe, progress: bool = True) -> tuple[MelCNN, TrainingHistory]:
    """The reference CNN trained on the training split, selected on validation (cached)."""
    data = datasets(recipe)
    torch.manual_seed(recipe.seed)  # the same weights whichever chapter trains it first
    model = new_classifier(recipe, len(data["train"].classes))
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
    model.to("cuda" if torch.cuda.is_available() else "cpu")  # the interpreter follows its classifier
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
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(recipe.seed)
    decoder = LMAC(model, list(recipe.layers), spectrogram(recipe), classes=tuple(data["train"].classes))
    decoder.fit(data["train"], data["val"], epochs=recipe.lmac_epochs, lr=recipe.lmac_lr,
                augment=partial(mix_pairs, p=recipe.interpreter_mix) if recipe.interpreter_mix > 0 else None,
                seed=recipe.seed, progress=progress)
    model.to(home)
    decoder.cpu()
    decoder.save(path)
    return decoder
