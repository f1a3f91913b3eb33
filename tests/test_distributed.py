"""Training on two processes (torch.distributed, gloo, on the CPU), against one process."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    from l2i import distributed

    assert distributed.setup(backend="gloo", timeout_s=60) and distributed.world_size() == world


def _tiny():
    from l2i.audio import Spectrogram
    from l2i.datasets import SyntheticScenes
    from l2i.models import MelCNN
    from l2i.nmf import NMF

    train, val = SyntheticScenes("train", n_per_class=4), SyntheticScenes("val", n_per_class=3)
    spec = Spectrogram(8000, 256, 64)
    nmf = NMF(8, n_iter=10, progress=False).fit(torch.cat([spec(train[i].waveform) for i in range(8)], 1), spectrogram=spec)
    torch.manual_seed(0)
    return train, val, nmf, MelCNN(8, width=4).eval()


SOLVERS = ((2.0, "mu"), (1.0, "mu"), (2.0, "hals"))


def _nmf_worker(rank, world, port, X, out):
    _join(rank, world, port)
    from l2i import distributed
    from l2i.nmf import NMF

    part = distributed.shard(X.shape[1])
    # Frobenius (the book's), KL, whose W updates reduce other products, and HALS
    for beta, solver in SOLVERS:
        nmf = NMF(6, beta=beta, n_iter=40, seed=3, sparsity=0.01, progress=False, solver=solver).fit(
            X[:, part.start:part.stop], sharded=True)
        nmf.save(out / f"{beta}{solver}.pt")  # rank 0 writes, the other skips


def test_sharded_nmf_fits_the_single_process_dictionary(tmp_path):
    from l2i.nmf import NMF

    X = torch.rand(30, 257, generator=torch.Generator().manual_seed(0))
    mp.spawn(_nmf_worker, args=(2, _port(), X, tmp_path), nprocs=2)
    for beta, solver in SOLVERS:
        one = NMF(6, beta=beta, n_iter=40, seed=3, sparsity=0.01, progress=False, solver=solver).fit(X)
        two = NMF.load(tmp_path / f"{beta}{solver}.pt")
        torch.testing.assert_close(two.W, one.W, atol=1e-5, rtol=1e-4)
        assert abs(two.loss_history[-1] - one.loss_history[-1]) < 1e-4 * one.loss_history[-1]
        assert not torch.equal(one.W, NMF(6, beta=beta, n_iter=40, seed=4, sparsity=0.01, progress=False).fit(X).W)


def _train_worker(rank, world, port, out):
    _join(rank, world, port)
    from l2i.interpreter import Interpreter
    from l2i.lmac import LMAC
    from l2i.models import MelCNN, train_classifier

    train, val, nmf, f = _tiny()
    history = train_classifier(MelCNN(8, width=4), train, val, epochs=2, batch_size=8, progress=False)
    interp = Interpreter(f, ["block2", "block4"], nmf)
    fit = interp.fit(train, val, epochs=4, batch_size=8, lr=3e-3, progress=False)
    lmac = LMAC(f, ["block3"], nmf.spectrogram)
    lmac.fit(train, val, epochs=1, batch_size=8, progress=False)
    weights = torch.cat([p.detach().flatten() for p in interp.parameters()])
    torch.save({"fidelity": fit.best_val_fidelity, "epoch": fit.best_epoch, "weights": weights,
                "classifier": history.best_val_accuracy, "lmac": lmac.history.best_epoch, "lmac_weights": torch.cat([p.detach().flatten() for p in lmac.decoder.parameters()])},
               f"{out}.{rank}")


def test_two_processes_train_one_interpreter_whose_fidelity_is_within_the_seed_spread(tmp_path):
    from l2i.interpreter import Interpreter

    train, val, nmf, f = _tiny()
    single = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        interp = Interpreter(f, ["block2", "block4"], nmf)
        single.append(interp.fit(train, val, epochs=4, batch_size=8, lr=3e-3, seed=seed, progress=False).best_val_fidelity)
    mp.spawn(_train_worker, args=(2, _port(), tmp_path / "run"), nprocs=2)
    ranks = [torch.load(f"{tmp_path / 'run'}.{r}", weights_only=True) for r in (0, 1)]
    # Both ranks keep the same epoch and end with the same weights: one model, trained together.
    assert ranks[0]["epoch"] == ranks[1]["epoch"] and ranks[0]["fidelity"] == ranks[1]["fidelity"]
    torch.testing.assert_close(ranks[0]["weights"], ranks[1]["weights"])
    assert ranks[0]["classifier"] == ranks[1]["classifier"] and ranks[0]["lmac"] == ranks[1]["lmac"]
    torch.testing.assert_close(ranks[0]["lmac_weights"], ranks[1]["lmac_weights"])
    spread = max(single) - min(single)
    assert min(single) - max(spread, 0.1) <= ranks[0]["fidelity"] <= max(single) + max(spread, 0.1), (single, ranks[0])


def _failing_worker(rank, world, port):
    _join(rank, world, port)
    from l2i.datasets import SyntheticScenes
    from l2i.interpreter import Interpreter

    train, val, nmf, f = _tiny()
    data = SyntheticScenes("train", n_per_class=4, sample_rate=16000) if rank == 1 else train
    Interpreter(f, ["block4"], nmf).fit(data, val, epochs=2, batch_size=8, progress=False)


def test_a_rank_that_raises_ends_the_run_with_its_error():
    with pytest.raises(mp.ProcessRaisedException, match="16000 Hz given to Interpreter working at 8000 Hz"):
        mp.spawn(_failing_worker, args=(2, _port()), nprocs=2)
