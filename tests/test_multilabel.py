"""Multi-label interpretation end to end: scene mixtures labelled with both classes, a sigmoid
classifier trained on them, its interpreter, and metrics that explain every decided class and
score each with its own probability."""

import pytest
import torch

from l2i.audio import Spectrogram
from l2i.datasets import Mixtures, SyntheticScenes
from l2i.interpreter import Interpreter
from l2i.metrics import average_drop, evaluate, faithfulness, input_fidelity
from l2i.models import MelCNN, accuracy, train_classifier
from l2i.nmf import NMF, FrameBlocks

SPEC = Spectrogram(8000, 256, 64)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    scenes = SyntheticScenes("train", n_per_class=4)
    train = Mixtures(scenes, n_mixtures=48, seed=0, multilabel=True)
    val = Mixtures(SyntheticScenes("val", n_per_class=2), n_mixtures=12, seed=1, multilabel=True)
    f = MelCNN(8, width=8)
    train_classifier(f, train, val, epochs=4, batch_size=16, multilabel=True, progress=False)
    nmf = NMF(16, n_iter=20, progress=False).fit(FrameBlocks(scenes, SPEC), spectrogram=SPEC)
    interp = Interpreter(f, ["block2", "block4"], nmf, multilabel=True)
    interp.fit(train, val, epochs=3, batch_size=16, lr=3e-3, progress=False)
    return train, val, f, interp


def test_mixtures_are_labelled_with_both_classes(trained):
    train, *_ = trained
    item = train[0]
    assert item.label.shape == (8,) and item.label.sum() == 2
    assert set(item.label.nonzero().flatten().tolist()) == set(item.source_labels)


def test_metrics_score_each_class_with_its_own_sigmoid_probability():
    logits = torch.tensor([[2.0, 2.0, -3.0]])  # two classes decided at once
    out = torch.tensor([[-2.0, 2.0, -3.0]])
    ff = faithfulness(logits, out, torch.tensor([0]), multilabel=True)
    torch.testing.assert_close(ff, torch.sigmoid(torch.tensor([2.0])) - torch.sigmoid(torch.tensor([-2.0])), check_dtype=False)
    assert float(faithfulness(logits, out, torch.tensor([1]), multilabel=True)) == 0.0  # class 1 untouched
    # with softmax the two decided classes would compete: 0.5 each, not 0.88
    assert float(input_fidelity(logits, torch.tensor([1]), multilabel=True)) == 1.0
    assert float(input_fidelity(logits, torch.tensor([1]))) == 0.0  # argmax is class 0
    assert float(average_drop(logits, out, torch.tensor([0]), multilabel=True)) > 70


def test_every_decided_class_is_explained_and_scored(trained):
    _, val, f, interp = trained
    scores, per_item = evaluate(interp.explain, interp.classify, val, multilabel=True, per_clip=True)
    logits = torch.cat([interp.classify(val[i].waveform) for i in range(len(val))])
    decided = (torch.sigmoid(logits) > 0.5).sum(1).clamp_min(1)
    assert scores["n"] == int(decided.sum()) == per_item["FF"].numel()
    assert per_item["SI-SDRi"].numel() == 2 * len(val)  # each source's class explained
    assert 0 <= scores["fidelity"] <= 1 and 0 <= scores["Fid-In"] <= 1
    assert 0 <= accuracy(f, val, multilabel=True) <= 1
