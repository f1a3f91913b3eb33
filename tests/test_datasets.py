import hashlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fabricated import esc50_available, fabricate_esc50, fabricate_fsdd_release, fsdd_available, write_wav
from l2i.audio import rms
from l2i.datasets import ESC50, FSDD, AudioFolder, Mixtures, SyntheticScenes, collate
from l2i.downloads import cache_dir, download


def test_synthetic_scenes_are_deterministic_balanced_and_in_range():
    ds = SyntheticScenes("train", n_per_class=3)
    assert len(ds) == 24 and len(ds.classes) >= 8
    again = SyntheticScenes("train", n_per_class=3)
    for i in range(len(ds)):
        e = ds[i]
        assert e.waveform.shape == (8000,) and e.waveform.dtype == torch.float32
        assert torch.isfinite(e.waveform).all() and 0.05 < e.waveform.abs().max() < 1
        assert torch.equal(e.waveform, again[i].waveform)
    assert sorted(ds[i].label for i in range(len(ds))) == sorted(list(range(8)) * 3)
    other = SyntheticScenes("test", n_per_class=3)
    assert not torch.equal(ds[0].waveform, other[0].waveform)
    assert not torch.equal(ds[0].waveform, ds[8].waveform)  # same class, new parameters


def test_synthetic_classes_differ_in_spectral_shape():
    """Each class has its own average spectrum: the centroids of the eight classes are spread out."""
    ds = SyntheticScenes("train", n_per_class=6)
    centroids = np.zeros((8, 6))
    for i in range(len(ds)):
        e = ds[i]
        spectrum = np.abs(np.fft.rfft(e.waveform.numpy()))
        freqs = np.fft.rfftfreq(e.waveform.shape[0], 1 / 8000)
        centroids[e.label, i // 8] = (freqs * spectrum).sum() / spectrum.sum()
    means = centroids.mean(1)
    assert np.ptp(means) > 1500  # from the low engine hum to rain and birds
    assert centroids[4].mean() < 700  # engine
    assert centroids[3].mean() > 1800  # bird chirps


def test_synthetic_options_are_checked():
    with pytest.raises(ValueError, match="split"):
        SyntheticScenes("dev")
    with pytest.raises(ValueError, match="n_per_class"):
        SyntheticScenes(n_per_class=0)
    ds = SyntheticScenes(n_per_class=1, sample_rate=16000, duration=0.5)
    assert ds[0].waveform.shape == (8000,) and ds[0].sample_rate == 16000
    with pytest.raises(IndexError):
        ds[8]


def test_mixtures_keep_sources_and_snr():
    base = SyntheticScenes("test", n_per_class=4)
    mixes = Mixtures(base, n_mixtures=12, snr_db=0.0, seed=1)
    for i in range(len(mixes)):
        e = mixes[i]
        assert e.sources.shape == (2, 8000)
        torch.testing.assert_close(e.sources.sum(0), e.waveform)
        assert e.source_labels[0] != e.source_labels[1] and e.label == e.source_labels[0]
        snr = 20 * torch.log10(rms(e.sources[0]) / rms(e.sources[1]))
        assert abs(float(snr)) < 1e-3
        assert e.waveform.abs().max() <= 0.9 + 1e-6
    weighted = Mixtures(base, n_mixtures=3, weights=(0.8, 0.2), seed=1)
    e = weighted[0]
    ratio = e.sources[0].norm() / e.sources[1].norm()
    assert abs(float(ratio) - 4.0) < 1e-3


def test_collate_pads_and_batches():
    mixes = Mixtures(SyntheticScenes("test", n_per_class=2), n_mixtures=4)
    batch = next(iter(DataLoader(mixes, batch_size=4, collate_fn=collate)))
    assert batch.waveforms.shape == (4, 8000) and batch.sources.shape == (4, 2, 8000)
    assert batch.labels.shape == (4,) and batch.sample_rate == 8000


@pytest.mark.skipif(not fsdd_available(), reason="FSDD recordings not beside this checkout")
def test_fsdd_is_split_by_speaker():
    train, val, test = FSDD("train"), FSDD("val"), FSDD("test")
    assert len(train) + len(val) + len(test) == len(FSDD("all")) == 2500
    assert set(test.speakers) == {"george"}
    assert "george" not in set(train.speakers) | set(val.speakers)
    assert not {str(p) for p in train.files} & {str(p) for p in val.files}
    e = test[0]
    assert e.sample_rate == 8000 and e.waveform.ndim == 1 and 0 <= e.label <= 9
    fixed = FSDD("val", duration=1.0)
    assert all(fixed[i].waveform.shape == (8000,) for i in range(5))
    assert FSDD("test", sample_rate=16000)[0].sample_rate == 16000
    mixes = Mixtures(FSDD("all"), n_mixtures=5, distinct=("label", "speaker"))
    for i in range(5):
        a, b = mixes.pairs[i]
        assert mixes.base.speakers[a] != mixes.base.speakers[b]
    with pytest.raises(ValueError, match="test_speakers"):
        FSDD("test", test_speakers=("nobody",))


def test_fsdd_download_path(tmp_path, monkeypatch):
    archive = fabricate_fsdd_release(tmp_path)
    monkeypatch.setattr("l2i.datasets.FSDD_URL", archive.as_uri())
    monkeypatch.delenv("L2I_FSDD", raising=False)
    ds = FSDD("test", test_speakers=("bob",), download=True)
    assert len(ds) == 30 and set(ds.speakers) == {"bob"}
    assert ds.root == cache_dir() / "fsdd" / "recordings"
    assert len(FSDD("train", test_speakers=("bob",), val_per_digit=1)) == 20


def test_fsdd_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("L2I_FSDD", raising=False)
    with pytest.raises(ValueError, match="download=True"):
        FSDD("train")
    with pytest.raises(ValueError, match="does not exist"):
        FSDD("train", root=tmp_path / "missing")


def test_esc50_downloads_checks_and_splits_by_fold(tmp_path, monkeypatch):
    monkeypatch.delenv("L2I_ESC50", raising=False)
    archive = fabricate_esc50(tmp_path)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    train = ESC50("train", url=archive.as_uri(), sha256=digest, sample_rate=8000)
    assert len(train) == 9 and set(train.folds) == {1, 2, 3}
    assert train.classes == ("dog", "rooster", "rain")
    e = train[0]
    assert e.sample_rate == 8000 and e.waveform.shape == (4000,)
    # Now cached: no URL needed, and validation/test follow the folds.
    assert set(ESC50("val", url="file:///nonexistent").folds) == {4}
    test = ESC50("test", url="file:///nonexistent")
    assert set(test.folds) == {5} and test[0].sample_rate == 44100
    esc10 = ESC50("all", esc10=True, url="file:///nonexistent")
    assert esc10.classes == ("dog", "rain") and set(esc10.labels) == {0, 1}


def test_esc50_bad_checksum_or_incomplete_archive_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("L2I_ESC50", raising=False)
    archive = fabricate_esc50(tmp_path)
    with pytest.raises(ValueError, match="checksum mismatch"):
        ESC50("train", url=archive.as_uri(), sha256="0" * 64)
    assert not (cache_dir() / "esc50").exists()
    assert not list((cache_dir() / "downloads").iterdir())
    broken = fabricate_esc50(tmp_path / "b", missing=True)
    with pytest.raises(ValueError, match="incomplete"):
        ESC50("train", url=broken.as_uri())
    assert not (cache_dir() / "esc50").exists()
    assert not [p for p in cache_dir().iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError, match="folds"):
        ESC50("train", test_fold=4, val_fold=4)


@pytest.mark.skipif(not esc50_available(), reason="no ESC-50 copy in $L2I_ESC50")
def test_esc50_reads_the_shared_flac_copy_by_fold():
    test = ESC50("test", esc10=True)
    assert len(test) == 80 and set(test.folds) == {5} and len(test.classes) == 10
    assert {"crying_baby", "dog"} <= set(test.classes) and test.sample_rate == 16000
    e = test[0]
    assert e.waveform.shape == (80000,) and e.waveform.abs().max() > 0 and test.info(0)["path"].endswith(".flac")
    assert test[0].waveform.data_ptr() != e.waveform.data_ptr()  # kept in memory, handed out as a copy
    torch.testing.assert_close(test[0].waveform, e.waveform)
    assert set(ESC50("train", esc10=True).folds) == {1, 2, 3} and set(ESC50("val", esc10=True).folds) == {4}
    other = ESC50("val", esc10=True, test_fold=1, val_fold=2, sample_rate=8000)
    assert set(other.folds) == {2} and other[0].waveform.shape == (40000,)
    assert len(ESC50("all")) == 2000


def test_download_failure_is_clear_and_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="could not download"):
        download((tmp_path / "nothing.zip").as_uri(), tmp_path / "out" / "x.zip")
    assert not list((tmp_path / "out").iterdir())


def test_audio_folder(tmp_path):
    for name in ("cat", "dog"):
        for i in range(3):
            write_wav(tmp_path / "clips" / name / f"{i}.wav", seconds=0.2 + 0.1 * i, rate=16000, seed=i)
    (tmp_path / "clips" / "notes").mkdir()
    (tmp_path / "clips" / "notes" / "readme.txt").write_text("not audio")
    ds = AudioFolder(tmp_path / "clips", sample_rate=8000, duration=0.3)
    assert ds.classes == ("cat", "dog") and len(ds) == 6
    assert all(ds[i].waveform.shape == (2400,) for i in range(6))
    assert [ds[i].label for i in range(6)] == [0, 0, 0, 1, 1, 1]
    native = AudioFolder(tmp_path / "clips")
    assert native.sample_rate == 16000 and native[1].waveform.shape == (4800,)
    write_wav(tmp_path / "clips" / "cat" / "odd.wav", rate=22050)
    with pytest.raises(ValueError, match="mixes sample rates"):
        AudioFolder(tmp_path / "clips")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio"):
        AudioFolder(tmp_path / "empty")


def test_clips_are_kept_as_copies_within_the_memory_budget(tmp_path):
    ds = SyntheticScenes("val", n_per_class=2)
    first = ds[3].waveform
    first.mul_(0)  # changing what was handed out changes nothing kept
    again = ds[3].waveform
    fresh = SyntheticScenes("val", n_per_class=2)
    fresh._memo.budget = 0  # nothing kept: every read renders again
    assert torch.equal(again, fresh[3].waveform) and again.abs().max() > 0
    assert not fresh._memo.examples and len(ds._memo.examples) == 1
    assert ds._memo.used == again.nbytes

    write_wav(tmp_path / "clips" / "cat" / "0.wav", seconds=0.2, rate=16000)
    folder = AudioFolder(tmp_path / "clips")
    clip = folder[0]
    (tmp_path / "clips" / "cat" / "0.wav").unlink()  # read once, kept
    assert torch.equal(folder[0].waveform, clip.waveform) and folder[0].sample_rate == 16000
