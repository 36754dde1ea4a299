"""Iterative saliency (Thakur & Fischmeister 2020, Algorithm 1): the explainer against Algorithm 1 written out
with Python sets for one signal, the printed weights' collapse to 0, limiting cases (a model that is always /
never sure), the helpers by hand, range and shape, batch independence, seeding, model state, input checks."""
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_utils.explainers.base import get
from course_utils.explainers.iterative_saliency import IterativeSaliency, draw_subset, total_variation
from course_utils.models.architectures import ShallowCNN1D


class ConstantModel(nn.Module):
    """Two classes with fixed logits, whatever the input: class 0 has probability ``p``."""

    def __init__(self, p: float):
        super().__init__()
        logit = torch.log(torch.tensor(p / (1 - p))) if 0 < p < 1 else torch.tensor(1e4 if p == 1 else -1e4)
        self.register_buffer("logits", torch.stack([logit, torch.tensor(0.0)]))

    def forward(self, x):
        return self.logits.expand(x.shape[0], 2) + 0 * x.flatten(1).sum(1, keepdim=True)


def algorithm_1(model, x, target, cells, iterations, keep, lr, weights, seed):
    """Algorithm 1 for one (1, 1, L) signal, written with Python sets and the explainer's random draws in the
    explainer's order: M_0, then per step the shift, the order of positions and the two rounding draws."""
    g = torch.Generator().manual_seed(seed)
    length = x.shape[-1]
    cell = math.ceil(length / cells)
    on = {i for i, v in enumerate(torch.rand(1, cells, generator=g, dtype=x.dtype)[0].tolist()) if v < keep}
    m = [1.0 if i in on else 0.0 for i in range(cells)] if weights == "printed" else [0.0] * cells
    previous = 0.0
    for _ in range(iterations):
        shift = int(torch.randint(0, cell, (1,), generator=g))
        shown = m if weights == "printed" else [1.0 if i in on else 0.0 for i in range(cells)]
        big = F.interpolate(torch.tensor(shown, dtype=x.dtype).view(1, 1, -1), size=(cells + 1) * cell,
                            mode="linear", align_corners=False)
        u = big[..., shift:shift + length]
        with torch.no_grad():
            p = model(u * x).softmax(1)[0, target].item()
        dp, previous = abs(p - previous), p
        order = torch.randperm(cells, generator=g).tolist()
        fraction = torch.rand(2, generator=g, dtype=x.dtype).tolist()
        kept, hidden = [i for i in order if i in on], [i for i in order if i not in on]
        chosen = set()
        for members, share, f in ((kept, p, fraction[0]), (hidden, 1 - p, fraction[1])):
            expected = len(members) * share
            count = math.floor(expected) + (f < expected - math.floor(expected))
            chosen |= set(members[:count])
        on = chosen
        if weights == "printed":
            new = [m[i] * dp if i in on else 0.0 for i in range(cells)]
            v = sum((new[i + 1] - new[i]) ** 2 for i in range(cells - 1))
        else:
            new = [m[i] + (dp if i in on else 0.0) for i in range(cells)]
            top = max(new) or 1.0
            v = sum(((new[i + 1] - new[i]) / top) ** 2 for i in range(cells - 1))
        m = [new[i] + lr * v * m[i] for i in range(cells)]
    if weights == "accumulated":
        m = [value / (max(m) or 1.0) for value in m]
    return F.interpolate(torch.tensor(m, dtype=x.dtype).view(1, 1, -1), size=length, mode="linear",
                         align_corners=False)


@pytest.mark.parametrize("weights,lr", [("accumulated", 0.0), ("accumulated", 0.05), ("printed", 0.0),
                                        ("printed", 0.5)])
def test_follows_algorithm_1_written_with_sets(weights, lr, float64_case):
    model, x = float64_case("1d")
    target = 2
    explainer = IterativeSaliency(model, iterations=12, cells=8, initial_keep=0.5, lr=lr, weights=weights,
                                  seed=4, progress=False)
    ours = explainer.attribute(x[:1], target)
    expected = algorithm_1(model, x[:1], target, 8, 12, 0.5, lr, weights, 4)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)


def test_printed_weights_collapse_to_zero_on_a_real_model(float64_case):
    # the printed product M_{i-1}·Δp, with 0 for every cell ever switched off, reaches exactly 0
    model, x = float64_case("1d")
    after = lambda t: IterativeSaliency(model, iterations=t, cells=8, initial_keep=0.9, weights="printed",
                                        seed=0, progress=False).attribute(x)
    assert after(1).amax() > 0
    assert torch.equal(after(60), torch.zeros_like(x))


@pytest.mark.parametrize("eta", [0.1, 1.0, 10.0])
def test_printed_weights_collapse_with_the_printed_v_line_switched_on(float64_case, eta):
    # η > 0 adds η·V·M_{i−1}: it rescales (here first inflates) M but cannot revive the erased cells
    model, x = float64_case("1d")
    after = lambda t: IterativeSaliency(model, iterations=t, cells=8, initial_keep=0.9, weights="printed",
                                        lr=eta, seed=0, progress=False).attribute(x)
    assert after(1).amax() > 0
    assert torch.equal(after(60), torch.zeros_like(x))


def test_a_constant_model_collapses_the_printed_weights_in_two_steps():
    # Δp = p at the first step (p_0 = 0), then 0: M_2 = M_1·0 + η V M_1 with V = V(0) = 0
    x = torch.rand(2, 1, 16, generator=torch.Generator().manual_seed(4))
    run = lambda t: IterativeSaliency(ConstantModel(0.7), iterations=t, cells=8, initial_keep=0.6, lr=0.3,
                                      weights="printed", progress=False).attribute(x, 0)
    assert run(1).amax() > 0
    assert torch.equal(run(2), torch.zeros_like(x))


def test_a_model_that_is_always_sure_keeps_the_initial_set():
    # p = 1: Λ1 = Λ_on, Λ2 = ∅; Δp = 1 once, then 0, so the accumulated map is U(1[Λ_on]) = the visits map
    x = torch.rand(1, 1, 8, generator=torch.Generator().manual_seed(5))
    run = lambda t, w: IterativeSaliency(ConstantModel(1.0), iterations=t, cells=8, weights=w, seed=3,
                                         progress=False).attribute(x, 0)
    torch.testing.assert_close(run(1, "accumulated"), run(7, "accumulated"))
    torch.testing.assert_close(run(7, "accumulated"), run(7, "visits"))
    assert 0 < run(7, "visits").mean() < 1


def test_a_model_that_is_never_sure_flips_the_set_every_step():
    # p = 0: Λ1 = ∅ and Λ2 = Λ_off, so the sets alternate M, 1 − M and the visits average to ½; Δp = 0 always,
    # so the accumulated weights stay 0
    x = torch.rand(2, 1, 8, generator=torch.Generator().manual_seed(4))
    for iterations in (2, 6):
        run = lambda w: IterativeSaliency(ConstantModel(0.0), iterations=iterations, cells=8, weights=w,
                                          progress=False).attribute(x, 0)
        torch.testing.assert_close(run("visits"), torch.full_like(x, 0.5))
        assert torch.equal(run("accumulated"), torch.zeros_like(x))


def test_total_variation_by_hand():
    grid = torch.tensor([[[[0.0, 1.0], [3.0, 1.0]]]])   # horizontal (0-1)², (3-1)²; vertical (0-3)², (1-1)²
    assert total_variation(grid).tolist() == [1 + 4 + 9 + 0]
    assert total_variation(torch.tensor([[[1.0, 0.5, 0.5]]])).tolist() == [0.25]


def test_draw_subset_takes_members_in_order_and_rounds_stochastically():
    members = torch.tensor([[1.0, 0, 1, 1, 0, 1]])
    order = torch.tensor([5, 4, 3, 2, 1, 0])
    # 4 members × 0.5 = 2 exactly: the first two members in the order, 5 and 3
    assert draw_subset(members, torch.tensor([0.5]), order, torch.tensor(0.99)).tolist() == [[0, 0, 0, 1, 0, 1]]
    # 4 × 0.6 = 2.4: three positions when the draw is below 0.4, two otherwise
    assert draw_subset(members, torch.tensor([0.6]), order, torch.tensor(0.39)).sum() == 3
    assert draw_subset(members, torch.tensor([0.6]), order, torch.tensor(0.41)).sum() == 2


@pytest.mark.parametrize("which", ["1d", "2d"])
@pytest.mark.parametrize("weights", ["accumulated", "visits"])
def test_map_lies_in_unit_range_and_is_broadcast_over_channels(which, weights, cnn1d, vgg, signals, images):
    model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
    saliency = IterativeSaliency(model, iterations=20, weights=weights, progress=False).attribute(x)
    assert saliency.shape == x.shape
    assert saliency.min() >= 0 and saliency.max() <= 1
    assert torch.equal(saliency, saliency[:, :1].expand_as(saliency))


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_batched_run_equals_single_image_runs(which, float64_case):
    model64, x64 = float64_case(which)
    explainer = IterativeSaliency(model64, iterations=25, seed=9, lr=0.01, progress=False)
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
    {"lr": -0.1}, {"baseline": float("nan")}, {"seed": 1.5}, {"weights": "product"},
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
