"""Drop % / Increase % (Chattopadhay 2018 Sec. 6.1) against hand-computed cases and torch-cam's metric.

torch-cam's ``ClassificationMetric`` multiplies the input by the (continuous, normalised) CAM and divides by
``Y + 1e-7``; ours keeps the top-k positions (a binary mask) and divides by ``Y``. The two coincide when the
CAM handed to torch-cam is the binary top-k mask itself, which is the case compared here (tolerance covers
the 1e-7).
"""
import math
from functools import partial

import pytest
import torch
from torchcam import metrics
from torch import nn

from course_utils.metrics import drop_increase, keep_top_k
from course_utils.models import ShallowCNN1D, VGG7


def sigmoid(s):
    return 1 / (1 + math.exp(-s))


class SumModel(nn.Module):
    """Two classes: logit 0 = sum of all inputs, logit 1 = 0, so p0 = sigmoid(sum x). A dropout layer makes
    any forward pass in training mode random."""

    def __init__(self):
        super().__init__()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        s = self.dropout(x).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_hand_computed_drop_and_increase():
    x = torch.tensor([[[0.5, 1.0, -0.5, 2.0]], [[1.0, -1.0, 1.0, -1.0]]])
    maps = torch.tensor([[0.2, 0.1, 0.9, 0.4], [0.8, 0.1, 0.7, 0.3]])
    # sample 0: predicted class 0 (sum 3); keeps positions 2, 3 → sum 1.5.
    # sample 1: sum 0 → p = (0.5, 0.5), argmax picks class 0; keeps positions 0, 2 → sum 2, O > Y.
    model = SumModel().train()
    r = drop_increase(model, x, maps, keep=0.5)
    y0, o0, y1, o1 = sigmoid(3.0), sigmoid(1.5), 0.5, sigmoid(2.0)
    assert r.target.tolist() == [0, 0]
    torch.testing.assert_close(r.y, torch.tensor([y0, y1]))
    torch.testing.assert_close(r.o, torch.tensor([o0, o1]))
    torch.testing.assert_close(r.drop_per_sample, torch.tensor([(y0 - o0) / y0, 0.0]))
    assert r.increased.tolist() == [False, True]
    assert r.drop == pytest.approx(100 * ((y0 - o0) / y0) / 2, rel=1e-5)
    assert r.increase == pytest.approx(50.0)
    assert model.training, "the model must be left in the mode it was found in"


def test_explicit_target_scores_that_class():
    x = torch.tensor([[[0.5, 1.0, -0.5, 2.0]]])
    maps = torch.tensor([[0.2, 0.1, 0.9, 0.4]])
    r = drop_increase(SumModel(), x, maps, target=1, keep=0.5)
    y, o = 1 - sigmoid(3.0), 1 - sigmoid(1.5)
    torch.testing.assert_close(r.y, torch.tensor([y]))
    torch.testing.assert_close(r.o, torch.tensor([o]))
    assert r.drop == 0.0 and r.increase == 100.0


def test_keep_top_k_keeps_every_channel_of_a_kept_position():
    x = torch.arange(1.0, 13.0).reshape(2, 2, 3)
    maps = torch.tensor([[0.0, 5.0, 1.0], [3.0, 2.0, 1.0]])
    out = keep_top_k(x, maps, keep=0.34)  # k = round(1.02) = 1
    expected = torch.tensor([[[0.0, 2.0, 0.0], [0.0, 5.0, 0.0]], [[7.0, 0.0, 0.0], [10.0, 0.0, 0.0]]])
    torch.testing.assert_close(out, expected)


def test_ties_keep_the_lower_flat_index():
    x = torch.ones(1, 1, 5)
    out = keep_top_k(x, torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0]]), keep=0.4)
    assert out.flatten().tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    out = keep_top_k(torch.ones(1, 1, 2, 3), torch.zeros(1, 2, 3), keep=0.5)
    assert out.flatten().tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_mnist1d_keep_point_three_keeps_12_of_40_points():
    maps = torch.rand(5, 40, generator=torch.Generator().manual_seed(0))
    out = keep_top_k(torch.ones(5, 1, 40), maps, keep=0.3)
    assert (out != 0).sum(dim=(1, 2)).tolist() == [12] * 5
    kept = out[:, 0] != 0
    assert all(maps[i][kept[i]].min() > maps[i][~kept[i]].max() for i in range(5))


def test_batch_size_does_not_change_the_result():
    torch.manual_seed(0)
    model = ShallowCNN1D()
    g = torch.Generator().manual_seed(1)
    x, maps = torch.randn(10, 1, 40, generator=g), torch.randn(10, 40, generator=g)
    a, b = drop_increase(model, x, maps, batch_size=3), drop_increase(model, x, maps, batch_size=256)
    torch.testing.assert_close(a.o, b.o)
    assert a.drop == pytest.approx(b.drop) and a.increase == b.increase


class BinaryCAM:
    """A stand-in torch-cam extractor that returns the given binary maps."""

    def __init__(self, model, maps):
        self.model, self.maps = model, maps

    def __call__(self, class_idx=None, scores=None, normalized=True, **kwargs):
        return [self.maps]

    def fuse_cams(self, cams):
        return cams[0]

    def _hooks_off(self):
        import contextlib
        return contextlib.nullcontext()


@pytest.mark.parametrize("shape,keep", [((16, 1, 40), 0.3), ((6, 3, 8, 8), 0.9)])
def test_matches_torchcam_on_binary_top_k_maps(shape, keep):
    torch.manual_seed(0)
    model = (ShallowCNN1D() if len(shape) == 3 else VGG7()).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(shape, generator=g)
    maps = torch.rand(shape[0], *shape[2:], generator=g)
    k = round(keep * maps[0].numel())
    top = maps.flatten(1).topk(k, dim=1).indices
    binary = torch.zeros_like(maps.flatten(1)).scatter_(1, top, 1.0).reshape(maps.shape)
    oracle = metrics.ClassificationMetric(BinaryCAM(model, binary), partial(torch.softmax, dim=-1))
    oracle.update(x)
    expected = oracle.summary()
    ours = drop_increase(model, x, maps, keep=keep)
    assert ours.drop / 100 == pytest.approx(expected["avg_drop"], abs=1e-5)
    assert ours.increase / 100 == pytest.approx(expected["conf_increase"], abs=1e-9)


@pytest.mark.parametrize("change,message", [
    (dict(maps=torch.rand(2, 1, 4)), "explain"),
    (dict(maps=torch.rand(3, 4)), "shape"),
    (dict(maps=torch.tensor([[0.1, float("nan"), 0.2, 0.3]] * 2)), "NaN"),
    (dict(keep=0.0), "keep"),
    (dict(keep=1.5), "keep"),
    (dict(target=2), "out of range"),
    (dict(target=[0, 1, 1]), "labels for a batch"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_input_raises_a_clear_value_error(change, message):
    args = dict(model=SumModel(), x=torch.ones(2, 1, 4), maps=torch.rand(2, 4), keep=0.5)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        drop_increase(**args)
