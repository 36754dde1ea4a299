"""Insertion / deletion curves (Petsiuk 2018 Sec. 4.1): hand-built curves and models, scipy's Gaussian filter,
and torch-cam's ``DeletionInsertionMetric`` (same definition when its ``steps`` gives our ``step`` and its
baseline is our start image: zeros for deletion, the blurred input for insertion)."""
import math
from functools import partial

import numpy as np
import pytest
import torch
from torchcam import metrics
from scipy import ndimage
from torch import nn

from course_utils.metrics import auc, deletion, gaussian_blur, insertion
from course_utils.models import ShallowCNN1D, VGG7


def sigmoid(s):
    return 1 / (1 + math.exp(-s))


class SumModel(nn.Module):
    """logit 0 = sum of the inputs, logit 1 = 0: p0 = sigmoid(sum x)."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_auc_of_hand_built_curves():
    f = torch.tensor([0.0, 0.5, 1.0])
    assert auc(torch.tensor([1.0, 0.5, 0.0]), f).item() == pytest.approx(0.5)
    assert auc(torch.tensor([0.0, 1.0, 1.0]), f).item() == pytest.approx(0.75)
    torch.testing.assert_close(auc(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]), f), torch.tensor([1.0, 0.25]))


def test_deletion_curve_by_hand():
    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    maps = torch.tensor([[0.1, 0.9, 0.5]])  # order: 1, 2, 0
    c = deletion(SumModel(), x, maps, step=1)
    expected = [sigmoid(6), sigmoid(4), sigmoid(1), 0.5]
    torch.testing.assert_close(c.fractions, torch.tensor([0, 1 / 3, 2 / 3, 1]))
    torch.testing.assert_close(c.scores, torch.tensor([expected]))
    area = sum((a + b) / 2 / 3 for a, b in zip(expected[:-1], expected[1:]))
    assert c.auc.item() == pytest.approx(area, rel=1e-6)


def test_step_groups_positions_and_shortens_the_last_step():
    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    c = deletion(SumModel(), x, torch.tensor([[0.1, 0.9, 0.5]]), step=2)
    torch.testing.assert_close(c.fractions, torch.tensor([0, 2 / 3, 1]))
    torch.testing.assert_close(c.scores, torch.tensor([[sigmoid(6), sigmoid(1), 0.5]]))


def test_insertion_curve_by_hand_from_the_blurred_signal():
    x = torch.tensor([[[0.0, 3.0, 0.0, 0.0, -1.0]]])
    maps = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.5]])  # order 1, 4, 0, 2, 3 (ties: lower index first)
    blurred = ndimage.gaussian_filter1d(x.numpy()[0, 0].astype(np.float64), 1.0, mode="nearest", truncate=3.0)
    c = insertion(SumModel(), x, maps, step=1, blur_sigma=1.0)
    current = blurred.copy()
    expected = [sigmoid(current.sum())]
    for i in [1, 4, 0, 2, 3]:
        current[i] = x[0, 0, i].item()
        expected.append(sigmoid(current.sum()))
    torch.testing.assert_close(c.scores, torch.tensor([expected], dtype=torch.float32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sigma", [1.0, 1.5, 5.0])
def test_gaussian_blur_matches_scipy(sigma):
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(2, 1, 40, generator=g, dtype=torch.float64)
    ref1 = ndimage.gaussian_filter1d(x1.numpy(), sigma, axis=-1, mode="nearest", truncate=3.0)
    torch.testing.assert_close(gaussian_blur(x1, sigma), torch.from_numpy(ref1))
    x2 = torch.rand(2, 3, 9, 12, generator=g, dtype=torch.float64)
    ref2 = ndimage.gaussian_filter(x2.numpy(), (0, 0, sigma, sigma), mode="nearest", truncate=3.0)
    torch.testing.assert_close(gaussian_blur(x2, sigma), torch.from_numpy(ref2))


class FixedCAM:
    """A stand-in torch-cam extractor that returns the given maps."""

    def __init__(self, model, maps):
        self.model, self.maps = model, maps

    def __call__(self, class_idx=None, scores=None, normalized=True, **kwargs):
        return [self.maps]

    def fuse_cams(self, cams):
        return cams[0]

    def _hooks_off(self):
        import contextlib
        return contextlib.nullcontext()


@pytest.mark.parametrize("shape,steps,step", [((6, 1, 40), 40, 1), ((6, 1, 40), 8, 5), ((3, 3, 8, 8), 8, 8)])
def test_matches_torchcam(shape, steps, step):
    torch.manual_seed(0)
    model = (ShallowCNN1D() if len(shape) == 3 else VGG7()).eval()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(shape, generator=g)
    maps = torch.rand(shape[0], *shape[2:], generator=g)
    axes = (0, 0, *[2.0] * (len(shape) - 2))
    blurred = torch.from_numpy(ndimage.gaussian_filter(x.double().numpy(), axes, mode="nearest", truncate=3.0))
    softmax = partial(torch.softmax, dim=-1)
    oracle_del = metrics.DeletionInsertionMetric(FixedCAM(model, maps), softmax, steps=steps)
    oracle_del.update(x)
    oracle_ins = metrics.DeletionInsertionMetric(FixedCAM(model, maps), softmax, steps=steps,
                                                 baseline=blurred.float())
    oracle_ins.update(x)
    assert deletion(model, x, maps, step=step).mean_auc == pytest.approx(oracle_del.summary()["deletion_auc"],
                                                                         abs=1e-6)
    assert insertion(model, x, maps, step=step, blur_sigma=2.0).mean_auc == pytest.approx(
        oracle_ins.summary()["insertion_auc"], abs=1e-5)


def test_curve_ends_are_the_original_and_black_scores_and_batching_is_invisible():
    torch.manual_seed(0)
    model = ShallowCNN1D().train()
    g = torch.Generator().manual_seed(4)
    x, maps = torch.randn(7, 1, 40, generator=g), torch.randn(7, 40, generator=g)
    a = deletion(model, x, maps, step=3, batch_size=5)
    b = deletion(model, x, maps, step=3, batch_size=1000)
    torch.testing.assert_close(a.scores, b.scores)
    assert model.training
    with torch.no_grad():
        model.eval()
        p = model(x).softmax(1)
        p0 = model(torch.zeros_like(x)).softmax(1)
    t = p.argmax(1)
    torch.testing.assert_close(a.scores[:, 0], p[torch.arange(7), t])
    torch.testing.assert_close(a.scores[:, -1], p0[torch.arange(7), t])
    ins = insertion(model, x, maps, step=3)
    torch.testing.assert_close(ins.scores[:, -1], p[torch.arange(7), t])


@pytest.mark.parametrize("kwargs,message", [
    (dict(step=0), "step"), (dict(step=5), "step"), (dict(maps=torch.rand(2, 3)), "shape"),
    (dict(target=3), "out of range"), (dict(blur_sigma=0.0), "sigma"),
])
def test_bad_input_raises_a_clear_value_error(kwargs, message):
    args = dict(model=SumModel(), x=torch.ones(2, 1, 4), maps=torch.rand(2, 4))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        insertion(**args)
