"""The book's recipes: every setting that determines a model the book trains, in one place.

Book: every chapter from "Training the classifier" on. A :class:`Recipe` names everything that
determines an artifact: data, sizes, epochs, loss weights, seed; each field says which stage it
determines (``metadata["stage"]``: data, dictionary, classifier, interpreter, lmac, or all), so
the cache key of :mod:`l2i.book.artifacts` follows every field, one added later included. The
knobs for scaling up (more components, more epochs, a GPU) are these fields. What was measured to
choose each value is in ``benchmarks/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from ..explanation import check_domain

__all__ = ["Recipe", "STAGES", "SCENES", "DIGITS", "ESC10", "ESC50_CPU", "ESC50_PAPER"]

# What each stage's artifact depends on, beside its own fields and the seed.
STAGES = {"data": (), "dictionary": ("data",), "classifier": ("data",), "interpreter": ("data", "dictionary", "classifier"),
          "lmac": ("data", "dictionary", "classifier", "interpreter")}


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

    dataset: str = field(default="scenes", metadata={"stage": "data"})
    n_per_class: int = field(default=100, metadata={"stage": "data"})
    sample_rate: int = field(default=8000, metadata={"stage": "data"})
    duration: float = field(default=1.0, metadata={"stage": "data"})
    n_fft: int = field(default=256, metadata={"stage": "dictionary"})
    hop_length: int = field(default=64, metadata={"stage": "dictionary"})
    n_components: int = field(default=32, metadata={"stage": "dictionary"})
    nmf_iter: int = field(default=200, metadata={"stage": "dictionary"})
    sparsity: float = field(default=0.0, metadata={"stage": "dictionary"})
    classifier_width: int = field(default=16, metadata={"stage": "classifier"})
    classifier_epochs: int = field(default=10, metadata={"stage": "classifier"})
    classifier_n_mels: int = field(default=64, metadata={"stage": "classifier"})
    classifier_hop_length: int | None = field(default=None, metadata={"stage": "classifier"})
    classifier_time_mask: bool = field(default=False, metadata={"stage": "classifier"})
    layers: tuple[str, ...] = field(default=("block1", "block2", "block3", "block4"), metadata={"stage": "interpreter"})
    interpreter_epochs: int = field(default=20, metadata={"stage": "interpreter"})
    interpreter_lr: float = field(default=1e-3, metadata={"stage": "interpreter"})
    # The original weights the reconstruction by 5 for 44.1 kHz ESC-50 spectrograms; these 8 kHz
    # spectrograms are sparser and smaller, and at 5 the activations describe them poorly.
    lam_rec: float = field(default=50.0, metadata={"stage": "interpreter"})
    lam_in: float = field(default=0.0, metadata={"stage": "interpreter"})
    lam_out: float = field(default=0.0, metadata={"stage": "interpreter"})
    fidelity_domain: str = field(default="log1p", metadata={"stage": "interpreter"})
    interpreter_augment: bool = field(default=False, metadata={"stage": "interpreter"})
    interpreter_mix: float = field(default=0.0, metadata={"stage": "interpreter"})
    interpreter_temperature: float = field(default=1.0, metadata={"stage": "interpreter"})
    lmac_epochs: int = field(default=20, metadata={"stage": "lmac"})
    lmac_lr: float = field(default=1e-3, metadata={"stage": "lmac"})
    seed: int = field(default=0, metadata={"stage": "all"})

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

    def fields_of(self, stage: str) -> dict:
        """The settings an artifact of ``stage`` depends on: its own fields, those of the stages it
        builds on (:data:`STAGES`) and the seed."""
        wanted = {stage, *STAGES[stage], "all"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["stage"] in wanted}


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
