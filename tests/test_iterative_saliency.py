"""Iterative saliency (Thakur & Fischmeister 2020): the revision rule in its limiting cases (a model that is
always sure, one that never is), range and shape, batch independence, seeding, model state, input checks."""
import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_utils.explainers.base import get
from course_utils.explainers.iterative_saliency import IterativeSaliency
from course_utils.models.architectures import ShallowCNN1D


class ConstantModel(nn.Module):
    """Two classes with fixed logits, whatever the input: class 0 has probability ``p``."""

    def __init__(self, p: float):
        super().__init__()
        logit = torch.log(torch.tensor(p / (1 - p))) if 0 < p < 1 else torch.tensor(1e4 if p == 1 else -1e4)
        self.register_buffer("logits", torch.stack([logit, torch.tensor(0.0)]))

    def forward(self, x):
        return self.logits.expand(x.shape[0], 2) + 0 * x.flatten(1).sum(1, keepdim=True)


def test_a_model_that_is_never_sure_flips_the_mask_every_step():
    # p = 0: every preserved cell is dropped (r > 1 never holds), every masked one returns (r > 0), Δp = 0 so no
    # down-weighting; the masks alternate M, 1 − M and, upsampling being linear with U(1) = 1, average to ½.
    x = torch.rand(2, 1, 8, generator=torch.Generator().manual_seed(4))
    for iterations in (2, 6):
        saliency = IterativeSaliency(ConstantModel(0.0), iterations=iterations, cells=8,
                                     progress=False).attribute(x, 0)
        torch.testing.assert_close(saliency, torch.full_like(x, 0.5))


def test_a_model_that_is_always_sure_keeps_the_initial_mask():
    # p = 1: preserved cells stay (r > 0), masked ones never return (r > 1), so S = U(M₀) for every T.
    x = torch.rand(1, 1, 8, generator=torch.Generator().manual_seed(5))
    runs = [IterativeSaliency(ConstantModel(1.0), iterations=t, cells=8, seed=3, progress=False).attribute(x, 0)
            for t in (1, 5)]
    torch.testing.assert_close(runs[0], runs[1])
    # one sample per cell, so no shift: U(M₀) is the linear 8 → 9 upsampling of a binary grid, cropped to 8
    grids = torch.tensor(list(itertools.product([0.0, 1.0], repeat=8))).unsqueeze(1)
    upsampled = F.interpolate(grids, size=9, mode="linear", align_corners=False)[..., :8]
    assert torch.isclose(upsampled, runs[0][0]).all(-1).any()


def test_initial_keep_sets_the_share_of_preserved_cells_for_a_sure_model():
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    saliency = IterativeSaliency(ConstantModel(1.0), iterations=1, cells=32, initial_keep=0.3, seed=1,
                                 progress=False).attribute(x, 0)
    assert saliency.mean().item() == pytest.approx(0.3, abs=0.06)   # 1024 Bernoulli(0.3) cells: σ ≈ 0.014


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_map_lies_in_unit_range_and_is_broadcast_over_channels(which, cnn1d, vgg, signals, images):
    model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
    saliency = IterativeSaliency(model, iterations=20, progress=False).attribute(x)
    assert saliency.shape == x.shape
    assert saliency.min() >= 0 and saliency.max() <= 1
    assert torch.equal(saliency, saliency[:, :1].expand_as(saliency))


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_batched_run_equals_single_image_runs(which, float64_case):
    model64, x64 = float64_case(which)
    explainer = IterativeSaliency(model64, iterations=25, seed=9, progress=False)
    target = torch.tensor([0, 3, 5])
    together = explainer.attribute(x64, target)
    for i in range(x64.shape[0]):
        torch.testing.assert_close(together[i:i + 1], explainer.attribute(x64[i:i + 1], target[i:i + 1]),
                                   rtol=0, atol=1e-12)
    assert any(not torch.allclose(together[0], together[i]) for i in range(1, x64.shape[0]))  # not vacuous


def test_same_seed_same_map_other_seed_other_map(cnn1d, signals):
    run = lambda seed: IterativeSaliency(cnn1d, iterations=10, seed=seed, progress=False).attribute(signals)
    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_global_rng_is_untouched(cnn1d, signals):
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    IterativeSaliency(cnn1d, iterations=3, progress=False).attribute(signals)
    assert torch.equal(torch.rand(3), expected)


def test_model_state_is_restored():
    torch.manual_seed(4)
    model = ShallowCNN1D()
    model.train()
    model.features[3].inplace = True
    IterativeSaliency(model, iterations=2, progress=False).attribute(torch.randn(2, 1, 40), target=1)
    assert all(m.training for m in model.modules())
    assert model.features[3].inplace is True
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


@pytest.mark.parametrize("options", [
    {"iterations": 0}, {"cells": 0}, {"cells": 2.0}, {"initial_keep": 0}, {"initial_keep": 1.0},
    {"lr": -0.1}, {"lr": 2}, {"baseline": float("nan")}, {"seed": 1.5},
])
def test_bad_options_raise(options, cnn1d):
    with pytest.raises(ValueError):
        IterativeSaliency(cnn1d, **options)


def test_bad_inputs_raise(cnn1d, signals):
    explainer = IterativeSaliency(cnn1d, iterations=1, progress=False)
    with pytest.raises(ValueError):
        explainer.attribute(signals[0])
    with pytest.raises(ValueError):
        explainer.attribute(signals.int())


def test_registered_by_name():
    assert get("iterative_saliency") is IterativeSaliency
