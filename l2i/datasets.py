"""Datasets: synthetic sound scenes, FSDD spoken digits, ESC-50, and your own folders.

Book: chapter "Listening to the data".

Every dataset is a ``torch.utils.data.Dataset`` whose items are :class:`Example` tuples
``(waveform, sample_rate, label, sources, source_labels)``; ``waveform`` is ``(samples,)`` float32
and ``sources`` is ``(n_sources, samples)`` where the clean sources are known (mixtures), else
``None``. :func:`collate` batches them for a ``DataLoader``.

Downloads and extracted archives live in the cache directory, ``$L2I_CACHE`` or ``~/.cache/l2i``
(:mod:`l2i.downloads`); they are written to a temporary name and moved into place only when
complete, and nothing is ever written into a folder that is read from.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from . import scenes
from .audio import fit_length, load, mix_at_snr, peak_gain, scale_to_snr
from .downloads import cache_dir, download, install_from_archive

__all__ = [
    "Example",
    "Batch",
    "collate",
    "SyntheticScenes",
    "NoisyClips",
    "NOISE",
    "evaluation_sets",
    "Mixtures",
    "ClassSubset",
    "FSDD",
    "ESC50",
    "AudioFolder",
    "AudioFiles",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.zip"
ESC50_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"


class Example(NamedTuple):
    """One clip: ``waveform`` (samples,), its rate, its class, and its sources where known."""

    waveform: Tensor
    sample_rate: int
    label: int | Tensor  # a class, or a multi-hot (classes,) vector for multi-label data
    sources: Tensor | None = None
    source_labels: tuple[int, ...] = ()


class Batch(NamedTuple):
    """Examples collated: ``waveforms`` (batch, samples) zero-padded, ``lengths`` (batch,),
    ``labels`` (batch,), ``sources`` (batch, n_sources, samples) and ``source_labels``
    (batch, n_sources), or None where the clips are not mixtures."""

    waveforms: Tensor
    lengths: Tensor
    sample_rate: int
    labels: Tensor
    sources: Tensor | None
    source_labels: Tensor | None = None


def collate(examples: Sequence[Example]) -> Batch:
    """Batch :class:`Example` items of equal rate, zero-padding to the longest clip."""
    rates = {e.sample_rate for e in examples}
    if len(rates) != 1:
        raise ValueError(f"cannot batch clips at different sample rates {sorted(rates)}: resample them first")
    n = max(e.waveform.shape[-1] for e in examples)
    waveforms = torch.stack([fit_length(e.waveform, n) for e in examples])
    lengths = torch.tensor([e.waveform.shape[-1] for e in examples])
    labels = (torch.stack([e.label for e in examples]) if isinstance(examples[0].label, Tensor)
              else torch.tensor([e.label for e in examples]))
    sources, source_labels = None, None
    if all(e.sources is not None for e in examples) and len({e.sources.shape[0] for e in examples}) == 1:
        sources = torch.stack([fit_length(e.sources, n) for e in examples])
        source_labels = torch.tensor([list(e.source_labels) for e in examples])
    return Batch(waveforms, lengths, rates.pop(), labels, sources, source_labels)


# Clips kept in memory per dataset, at most this many bytes (ESC-50's 1,200 training clips at
# 16 kHz: 384 MiB; 8 kHz, 1 s clips: 32,000 of them).
MEMO_BYTES = 1024 * 2**20


class _ClipMemo:
    """Clips already rendered or read, kept up to ``MEMO_BYTES``. Training reads every clip once
    per epoch, and rendering a synthetic clip (filter design, oscillators) costs as much as the
    training step that reads it; a kept clip's waveform is handed out as a copy, so changing it
    in place changes nothing here."""

    def __init__(self, budget: int = MEMO_BYTES):
        self.budget, self.used = int(budget), 0
        self.examples: dict[int, Example] = {}

    def get(self, index: int, make: Callable[[int], Example]) -> Example:
        example = self.examples.get(index)
        if example is None:
            example = make(index)
            if self.used + example.waveform.nbytes <= self.budget:
                self.examples[index] = example
                self.used += example.waveform.nbytes
        return example._replace(waveform=example.waveform.clone())


# ---------------------------------------------------------------------------------------- synthetic
class SyntheticScenes(Dataset):
    """Synthetic environmental sounds of eight classes, generated on demand, deterministic by seed.

    Each clip is one sound event of its class (random parameters, gain and onset) over a faint noise
    floor. Book: chapter "Listening to the data"; the generators are in :mod:`l2i.scenes`.

    Parameters
    ----------
    split : {"train", "val", "test"}
        Clips of different splits come from different seeds.
    n_per_class : int
        Clips per class (labels cycle through the classes).
    sample_rate : int
        Sample rate in Hz.
    duration : float
        Clip length in seconds.
    seed : int
        Base seed.
    """

    classes = scenes.CLASSES
    _SPLITS = {"train": 0, "val": 1, "test": 2}

    def __init__(
        self,
        split: str = "train",
        n_per_class: int = 100,
        sample_rate: int = 8000,
        duration: float = 1.0,
        seed: int = 0,
    ):
        if split not in self._SPLITS:
            raise ValueError(f"split must be one of {list(self._SPLITS)}, got {split!r}")
        if n_per_class < 1:
            raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
        if sample_rate < 4000:
            raise ValueError(f"sample_rate must be at least 4000 Hz for these sounds, got {sample_rate}")
        self.split, self.n_per_class = split, int(n_per_class)
        self.sample_rate, self.duration, self.seed = int(sample_rate), float(duration), int(seed)
        self.n_samples = int(round(self.duration * self.sample_rate))
        self._memo = _ClipMemo()

    def __len__(self) -> int:
        return self.n_per_class * len(self.classes)

    def info(self, index: int) -> dict:
        return {"label": index % len(self.classes), "class": self.classes[index % len(self.classes)]}

    def __getitem__(self, index: int) -> Example:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        return self._memo.get(index, self._render)

    def _render(self, index: int) -> Example:
        label = index % len(self.classes)
        rng = np.random.default_rng([self.seed, self._SPLITS[self.split], index])
        event = scenes.render(label, self.n_samples, self.sample_rate, rng)
        event *= 10 ** (rng.uniform(-10, -2) / 20)  # peak between -10 and -2 dBFS
        floor = np.cumsum(rng.standard_normal(self.n_samples)) * 0.02  # brownish
        floor = (floor - floor.mean()) + rng.standard_normal(self.n_samples)
        floor *= np.sqrt(np.mean(event**2) / np.mean(floor**2)) * 10 ** (-rng.uniform(25, 40) / 20)
        return Example(torch.from_numpy(event + floor).float(), self.sample_rate, label)


class Mixtures(Dataset):
    """Mixtures of two clips of another dataset, keeping both sources.

    Book: chapter "Listening to the data". Pairs are drawn once from ``seed``; the two clips differ in
    every key of ``distinct`` (from the base dataset's ``info``), e.g. ``("label",)`` or
    ``("label", "speaker")``. The mixture is ``s1 + g s2`` with ``g`` set by ``snr_db`` (the SNR of
    the first source), or ``w1 s1/||s1|| + w2 s2/||s2||`` with ``weights``; everything is scaled
    together to peak at most 0.9, so ``sources.sum(0) == waveform``.

    Items: ``label`` is the first source's class, ``source_labels`` both classes; with
    ``multilabel``, ``label`` is a multi-hot ``(classes,)`` vector of both (for a multi-label
    classifier, :func:`l2i.models.train_classifier` with ``multilabel=True``).
    """

    def __init__(
        self,
        base: Dataset,
        n_mixtures: int = 100,
        snr_db: float = 0.0,
        weights: tuple[float, float] | None = None,
        distinct: tuple[str, ...] = ("label",),
        seed: int = 0,
        multilabel: bool = False,
    ):
        if len(base) < 2:
            raise ValueError("a mixture needs a base dataset of at least two clips")
        self.multilabel = bool(multilabel)
        if self.multilabel and getattr(base, "classes", None) is None:
            raise ValueError("multilabel mixtures need a base dataset with class names (classes)")
        self.base, self.snr_db, self.weights = base, float(snr_db), weights
        self.sample_rate = base.sample_rate
        self.classes = getattr(base, "classes", None)
        rng = np.random.default_rng(seed)
        infos = [base.info(i) for i in range(len(base))]
        self.pairs: list[tuple[int, int]] = []
        for _ in range(n_mixtures):
            for _attempt in range(1000):
                i, j = (int(v) for v in rng.choice(len(base), 2, replace=False))
                if all(infos[i][k] != infos[j][k] for k in distinct):
                    self.pairs.append((i, j))
                    break
            else:
                raise ValueError(f"no two clips of the base dataset differ in {distinct}")

    def __len__(self) -> int:
        return len(self.pairs)

    def info(self, index: int) -> dict:
        i, j = self.pairs[index]
        a, b = self.base.info(i), self.base.info(j)
        return {"label": a["label"], "source_labels": (a["label"], b["label"]), "indices": (i, j)}

    def __getitem__(self, index: int) -> Example:
        i, j = self.pairs[index]
        first, second = self.base[i], self.base[j]
        s1 = first.waveform
        s2 = fit_length(second.waveform, s1.shape[-1])
        if self.weights is not None:
            w1, w2 = self.weights
            s1, s2 = w1 * s1 / s1.norm(), w2 * s2 / s2.norm()
        else:
            s2 = mix_at_snr(s1, s2, self.snr_db) - s1
        sources = torch.stack([s1, s2])
        sources = sources * peak_gain(sources.sum(0), always=self.weights is not None)
        label = first.label
        if self.multilabel:
            label = torch.zeros(len(self.classes))
            label[[first.label, second.label]] = 1.0
        return Example(sources.sum(0), self.sample_rate, label, sources, (first.label, second.label))


NOISE = -1
"""The ``source_labels`` entry of a source that is noise, not a class (see :class:`NoisyClips`)."""


class ClassSubset(Dataset):
    """The clips of ``base`` whose class is one of ``classes`` (names), labels unchanged: e.g. the
    crying babies and dogs of ESC-10's test fold, to mix with :class:`Mixtures`.

    Book: chapter "The crying baby and the dog"."""

    def __init__(self, base: Dataset, classes: tuple[str, ...]):
        names = getattr(base, "classes", None)
        if names is None:
            raise ValueError("the base dataset has no class names (classes)")
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise ValueError(f"classes {unknown} are not in the dataset; it has: {', '.join(names)}")
        wanted = {names.index(c) for c in classes}
        self.base, self.classes, self.sample_rate = base, names, base.sample_rate
        self.indices = [i for i in range(len(base)) if base.info(i)["label"] in wanted]

    def __len__(self) -> int:
        return len(self.indices)

    def info(self, index: int) -> dict:
        return self.base.info(self.indices[index])

    def __getitem__(self, index: int) -> Example:
        return self.base[self.indices[index]]


class NoisyClips(Dataset):
    """Clips of another dataset with white noise added at an SNR, keeping both as sources.

    Book: chapter "Evaluating interpretations" (the 0 dB white-noise setting of later L2I papers).
    The noise of item ``i`` is drawn from ``seed`` and ``i``, so the dataset is the same at every
    read. Items: ``sources`` (clip, noise), ``source_labels`` (label, :data:`NOISE`); scaled
    together to peak at most 0.9 so that ``sources.sum(0) == waveform``.
    """

    def __init__(self, base: Dataset, snr_db: float = 0.0, n_clips: int | None = None, seed: int = 0):
        if len(base) < 1:
            raise ValueError("the base dataset is empty")
        self.base, self.snr_db, self.seed = base, float(snr_db), int(seed)
        self.n = len(base) if n_clips is None else min(int(n_clips), len(base))
        self.sample_rate = base.sample_rate
        self.classes = getattr(base, "classes", None)

    def __len__(self) -> int:
        return self.n

    def info(self, index: int) -> dict:
        label = self.base.info(index)["label"] if hasattr(self.base, "info") else self.base[index].label
        return {"label": label, "source_labels": (label, NOISE), "indices": (index,)}

    def __getitem__(self, index: int) -> Example:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} clips")
        clip = self.base[index]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        noise = torch.randn(clip.waveform.shape, generator=generator, dtype=clip.waveform.dtype)
        if float(clip.waveform.abs().max()) == 0:
            raise ValueError(f"clip {index} is silent: an SNR is not defined for it")
        sources = torch.stack([clip.waveform, scale_to_snr(clip.waveform, noise, self.snr_db)])
        sources = sources * peak_gain(sources.sum(0))
        return Example(sources.sum(0), self.sample_rate, clip.label, sources, (clip.label, NOISE))


def evaluation_sets(
    data: Dataset, n: int = 40, distinct: tuple[str, ...] = ("label",), seed: int = 1
) -> dict[str, Dataset]:
    """The held-out sets every method is compared on, drawn from ``data`` (a test split).

    Book: chapter "Evaluating interpretations" (and ``benchmarks/interpretation.py``). ``n`` items
    each: ``"clips"`` (the first ``n``), ``"mix 0 dB"`` (two clips differing in ``distinct``, 0 dB),
    ``"mix 0.8/0.2"`` (``0.8 s1/||s1|| + 0.2 s2/||s2||``, the ESC-50 setting of later papers) and
    ``"noise 0 dB"`` (white noise at 0 dB).
    """
    from torch.utils.data import Subset

    return {
        "clips": Subset(data, range(min(n, len(data)))),
        "mix 0 dB": Mixtures(data, n_mixtures=n, snr_db=0.0, distinct=distinct, seed=seed),
        "mix 0.8/0.2": Mixtures(data, n_mixtures=n, weights=(0.8, 0.2), distinct=distinct, seed=seed + 1),
        "noise 0 dB": NoisyClips(data, snr_db=0.0, n_clips=n, seed=seed + 2),
    }


# ---------------------------------------------------------------------------------------- files
class _FileDataset(Dataset):
    """Shared behaviour of datasets read from audio files: loading, resampling, fixed length."""

    def __init__(self, files: list[Path], labels: list[int], sample_rate: int | None, duration: float | None):
        self.files, self.labels = files, labels
        self.duration = duration
        self.sample_rate = sample_rate if sample_rate is not None else self._probe_rate()
        self._memo = _ClipMemo()

    def _probe_rate(self) -> int:
        import soundfile as sf

        if not self.files:
            raise ValueError("the dataset has no audio files")
        return int(sf.info(str(self.files[0])).samplerate)

    def _check_one_rate(self) -> None:
        import soundfile as sf

        rates = {int(sf.info(str(f)).samplerate) for f in self.files}
        if len(rates) > 1:
            raise ValueError(f"{self.root} mixes sample rates {sorted(rates)}: pass sample_rate=...")

    def __len__(self) -> int:
        return len(self.files)

    def info(self, index: int) -> dict:
        return {"label": self.labels[index], "path": str(self.files[index])}

    def __getitem__(self, index: int) -> Example:
        return self._memo.get(index, self._read)

    def _read(self, index: int) -> Example:
        waveform, rate = load(self.files[index], self.sample_rate)
        if self.duration is not None:
            waveform = fit_length(waveform, int(round(self.duration * rate)))
        return Example(waveform, rate, self.labels[index])


class FSDD(_FileDataset):
    """Free Spoken Digit Dataset: spoken digits 0-9, 8 kHz, split by speaker.

    Book: chapter "Listening to the data". The test split holds the ``test_speakers`` only, so
    they are unseen in training; the validation split is the last ``val_per_digit`` takes of each
    digit by each training speaker.

    Recordings are read from ``root``, else ``$L2I_FSDD`` (the Makefile points it at the project's
    shared copy when there is one), else the cache directory, downloading the public release there
    when ``download=True``. Credit: Jakobovski et al., CC BY-SA 4.0.

    Parameters
    ----------
    split : {"train", "val", "test", "all"}
    sample_rate : int, optional
        Resample to this rate (default: the native 8 kHz).
    duration : float, optional
        Zero-pad or crop every clip to this many seconds (default: native lengths, 0.14-1.31 s).
    """

    classes = tuple(str(d) for d in range(10))
    _NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike | None = None,
        sample_rate: int | None = None,
        duration: float | None = None,
        test_speakers: tuple[str, ...] = ("george",),
        val_per_digit: int = 5,
        download: bool = False,
    ):
        if split not in ("train", "val", "test", "all"):
            raise ValueError(f"split must be 'train', 'val', 'test' or 'all', got {split!r}")
        self.root = self._find_root(root, download)
        entries = []
        for path in sorted(self.root.iterdir()):
            m = self._NAME.match(path.name)
            if m:
                entries.append((int(m[1]), m[2], int(m[3]), path))
        if not entries:
            raise ValueError(f"no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) in {self.root}")
        speakers = sorted({e[1] for e in entries})
        unknown = set(test_speakers) - set(speakers)
        if unknown:
            raise ValueError(f"test_speakers {sorted(unknown)} are not in the data; speakers are {speakers}")
        takes: dict[tuple[int, str], int] = {}
        for digit, speaker, index, _ in entries:
            takes[digit, speaker] = max(takes.get((digit, speaker), -1), index)
        chosen = []
        for digit, speaker, index, path in entries:
            is_test = speaker in test_speakers
            is_val = not is_test and index > takes[digit, speaker] - val_per_digit
            part = "test" if is_test else "val" if is_val else "train"
            if split in ("all", part):
                chosen.append((digit, speaker, index, path))
        self.speakers = [e[1] for e in chosen]
        self.split = split
        super().__init__([e[3] for e in chosen], [e[0] for e in chosen], sample_rate, duration)

    def info(self, index: int) -> dict:
        return {**super().info(index), "speaker": self.speakers[index]}

    @staticmethod
    def _find_root(root, download_ok: bool) -> Path:
        candidates = [Path(root)] if root is not None else []
        if root is None:
            if os.environ.get("L2I_FSDD"):
                candidates.append(Path(os.environ["L2I_FSDD"]))
            candidates.append(cache_dir() / "fsdd" / "recordings")
        for c in candidates:
            if c.is_dir():
                return c
        if root is not None:
            raise ValueError(f"FSDD folder {root} does not exist")
        if not download_ok:
            raise ValueError(
                "FSDD recordings not found (looked in $L2I_FSDD and "
                f"{cache_dir() / 'fsdd'}): pass root=..., or download=True to fetch the public release"
            )
        archive = download(FSDD_URL, cache_dir() / "downloads" / "fsdd-v1.0.10.zip")
        return install_from_archive(
            archive, cache_dir() / "fsdd" / "recordings", lambda staging: next(staging.glob("*/recordings"), None),
            what="FSDD's recordings folder",
        )


class ESC50(_FileDataset):
    """ESC-50: 2,000 five-second environmental recordings in 50 classes, five folds.

    Book: chapters "The crying baby and the dog" and "ESC-50 on a GPU". Read from ``root``, else
    ``$L2I_ESC50``, else the cache directory, where the official archive (44.1 kHz WAV) is
    downloaded and unpacked the first time (checked against ``sha256`` when given, and for
    completeness against ``meta/esc50.csv``). A copy with the official layout whose audio is FLAC
    (``audio/<name>.flac`` for the ``<name>.wav`` of ``meta/esc50.csv``), e.g. resampled to 16 kHz,
    is read as well. Clips are decoded and resampled once and kept in memory.

    Splits follow the folds, as SpeechBrain's ESC-50 recipes use them by default: ``test_fold``
    (5) for testing, ``val_fold`` (4) for validation and model selection, the other three for
    training. Credit: K. J. Piczak, "ESC: Dataset for Environmental Sound Classification", ACM
    Multimedia 2015 (CC BY-NC 3.0).

    Parameters
    ----------
    split : {"train", "val", "test", "all"}
    root : path, optional
        A folder holding ``meta/esc50.csv`` and ``audio/`` (else ``$L2I_ESC50``, else the cache).
    sample_rate : int, optional
        Resample to this rate (default: the files' own, 44.1 kHz for the official release).
    duration : float, optional
        Zero-pad or crop every clip to this many seconds (they are all 5 s).
    test_fold, val_fold : int
        The folds (1-5) held out for testing and for validation.
    esc10 : bool
        Keep only the ESC-10 subset (10 classes, 400 clips), relabelled 0-9.
    url, sha256 : str
        Where the archive comes from and its expected checksum.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike | None = None,
        sample_rate: int | None = None,
        duration: float | None = None,
        test_fold: int = 5,
        val_fold: int = 4,
        esc10: bool = False,
        download: bool = True,
        url: str = ESC50_URL,
        sha256: str | None = None,
    ):
        if split not in ("train", "val", "test", "all"):
            raise ValueError(f"split must be 'train', 'val', 'test' or 'all', got {split!r}")
        if not ({test_fold, val_fold} <= set(range(1, 6))) or test_fold == val_fold:
            raise ValueError(f"test_fold and val_fold must be two different folds in 1-5, got {test_fold}, {val_fold}")
        self.root = self._find_root(root, download, url, sha256)
        rows = self.read_meta(self.root)
        if esc10:
            rows = [r for r in rows if r["esc10"] == "True"]
        targets = sorted({int(r["target"]) for r in rows})
        names = {int(r["target"]): r["category"] for r in rows}
        relabel = {t: i for i, t in enumerate(targets)}
        self.classes = tuple(names[t] for t in targets)
        part = {test_fold: "test", val_fold: "val"}
        keep = [r for r in rows if split == "all" or part.get(int(r["fold"]), "train") == split]
        self.folds = [int(r["fold"]) for r in keep]
        self.split = split
        super().__init__(
            [self.root / "audio" / r["filename"] for r in keep],
            [relabel[int(r["target"])] for r in keep],
            sample_rate,
            duration,
        )

    def info(self, index: int) -> dict:
        return {**super().info(index), "fold": self.folds[index]}

    @staticmethod
    def read_meta(root: Path) -> list[dict]:
        """Rows of ``meta/esc50.csv``, after checking every listed file is there."""
        meta = root / "meta" / "esc50.csv"
        if not meta.is_file():
            raise ValueError(f"{root} is not an ESC-50 folder: {meta} is missing")
        with open(meta, newline="") as f:
            rows = list(csv.DictReader(f))
        need = {"filename", "fold", "target", "category", "esc10"}
        if not rows or not need <= set(rows[0]):
            raise ValueError(f"{meta} is not the ESC-50 metadata (needs columns {sorted(need)})")
        for r in rows:  # the official .wav, or the same name as .flac in a converted copy
            if not (root / "audio" / r["filename"]).is_file():
                flac = Path(r["filename"]).with_suffix(".flac").name
                if (root / "audio" / flac).is_file():
                    r["filename"] = flac
        missing = [r["filename"] for r in rows if not (root / "audio" / r["filename"]).is_file()]
        if missing:
            raise ValueError(
                f"ESC-50 at {root} is incomplete: {len(missing)} listed files are missing "
                f"(first: {missing[0]}); delete the folder and download again"
            )
        return rows

    @classmethod
    def _find_root(cls, root, download_ok: bool, url: str, sha256: str | None) -> Path:
        if root is not None:
            return Path(root)
        if os.environ.get("L2I_ESC50"):
            return Path(os.environ["L2I_ESC50"])
        target = cache_dir() / "esc50"
        if (target / "meta" / "esc50.csv").is_file():
            return target
        if not download_ok:
            raise ValueError(
                f"ESC-50 not found in {target}: pass root=..., set $L2I_ESC50, or download=True"
            )
        archive = download(url, cache_dir() / "downloads" / "ESC-50-master.zip", sha256=sha256)

        def find(staging: Path) -> Path | None:
            inner = next((p.parent.parent for p in staging.glob("*/meta/esc50.csv")), None)
            return staging if inner is None and (staging / "meta" / "esc50.csv").is_file() else inner

        return install_from_archive(  # read_meta: complete before it is put in place
            archive, target, find, what="meta/esc50.csv (it is not the ESC-50 archive)", check=cls.read_meta
        )


class _FolderDataset(_FileDataset):
    """The audio files a subclass finds under one folder (``_find``), at one rate unless resampled;
    parameters as :class:`AudioFiles`."""

    def __init__(self, root: str | os.PathLike, sample_rate: int | None = None, duration: float | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise NotADirectoryError(f"{self.root} is not a folder: give the folder that holds the audio files")
        if duration is not None and not duration > 0:
            raise ValueError(f"duration is in seconds and must be above 0, got {duration}")
        files, labels = self._find()
        super().__init__(files, labels, sample_rate, duration)
        if sample_rate is None:
            self._check_one_rate()

    def _find(self) -> tuple[list[Path], list[int]]:
        raise NotImplementedError


class AudioFolder(_FolderDataset):
    """Your own recordings, one folder per class: ``root/<class name>/<clip>.wav``.

    Classes are the sub-folders holding audio, sorted by name; parameters as :class:`AudioFiles`.
    Book: chapter "Your own classifier".
    """

    def _find(self) -> tuple[list[Path], list[int]]:
        classes, files, labels = [], [], []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
            if clips:
                labels += [len(classes)] * len(clips)
                files += clips
                classes.append(folder.name)
        if not files:
            raise ValueError(
                f"no audio in {self.root}: expected one sub-folder per class holding "
                f"{', '.join(AUDIO_EXTENSIONS)} files"
            )
        self.classes = tuple(classes)
        return files, labels


class AudioFiles(_FolderDataset):
    """Every audio file under a folder, its sub-folders too, sorted by path, without labels
    (``label`` is -1): clips to learn a dictionary from, to train an interpreter on (it mimics the
    classifier, so needs none) or to explain. Hidden files are skipped.

    Book: the API reference ("Command line"), whose commands read folders with it.

    Parameters
    ----------
    root : path
    sample_rate : int, optional
        Resample every clip to this rate (default: the first file's; a folder of mixed rates needs it).
    duration : float, optional
        Zero-pad or crop every clip to this many seconds.
    """

    def _find(self) -> tuple[list[Path], list[int]]:
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(self.root).parts))
        if not files:
            raise ValueError(f"no audio in {self.root}: expected {', '.join(AUDIO_EXTENSIONS)} files (sub-folders are searched too)")
        return files, [-1] * len(files)
