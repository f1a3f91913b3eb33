import numpy as np
import pytest
import torch
from sklearn.decomposition import NMF as SkNMF

from l2i.audio import Spectrogram
from l2i.datasets import SyntheticScenes
from l2i.nmf import NMF, FrameBlocks, beta_divergence


def spectrogram_like(n_freq=65, n_frames=300, rank=6, seed=0):
    rng = np.random.default_rng(seed)
    X = np.log1p(rng.gamma(0.5, 1, (n_freq, rank)) @ rng.gamma(0.3, 1, (rank, n_frames)))
    return X


def sklearn_start(X, k, seed=1):
    rng = np.random.default_rng(seed)
    avg = np.sqrt(X.mean() / k)
    return np.abs(avg * rng.standard_normal((X.shape[0], k))), np.abs(avg * rng.standard_normal((k, X.shape[1])))


@pytest.mark.parametrize("beta", ["frobenius", "kullback-leibler", "itakura-saito", 1.5])
def test_same_loss_as_sklearn_mu(beta):
    X = spectrogram_like() + (1e-3 if beta == "itakura-saito" else 0.0)
    W0, H0 = sklearn_start(X, 8)
    sk = SkNMF(8, init="custom", solver="mu", beta_loss=beta, max_iter=150, tol=0)
    W_sk = sk.fit_transform(X, W=W0.copy(), H=H0.copy())
    loss_sk = beta_divergence(torch.from_numpy(X), torch.from_numpy(W_sk @ sk.components_), beta)
    model = NMF(8, beta=beta, n_iter=150, progress=False)  # float32, normalised W
    H = model.fit_transform(torch.from_numpy(X), W=torch.from_numpy(W0), H=torch.from_numpy(H0))
    loss = beta_divergence(torch.from_numpy(X), model.reconstruct(H), beta)
    assert abs(loss - loss_sk) / loss_sk < 1e-3
    # The tracked objective is the true loss of the final factors.
    assert abs(model.loss_history[-1] - loss) / loss < 1e-3


@pytest.mark.parametrize("beta", [1.0, 0.0, 0.5, 3.0])
def test_tracked_loss_is_the_reference_divergence_at_the_first_and_last_factors(beta):
    # Computed from the update's own products in float32, summed in float64: the same number as
    # beta_divergence's float64 evaluation, to float32's resolution.
    X = spectrogram_like(seed=2) + 0.01
    W0, H0 = sklearn_start(X, 6)
    model = NMF(6, beta=beta, n_iter=30, normalize=False, progress=False)
    H = model.fit_transform(torch.from_numpy(X), W=torch.from_numpy(W0), H=torch.from_numpy(H0))
    Xt = torch.from_numpy(X)
    first = beta_divergence(Xt, torch.from_numpy(W0).float() @ torch.from_numpy(H0).float(), beta)
    last = beta_divergence(Xt, model.reconstruct(H), beta)
    assert abs(model.loss_history[0] - first) / first < 1e-6
    assert abs(model.loss_history[-1] - last) / last < 1e-6
    assert len(model.loss_history) == 31


def test_float64_follows_sklearn_iterates_exactly():
    X = spectrogram_like(seed=3)
    W0, H0 = sklearn_start(X, 5)
    sk = SkNMF(5, init="custom", solver="mu", max_iter=60, tol=0)
    W_sk = sk.fit_transform(X, W=W0.copy(), H=H0.copy())
    # On the CPU: a GPU sums in another order (tests/test_cuda.py compares the two).
    model = NMF(5, n_iter=60, normalize=False, dtype=torch.float64, device="cpu", progress=False)
    H = model.fit_transform(torch.from_numpy(X), W=torch.from_numpy(W0), H=torch.from_numpy(H0))
    np.testing.assert_allclose(model.W.numpy(), W_sk, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(H.numpy(), sk.components_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("beta", [2.0, 1.0, 0.0])
def test_loss_never_increases(beta):
    X = torch.from_numpy(spectrogram_like(seed=5) + 0.01)
    model = NMF(10, beta=beta, n_iter=200, dtype=torch.float64, progress=False).fit(X)
    history = np.array(model.loss_history)
    assert len(history) == 201
    assert np.all(np.diff(history) <= 1e-9 * history[:-1])
    assert history[-1] < 0.5 * history[0]


def test_unused_entries_become_zero_not_subnormal():
    # Patterns on disjoint bands: every entry of W off a pattern's band, and of H off its frames,
    # decays towards 0. In float32 such entries used to become subnormal (slow on x86 CPUs).
    gen = torch.Generator().manual_seed(0)
    W_true = torch.zeros(64, 4)
    for k in range(4):
        W_true[16 * k : 16 * (k + 1), k] = torch.rand(16, generator=gen) + 0.1
    H_true = (torch.rand(4, 400, generator=gen) > 0.6).float() * torch.rand(4, 400, generator=gen)
    X = W_true @ H_true
    model = NMF(4, n_iter=400, device="cpu", progress=False)
    H = model.fit_transform(X)
    tiny = torch.finfo(torch.float32).tiny
    for name, M in (("W", model.W), ("H", H), ("transform", model.transform(X, n_iter=400))):
        assert not ((M > 0) & (M < tiny)).any(), name
    assert beta_divergence(X, model.reconstruct(H)) < 1e-3 * beta_divergence(X, torch.full_like(X, float(X.mean())))


def test_dictionary_columns_have_unit_norm():
    model = NMF(6, n_iter=30, progress=False).fit(torch.from_numpy(spectrogram_like()).float())
    torch.testing.assert_close(model.W.norm(dim=0).cpu(), torch.ones(6))
    assert (model.W >= 0).all()


def test_sparsity_makes_activations_sparser():
    X = torch.from_numpy(spectrogram_like(seed=2)).float()
    dense = NMF(12, n_iter=100, progress=False)
    sparse = NMF(12, n_iter=100, sparsity=2.0, progress=False)
    h_dense, h_sparse = dense.fit_transform(X), sparse.fit_transform(X)
    assert h_sparse.sum() < 0.8 * h_dense.sum()
    # The objective includes the penalty.
    H = h_sparse  # on X's device; the dictionary may be on a GPU, so reconstruct() multiplies
    expected = beta_divergence(X, sparse.reconstruct(H)) + 2.0 * float(H.sum())
    assert abs(sparse.loss_history[-1] - expected) / expected < 1e-3


def test_silence_zero_columns_and_long_runs_stay_finite():
    X = torch.from_numpy(spectrogram_like()).float()
    X[:, 50:120] = 0  # silent frames
    X[:10] = 0  # empty bands
    for beta in (2.0, 1.0):
        model = NMF(20, beta=beta, n_iter=1000, progress=False)
        H = model.fit_transform(X)
        assert torch.isfinite(model.W).all() and torch.isfinite(H).all()
        assert all(np.isfinite(model.loss_history))
        assert H[:, 50:120].abs().max() < 1e-6
    silent = NMF(4, n_iter=20, progress=False)
    H = silent.fit_transform(torch.zeros(16, 30))
    assert torch.isfinite(silent.W).all() and float(H.abs().max()) == 0.0


def test_streaming_blocks_give_the_in_memory_fit():
    X = torch.from_numpy(spectrogram_like(n_frames=500)).float()
    whole = NMF(8, n_iter=40, seed=3, progress=False)
    whole.fit(X)
    blocks = [X[:, :120], X[:, 120:121], X[:, 121:400], X[:, 400:]]
    streamed = NMF(8, n_iter=40, seed=3, progress=False).fit(blocks)
    torch.testing.assert_close(streamed.W, whole.W, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(streamed.loss_history, whole.loss_history, rtol=1e-5)
    kl_whole = NMF(8, beta=1, n_iter=20, seed=3, progress=False).fit(X)
    kl_streamed = NMF(8, beta=1, n_iter=20, seed=3, progress=False).fit(blocks)
    torch.testing.assert_close(kl_streamed.W, kl_whole.W, rtol=1e-4, atol=1e-6)


def test_batched_spectrograms_are_frames_side_by_side():
    X = torch.from_numpy(spectrogram_like(n_frames=300)).float()
    batch = X.reshape(65, 3, 100).permute(1, 0, 2)  # (3, 65, 100)
    H = NMF(5, n_iter=10, progress=False).fit_transform(batch)
    H_flat = NMF(5, n_iter=10, progress=False).fit_transform(X)
    assert H.shape == (3, 5, 100)
    torch.testing.assert_close(H, H_flat.reshape(5, 3, 100).permute(1, 0, 2))


def test_frame_blocks_from_a_dataset_with_and_without_cache():
    spec = Spectrogram(8000, 256)
    data = SyntheticScenes("train", n_per_class=2)
    cached = FrameBlocks(data, spec, block_frames=300)
    streamed = FrameBlocks(data, spec, block_frames=300, cache=False)
    blocks = list(cached)
    assert all(b.shape == (129, 300) for b in blocks[:-1]) and blocks[-1].shape[1] <= 300
    assert sum(b.shape[1] for b in blocks) == len(data) * spec.n_frames(8000)
    a = NMF(6, n_iter=15, progress=False).fit(cached)
    b = NMF(6, n_iter=15, progress=False).fit(streamed)
    torch.testing.assert_close(a.W, b.W)
    with pytest.raises(ValueError, match="Hz"):
        list(FrameBlocks(data, Spectrogram(16000, 256)))


def test_transform_recovers_activations_of_a_known_dictionary():
    gen = torch.Generator().manual_seed(0)
    W = torch.rand(40, 4, generator=gen)
    W = W / W.norm(dim=0)
    H_true = torch.rand(2, 4, 30, generator=gen)
    X = W @ H_true  # (2, 40, 30)
    model = NMF(4, progress=False)
    model.W = W
    H = model.transform(X, n_iter=2000)
    assert H.shape == (2, 4, 30)
    assert ((model.reconstruct(H) - X).norm() / X.norm()) < 1e-3
    assert model.transform(X[0]).shape == (4, 30)


def test_bad_input_is_named():
    model = NMF(4, n_iter=2, progress=False)
    with pytest.raises(ValueError, match="non-negative"):
        model.fit(torch.randn(10, 20))
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.fit(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="generator"):
        model.fit(x for x in [torch.rand(5, 5)])
    with pytest.raises(ValueError, match="frequency bins"):
        model.fit([torch.rand(5, 5), torch.rand(6, 5)])
    with pytest.raises(ValueError, match="shape"):
        model.fit(torch.rand(2, 3, 4, 5))
    with pytest.raises(ValueError, match="no dictionary"):
        model.transform(torch.rand(5, 5))
    with pytest.raises(ValueError, match="empty"):
        model.fit([])
    with pytest.raises(ValueError, match="n_components"):
        NMF(0)
    with pytest.raises(ValueError, match="unknown beta"):
        NMF(3, beta="euclid")
    model.fit(torch.rand(5, 8), spectrogram={"sample_rate": 8000, "n_fft": 8, "hop_length": 2})
    with pytest.raises(ValueError, match="n_fft=8"):
        model.transform(torch.rand(7, 8))
    with pytest.raises(ValueError, match="non-negative"):
        model.transform(-torch.rand(5, 8))


def test_save_and_load_round_trip(tmp_path):
    X = torch.from_numpy(spectrogram_like()).float()
    model = NMF(6, n_iter=10, sparsity=0.1, progress=False).fit(X, spectrogram={"sample_rate": 8000, "n_fft": 128, "hop_length": 32})
    path = model.save(tmp_path / "dicts" / "w.pt")
    assert [p.name for p in path.parent.iterdir()] == ["w.pt"]  # no temporary left
    loaded = NMF.load(path)
    torch.testing.assert_close(loaded.W, model.W)
    assert loaded.config() == model.config() and loaded.spectrogram.config() == model.spectrogram.config()
    assert loaded.loss_history == model.loss_history
    torch.testing.assert_close(loaded.transform(X[:, :20]), model.transform(X[:, :20]))


def test_load_rejects_other_files(tmp_path):
    from l2i.persistence import CheckpointError

    with pytest.raises(FileNotFoundError, match="no NMF dictionary file"):
        NMF.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable"):
        NMF.load(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an l2i NMF dictionary file"):
        NMF.load(tmp_path / "other.pt")
    model = NMF(3, n_iter=2, progress=False).fit(torch.rand(5, 9))
    model.save(tmp_path / "w.pt")
    payload = torch.load(tmp_path / "w.pt", weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="newer l2i"):
        NMF.load(tmp_path / "future.pt")
    payload["format_version"] = 2
    payload["state"]["W"] = -payload["state"]["W"]
    torch.save(payload, tmp_path / "negative.pt")
    with pytest.raises(ValueError, match="damaged"):
        NMF.load(tmp_path / "negative.pt")


def test_same_seed_same_dictionary():
    X = torch.from_numpy(spectrogram_like()).float()
    a = NMF(5, n_iter=5, seed=7, progress=False).fit(X).W
    b = NMF(5, n_iter=5, seed=7, progress=False).fit(X).W
    c = NMF(5, n_iter=5, seed=8, progress=False).fit(X).W
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_hals_with_one_sweep_follows_sklearn_coordinate_descent_exactly():
    X = spectrogram_like(seed=4)
    W0, H0 = sklearn_start(X, 6)
    sk = SkNMF(6, init="custom", solver="cd", max_iter=40, tol=0)
    W_sk = sk.fit_transform(X, W=W0.copy(), H=H0.copy())
    model = NMF(6, n_iter=40, normalize=False, solver="hals", sweeps=1, dtype=torch.float64, device="cpu",
                progress=False)
    H = model.fit_transform(torch.from_numpy(X), W=torch.from_numpy(W0), H=torch.from_numpy(H0))
    np.testing.assert_allclose(model.W.numpy(), W_sk, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(H.numpy(), sk.components_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("sparsity", [0.0, 0.05])
def test_hals_never_increases_the_loss_and_is_ahead_of_mu_at_equal_iterations(sparsity):
    # Unnormalised: each HALS step is then an exact minimisation, the L1 term included (rescaling
    # W's columns moves the L1 term, so a normalised fit with sparsity is not monotone, MU's neither).
    X = torch.from_numpy(spectrogram_like(seed=6) + 0.01)
    kw = dict(n_iter=60, sparsity=sparsity, normalize=False, dtype=torch.float64, progress=False)
    hals = NMF(10, solver="hals", **kw).fit(X)
    mu = NMF(10, **kw).fit(X)
    history = np.array(hals.loss_history)
    assert hals.loss_history[0] == mu.loss_history[0]  # the same start
    assert np.all(np.diff(history) <= 1e-9 * history[:-1])
    assert hals.loss_history[-1] < mu.loss_history[-1]
    normalised = NMF(10, n_iter=20, solver="hals", dtype=torch.float64, progress=False).fit(X)
    torch.testing.assert_close(normalised.W.norm(dim=0), torch.ones(10, dtype=torch.float64))


def test_hals_streams_blocks_like_the_in_memory_fit_and_transforms():
    X = torch.from_numpy(spectrogram_like(n_frames=500)).float()
    whole = NMF(8, n_iter=30, seed=3, solver="hals", progress=False).fit(X)
    streamed = NMF(8, n_iter=30, seed=3, solver="hals", progress=False).fit([X[:, :120], X[:, 120:121], X[:, 121:]])
    torch.testing.assert_close(streamed.W, whole.W, rtol=1e-4, atol=1e-5)
    H = whole.transform(X, n_iter=50)
    mu_H = NMF(8, n_iter=30, seed=3, progress=False)
    mu_H.W = whole.W
    assert beta_divergence(X, whole.reconstruct(H), 2) <= beta_divergence(X, whole.reconstruct(mu_H.transform(X, n_iter=50)), 2)


def test_hals_is_for_the_frobenius_loss_and_saved_with_its_solver(tmp_path):
    with pytest.raises(ValueError, match="use solver='mu'"):
        NMF(4, beta="kullback-leibler", solver="hals")
    with pytest.raises(ValueError, match="solver must be"):
        NMF(4, solver="cd")
    with pytest.raises(ValueError, match="sweeps"):
        NMF(4, solver="hals", sweeps=0)
    model = NMF(4, n_iter=5, solver="hals", sweeps=2, progress=False).fit(torch.rand(16, 40))
    loaded = NMF.load(model.save(tmp_path / "d.pt"))
    assert (loaded.solver, loaded.sweeps) == ("hals", 2)
    torch.testing.assert_close(loaded.W, model.W)


def test_compare_solvers_gives_each_solvers_loss_against_time_from_one_start():
    from l2i.nmf import compare_solvers

    X = torch.from_numpy(spectrogram_like(n_frames=400)).float()
    curves = compare_solvers(X, 6, n_iter=30, sklearn_iterations=(5, 30))
    assert set(curves) == {"l2i MU", "l2i HALS", "scikit-learn cd"}
    starts = [c["loss"][0] for c in curves.values()]
    assert max(starts) - min(starts) < 1e-3 * starts[0]  # the same initial factors
    for name, c in curves.items():
        assert len(c["seconds"]) == len(c["loss"]) and c["seconds"][0] == 0.0
    for name in ("l2i MU", "l2i HALS"):  # one run each: its clock only moves on
        assert all(b >= a for a, b in zip(curves[name]["seconds"], curves[name]["seconds"][1:]))
    assert len(curves["l2i HALS"]["loss"]) == 31 and len(curves["scikit-learn cd"]["loss"]) == 3
    assert curves["l2i HALS"]["loss"][-1] < curves["l2i MU"]["loss"][-1]
    assert curves["scikit-learn cd"]["loss"][2] < curves["scikit-learn cd"]["loss"][1] < starts[0]
    with pytest.raises(ValueError, match="one \\(freq, frames\\) tensor"):
        compare_solvers(X[None], 6)
