"""The GPU path: the same code on CUDA tensors, and what it gives against the CPU.

Skipped where there is no CUDA device (CI has none); run on a GPU machine with
``pytest tests/test_cuda.py``. The rest of the suite also runs there, where the package's
defaults (``NMF``, ``train_classifier``) pick the GPU by themselves."""

import copy
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from l2i import baselines
from l2i.audio import Spectrogram
from l2i.datasets import SyntheticScenes
from l2i.interpreter import Interpreter
from l2i.models import MelCNN, accuracy, predict, train_classifier
from l2i.nmf import NMF, FrameBlocks, beta_divergence
from test_book import EXECUTED, ROOT

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SPEC = Spectrogram(8000, 256)


@pytest.fixture(scope="module")
def data():
    return SyntheticScenes("train", n_per_class=3), SyntheticScenes("val", n_per_class=2)


def test_nmf_on_the_gpu_reaches_the_cpu_loss(data):
    train, _ = data
    X = torch.cat([SPEC(train[i].waveform) for i in range(len(train))], dim=1)
    fits = {d: NMF(12, n_iter=60, seed=3, device=d, progress=False).fit(X) for d in ("cpu", "cuda")}
    assert fits["cuda"].W.device.type == "cuda" and fits["cpu"].W.device.type == "cpu"
    H = {d: m.transform(X) for d, m in fits.items()}
    assert H["cuda"].device.type == "cpu"  # results come back on the input's device
    loss = {d: float(beta_divergence(X, fits[d].W.cpu() @ H[d], 2)) for d in fits}
    # float32 sums in another order: the iterates drift apart a little, the loss hardly moves.
    assert abs(loss["cuda"] - loss["cpu"]) <= 1e-3 * loss["cpu"]


def test_classifier_trains_on_the_gpu_by_default(data):
    train, val = data
    model = MelCNN(len(train.classes), width=4)
    history = train_classifier(model, train, val, epochs=2, batch_size=8, progress=False)
    assert next(model.parameters()).device.type == "cuda" and len(history.val_accuracy) == 2
    logits, labels = predict(model, val)
    assert logits.device.type == "cpu" and logits.shape == (len(val), len(train.classes))
    assert accuracy(model, val) == float((logits.argmax(1) == labels).float().mean())


def test_interpreter_follows_its_classifier_and_loads_on_the_cpu(data, tmp_path):
    train, val = data
    X = torch.cat([SPEC(train[i].waveform) for i in range(len(train))], dim=1)
    nmf = NMF(12, n_iter=30, device="cpu", progress=False).fit(X, spectrogram=SPEC)
    torch.manual_seed(0)
    f = MelCNN(len(train.classes), width=4).eval().cuda()
    before = copy.deepcopy(f.state_dict())
    interp = Interpreter(f, ["block2", "block4"], nmf)
    interp.fit(train, val, epochs=2, batch_size=8, lam_in=0.5, progress=False)
    assert interp.W.device.type == "cuda" and all(p.device.type == "cuda" for p in interp.parameters())
    for k, v in f.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(not m._forward_hooks for m in f.modules())

    x = torch.stack([val[i].waveform for i in range(4)])
    e_gpu = interp.explain(x, threshold=0.1)
    assert torch.isfinite(e_gpu.audio).all() and e_gpu.audio.shape == x.shape
    f_cpu = copy.deepcopy(f).cpu()
    on_cpu = Interpreter.load(interp.save(tmp_path / "interp.pt"), f_cpu)
    e_cpu = on_cpu.explain(x, threshold=0.1)
    # cuDNN convolutions use TF32 by default: about 1e-3 relative, not the CPU's float32 rounding.
    assert torch.equal(e_cpu.target.cpu(), e_gpu.target.cpu())
    torch.testing.assert_close(e_cpu.relevance, e_gpu.relevance.cpu(), atol=3e-3, rtol=1e-2)
    torch.testing.assert_close(e_cpu.audio, e_gpu.audio.cpu(), atol=3e-3, rtol=1e-2)


def test_baselines_run_on_the_gpu_and_agree_with_the_cpu(data):
    train, _ = data
    torch.manual_seed(0)
    f = MelCNN(len(train.classes), width=4).eval()
    x = torch.stack([train[i].waveform for i in range(2)])
    cpu, gpu = f, copy.deepcopy(f).cuda()
    for make in (
        lambda m: baselines.Saliency(m, SPEC),
        lambda m: baselines.IntegratedGradients(m, SPEC, n_steps=16),
    ):
        a, b = make(cpu).explain(x), make(gpu).explain(x)
        torch.testing.assert_close(a.relevance, b.relevance.cpu(), atol=1e-3, rtol=1e-2)
    slime = baselines.SLIME(gpu, SPEC, n_samples=60, batch_size=20)
    first, again = slime.explain(x), slime.explain(x)
    assert torch.equal(first.relevance, again.relevance)  # seeded on the GPU too
    assert first.mask.shape == (2, SPEC.n_freq, SPEC.n_frames(8000)) and torch.isfinite(first.audio).all()


def test_nmf_results_follow_the_input_and_streamed_blocks_stay_on_the_gpu(data):
    train, _ = data
    X = torch.cat([SPEC(train[i].waveform) for i in range(len(train))], dim=1)
    model = NMF(6, n_iter=40, device="cuda", progress=False)
    H = model.fit_transform(X)
    assert H.device.type == "cpu" and model.W.device.type == "cuda"
    assert beta_divergence(X, model.reconstruct(H)) < beta_divergence(X, torch.zeros_like(X))
    other = NMF(6, n_iter=40, device="cuda", progress=False)
    other.W = model.W.cpu()  # a dictionary assigned from the CPU follows the model to the GPU
    torch.testing.assert_close(other.transform(X), model.transform(X))
    # A cached FrameBlocks is copied to the GPU once and fitted as the whole tensor is.
    blocks = FrameBlocks(train, SPEC, block_frames=500)
    streamed = NMF(6, n_iter=40, device="cuda", progress=False).fit(blocks)
    whole = NMF(6, n_iter=40, device="cuda", progress=False).fit(blocks.frames())
    torch.testing.assert_close(streamed.W, whole.W, atol=1e-4, rtol=1e-3)


def test_train_interpreter_puts_the_classifier_back_where_it_was():
    from l2i.book import artifacts

    tiny = artifacts.Recipe(
        "scenes", n_per_class=2, n_components=8, nmf_iter=5, classifier_width=4, classifier_epochs=1,
        interpreter_epochs=1, layers=("block3", "block4"),
    )
    model, _ = artifacts.classifier(tiny, progress=False)
    model.cuda()
    interp = artifacts.train_interpreter(tiny, model, progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert all(p.device.type == "cpu" for p in interp.parameters())


def chapter_script(path) -> str:
    """A chapter's code cells as one Python script; IPython's ``%`` lines (the Colab install) become
    ``pass``, so the script runs without a Jupyter kernel."""
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return re.sub(r"(?m)^(\s*)%.*$", r"\1pass", "\n\n".join(code))


@pytest.fixture(scope="module")
def book_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("l2i-cache")  # shared, in order: chapter 4 reuses chapter 3's classifier


@pytest.mark.parametrize("chapter", EXECUTED, ids=lambda p: p.stem)
def test_every_chapter_runs_on_the_gpu(chapter, book_cache, tmp_path):
    """What a reader on Colab does: every executed chapter, top to bottom, with the package picking
    the GPU (chapter 2 once compared the GPU dictionary with a CPU tensor)."""
    script = tmp_path / f"{chapter.stem}.py"
    script.write_text(chapter_script(chapter))
    env = dict(os.environ, L2I_CACHE=str(book_cache), MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, str(script)], cwd=chapter.parent, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"{chapter.name} failed on the GPU:\n{run.stderr[-3000:]}"



def test_probabilities_on_the_gpu_are_refused_with_the_message():
    from l2i.reading import ClassifierReader

    class Softmax(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8000, 3)

        def forward(self, x):
            return self.net(x[..., :8000] if x.shape[-1] >= 8000 else torch.nn.functional.pad(x, (0, 8000 - x.shape[-1]))).softmax(1)

    with pytest.raises(ValueError, match="remove the final softmax"):
        ClassifierReader(Softmax().cuda(), ["net"], 8000)
