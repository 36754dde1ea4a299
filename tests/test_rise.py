"""RISE (Petsiuk et al. 2018): Eq. 6 against direct evaluation, Sec. 3.2 mask properties, contract checks."""
import math

import pytest
import torch

from course_utils.explainers.rise import RISE, generate_masks
from course_utils.models.architectures import VGG7, ShallowCNN1D


@pytest.fixture(scope="module")
def cnn1d():
    torch.manual_seed(0)
    return ShallowCNN1D().eval()


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(1)
    return VGG7().eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def target_prob(model, x, target):
    with torch.no_grad():
        return model(x).softmax(1)[torch.arange(x.shape[0]), target]


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_all_ones_masks_give_the_unmasked_probability_everywhere(which, cnn1d, vgg, signals, images):
    model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
    target = torch.arange(x.shape[0])
    attr = RISE(model, n_masks=16, p=1.0).attribute(x, target)
    expected = target_prob(model, x, target)
    assert attr.shape == x.shape
    for i in range(x.shape[0]):
        torch.testing.assert_close(attr[i], expected[i].expand_as(attr[i]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_explicit_masks_follow_eq6(which, cnn1d, vgg, signals, images):
    model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
    size = x.shape[2:]
    g = torch.Generator().manual_seed(4)
    masks = torch.stack([torch.ones(size), torch.zeros(size), torch.rand(size, generator=g),
                         torch.rand(size, generator=g).round()])
    target = torch.tensor([1, 0, 2][: x.shape[0]])
    attr = RISE(model, masks=masks, p=0.5, batch_size=3).attribute(x, target)
    for i in range(x.shape[0]):
        scores = [target_prob(model, (x[i] * m)[None], target[i:i + 1])[0] for m in masks]
        expected = sum(s * m for s, m in zip(scores, masks)) / (len(masks) * 0.5)
        for c in range(x.shape[1]):
            torch.testing.assert_close(attr[i, c], expected, rtol=1e-5, atol=1e-6)


def test_tiny_hand_computed_case():
    # softmax([0, s]) with s = sum of the input gives P_1 = sigmoid(sum(x ⊙ M)); two masks on a 2-point signal.
    class SumModel(torch.nn.Module):
        def forward(self, x):
            s = x.flatten(1).sum(1)
            return torch.stack([torch.zeros_like(s), s], 1)

    x = torch.tensor([[[1.0, 2.0]]])
    masks = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    attr = RISE(SumModel(), masks=masks, p=0.5).attribute(x, 1)
    s1, s2 = 1 / (1 + math.exp(-1.0)), 1 / (1 + math.exp(-2.5))
    expected = torch.tensor([(s1 * 1.0 + s2 * 0.5) / 1.0, (s1 * 0.0 + s2 * 1.0) / 1.0])
    torch.testing.assert_close(attr[0, 0], expected)


@pytest.mark.parametrize("size, cells", [((40,), 10), ((64, 64), 8), ((30, 45), 7)])
@pytest.mark.parametrize("p", [0.5, 0.25])
def test_masks_are_smooth_in_unit_range_with_mean_p(size, cells, p):
    masks = generate_masks(size, 600, cells, p=p, seed=5)
    assert masks.shape == (600,) + size
    assert masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean().item() - p) < 0.03
    # Not binary: bilinear upsampling makes intermediate values.
    assert ((masks > 0.05) & (masks < 0.95)).float().mean() > 0.2
    # Smooth: between neighbouring elements a linear ramp over one upsampled cell changes by at most its slope.
    for d, s in enumerate(size):
        cell = math.ceil(s / cells)
        slope = cells / ((cells + 1) * cell)
        steps = masks.diff(dim=d + 1).abs().max().item()
        assert steps <= slope + 1e-5


def test_masks_have_random_shifts():
    # With a random crop shift, two masks from the same grid pattern need not align with the cell borders:
    # the per-mask argmax positions of a single-on-cell grid vary.
    masks = generate_masks((40,), 400, 4, p=0.25, seed=6)
    single = masks[(masks.amax(1) == 1)]
    assert single.shape[0] > 10
    assert len(set(single.argmax(1).tolist())) > 4


def test_seed_reproducibility_and_mask_cache(cnn1d, signals):
    a = RISE(cnn1d, n_masks=64, seed=7)
    first = a.attribute(signals)
    assert len(a.masks_cache) == 1
    cached = next(iter(a.masks_cache.values()))
    second = a.attribute(signals)
    assert next(iter(a.masks_cache.values())) is cached
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, RISE(cnn1d, n_masks=64, seed=7).attribute(signals), rtol=0, atol=0)
    assert not torch.equal(first, RISE(cnn1d, n_masks=64, seed=8).attribute(signals))
    torch.testing.assert_close(generate_masks((40,), 50, 10, seed=9), generate_masks((40,), 50, 10, seed=9,
                                                                                       chunk=7), rtol=0, atol=0)


@pytest.mark.parametrize("which, batch_size", [("1d", 2), ("1d", 7), ("2d", 5)])
def test_batched_equals_per_image(which, batch_size, cnn1d, vgg, signals, images):
    model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
    explainer = RISE(model, n_masks=6, batch_size=batch_size)
    together = explainer.attribute(x)
    alone = torch.cat([explainer.attribute(x[i:i + 1]) for i in range(x.shape[0])])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-7)
    assert torch.equal(together[:, :1].expand_as(together), together)


def test_model_state_is_restored(vgg, images):
    vgg.train()
    vgg.features[0].weight.requires_grad_(False)
    before = [(m.training, sum(len(h) for h in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks)))
              for m in vgg.modules()]
    grads = [p.requires_grad for p in vgg.parameters()]
    RISE(vgg, n_masks=4).attribute(images)
    assert [(m.training, sum(len(h) for h in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks)))
            for m in vgg.modules()] == before
    assert [p.requires_grad for p in vgg.parameters()] == grads
    vgg.features[0].weight.requires_grad_(True)
    vgg.eval()


@pytest.mark.parametrize("options", [{"p": 0.0}, {"p": 1.5}, {"n_masks": 0}, {"cells": 0}, {"batch_size": -1},
                                     {"seed": 1.5}, {"masks": torch.ones(3, 40) * 2},
                                     {"masks": torch.ones(0, 40)}, {"masks": [[1.0]]}])
def test_bad_options_raise(options, cnn1d):
    with pytest.raises(ValueError):
        RISE(cnn1d, **options)


def test_bad_inputs_raise(cnn1d, signals):
    with pytest.raises(ValueError):
        RISE(cnn1d, masks=torch.ones(3, 39)).attribute(signals)
    with pytest.raises(ValueError):
        RISE(cnn1d, cells=41, n_masks=2).attribute(signals)
    with pytest.raises(ValueError):
        RISE(cnn1d).attribute(signals[0])
    with pytest.raises(ValueError):
        generate_masks((0,), 2, 1)
