"""Faults beyond bad arguments: killed writers, read-only and full disks, two processes filling the
cache at once, damaged checkpoints. Each ends in a documented error or result, and nothing
half-written is left behind or later read as valid (the table in the API reference, "Errors and
faults", lists them with these tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from l2i.audio import Spectrogram
from l2i.interpreter import Interpreter
from l2i.models import MelCNN
from l2i.nmf import NMF
from l2i.persistence import CheckpointError, atomic_path, save_torch

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300, **kwargs)


def test_a_save_killed_mid_write_leaves_the_old_file_and_its_part_is_removed_next_time(tmp_path):
    target = tmp_path / "model.pt"
    save_torch({"version": "old"}, target)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from l2i.persistence import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            open(tmp, "wb").write(b"half of a model")
            print("writing", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    parts = list(tmp_path.glob(".model.*.part.pt"))
    assert len(parts) == 1, "the killed writer's temporary file"
    assert torch.load(target, weights_only=True) == {"version": "old"}  # never replaced by half a file
    save_torch({"version": "new"}, target)  # the next write beside it removes the dead writer's part
    assert not list(tmp_path.glob(".model.*.part.pt"))
    assert torch.load(target, weights_only=True) == {"version": "new"}


def test_a_full_disk_raises_a_clear_error_and_leaves_nothing(tmp_path):
    run = _python(f"""
        import resource, torch
        from l2i.persistence import save_torch
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # as if the disk had 4 kB left
        try:
            save_torch({{"W": torch.zeros(100_000)}}, {str(tmp_path / "w.pt")!r})
        except OSError as err:
            print("OSError:", err)
    """)
    assert "could not write" in run.stdout and "free space, or point L2I_CACHE elsewhere" in run.stdout, run.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_cache_says_which_folder_and_the_fix(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    if os.geteuid() == 0:  # root ignores permissions: a read-only file system instead
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(cache)], capture_output=True).returncode:
            pytest.skip("this root cannot mount a read-only tmpfs")
    else:
        cache.chmod(0o555)
    try:
        nmf = NMF(2, n_iter=2, progress=False).fit(torch.rand(5, 9))
        with pytest.raises(PermissionError, match=r"cache/dictionaries/w.pt: .* is not writable .* Point L2I_CACHE"):
            nmf.save(cache / "dictionaries" / "w.pt")
        assert list(cache.iterdir()) == []
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(cache)], check=True)
        else:
            cache.chmod(0o755)


def test_two_processes_filling_the_cache_at_once_both_succeed_and_leave_one_valid_file(tmp_path):
    code = f"""
        import os
        os.environ["L2I_CACHE"] = {str(tmp_path / "cache")!r}
        from l2i.book import artifacts
        recipe = artifacts.SCENES.with_(n_per_class=2, n_components=4, nmf_iter=20)
        nmf = artifacts.dictionary(recipe, progress=False)
        print("ok", nmf.W.shape[1])
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [o[0].strip() for o in outs] == ["ok 4", "ok 4"], outs
    files = list((tmp_path / "cache" / "artifacts").iterdir())
    assert len(files) == 1 and NMF.load(files[0]).W.shape[1] == 4
    assert not list((tmp_path / "cache" / "artifacts").glob(".*"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("checkpoints")
    spec = Spectrogram(8000, 256, 64)
    nmf = NMF(6, n_iter=5, progress=False).fit(torch.rand(spec.n_freq, 40), spectrogram=spec)
    model = MelCNN(4, width=4).eval()
    interp = Interpreter(model, ["block3"], nmf)
    return folder, model, {"dictionary": nmf.save(folder / "w.pt"), "classifier": model.save(folder / "f.pt"),
                           "interpreter": interp.save(folder / "i.pt")}


LOADERS = {"dictionary": lambda p, model: NMF.load(p), "classifier": lambda p, model: MelCNN.load(p),
           "interpreter": lambda p, model: Interpreter.load(p, model)}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_damaged_checkpoints_are_refused_by_name(saved, kind, tmp_path):
    folder, model, paths = saved
    load = LOADERS[kind]
    good = paths[kind].read_bytes()
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "junk.pt").write_bytes(os.urandom(200))
    other = paths["dictionary" if kind != "dictionary" else "classifier"]
    payload = torch.load(paths[kind], weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "newer.pt")
    for name, message in (("truncated.pt", "not a readable"), ("junk.pt", "not a readable"), ("newer.pt", "newer l2i")):
        with pytest.raises(CheckpointError, match=message):
            load(tmp_path / name, model)
    with pytest.raises(CheckpointError, match="is not an l2i"):
        load(other, model)  # another kind of l2i file
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pt", model)
    load(paths[kind], model)  # the file itself still loads


def test_an_interpreter_loaded_with_another_classifier_is_refused(saved):
    folder, _, paths = saved
    with pytest.raises(CheckpointError, match="now give .* features, but Interpreter was trained on"):
        Interpreter.load(paths["interpreter"], MelCNN(4, width=8).eval())


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_file_written_atomically_gets_the_mode_a_plain_open_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain.json", "w") as f:
            f.write("{}")
        with atomic_path(tmp_path / "atomic.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    mode = lambda p: (tmp_path / p).stat().st_mode & 0o777
    assert mode("atomic.json") == mode("plain.json") == 0o666 & ~umask


def test_a_stale_part_of_a_live_process_is_kept(tmp_path):
    # A part file named after a process that still runs (this one) is another writer's: kept.
    live = tmp_path / f".model.{os.getpid()}.abc.part.pt"
    live.write_bytes(b"in progress")
    with atomic_path(tmp_path / "model.pt") as tmp:
        Path(tmp).write_bytes(b"done")
    assert live.exists() and (tmp_path / "model.pt").read_bytes() == b"done"


def test_silent_and_constant_clips_are_explained_without_crashing(saved):
    folder, model, paths = saved
    interp = Interpreter.load(paths["interpreter"], model)
    e = interp.explain(torch.stack([torch.zeros(8000), torch.full((8000,), 0.3)]))
    assert bool(e.silent[0]) and float(e.audio[0].abs().max()) == 0  # nothing to explain in silence
    assert torch.isfinite(e.audio).all() and torch.isfinite(e.relevance).all()


def test_audio_at_another_rate_is_refused_with_the_fix(saved):
    from l2i.datasets import SyntheticScenes

    folder, model, paths = saved
    interp = Interpreter.load(paths["interpreter"], model)
    with pytest.raises(ValueError, match="16000 Hz given to Interpreter working at 8000 Hz: resample it"):
        interp.explain(torch.randn(8000) * 0.1, sample_rate=16000)
    with pytest.raises(ValueError, match="resample"):
        interp.fit(SyntheticScenes("val", n_per_class=1, sample_rate=16000), SyntheticScenes("val", n_per_class=1),
                   epochs=1, progress=False)
