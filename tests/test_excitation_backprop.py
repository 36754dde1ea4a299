"""Excitation backprop (Zhang et al. 2016): marginal winning probabilities and the contrastive variant against
hand-computed two-layer networks (average and max pooling), the probabilities' sum on the kit's models, options.
"""
import copy

import pytest
import torch
from torch import nn

from course_utils.explainers import get
from course_utils.explainers.excitation_backprop import ContrastiveExcitationBackprop, ExcitationBackprop
from course_utils.models import VGG7, ShallowCNN1D


def two_layer_average():
    """conv (1 → 2 channels, kernel 1, weights (1, −1), biases (0, 1)) → ReLU → global average pool → linear
    with W = [[1, −2], [2, 1]]."""
    model = nn.Sequential(nn.Conv1d(1, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[[1.0]], [[-1.0]]]))
        model[0].bias.copy_(torch.tensor([0.0, 1.0]))
        model[4].weight.copy_(torch.tensor([[1.0, -2.0], [2.0, 1.0]]))
        model[4].bias.copy_(torch.tensor([5.0, -5.0]))   # biases take no part in the MWP
    return model.double().eval()


X = torch.tensor([[[1.0, 2.0, 0.5]]], dtype=torch.float64)
# responses after the ReLU: channel 0 (1, 2, 0.5), channel 1 (0, 0, 0.5); pooled a = (3.5/3, 0.5/3)


def test_mwp_by_hand_average_pooling():
    model = two_layer_average()
    # class 0: W⁺ = (1, 0), so P(a) = (1, 0); the average pool shares P in proportion to the responses:
    # channel 0 gets (1, 2, 0.5) / 3.5
    torch.testing.assert_close(ExcitationBackprop(model).attribute(X, 0), torch.tensor([[[2 / 7, 4 / 7, 1 / 7]]],
                                                                                      dtype=torch.float64))
    # class 1: W⁺ = (2, 1), z = 2 · 3.5/3 + 0.5/3 = 2.5: P(a) = (14/15, 1/15); position 2 gets 14/15 · 0.5/3.5
    # from channel 0 and 1/15 from channel 1
    torch.testing.assert_close(ExcitationBackprop(model).attribute(X, 1),
                               torch.tensor([[[4 / 15, 8 / 15, 3 / 15]]], dtype=torch.float64))


def test_contrastive_mwp_by_hand():
    model = two_layer_average()
    # class 0's dual unit has weights (−1, 2), W⁺ = (0, 2): P(a) = (0, 1), map (0, 0, 1); c-MWP is the positive
    # part of MWP − dual (the authors' code, TorchRay): (2/7, 4/7, max(1/7 − 1, 0))
    expected = torch.tensor([[[2 / 7, 4 / 7, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(ContrastiveExcitationBackprop(model).attribute(X, 0), expected)
    torch.testing.assert_close(ExcitationBackprop(model, contrastive=True).attribute(X, 0), expected)
    # class 1's dual has weights (−2, −1): no positive weight, no probability, c-MWP = MWP
    torch.testing.assert_close(ContrastiveExcitationBackprop(model).attribute(X, 1),
                               ExcitationBackprop(model).attribute(X, 1))


def test_mwp_by_hand_max_pooling_and_negative_weights():
    """conv (1 → 1, kernel 2, weights (1, −1), no bias) → ReLU → max pool 2 → flatten → linear (1, 3) → 1 class.

    x = (3, 1, 0, 2, 1): conv responses (2, 1, 0, 1) after ReLU; max pool keeps 2 (position 0) and 1
    (position 3); linear z = 1 · 2 + 3 · 1 = 5, P = (2/5, 3/5) to the two winners. The map is read at the ReLU
    (4 positions) and linearly upsampled to the 5 input points."""
    model = nn.Sequential(nn.Conv1d(1, 1, 2, bias=False), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                          nn.Linear(2, 1, bias=False)).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[[1.0, -1.0]]]))
        model[4].weight.copy_(torch.tensor([[1.0, 3.0]]))
    x = torch.tensor([[[3.0, 1.0, 0.0, 2.0, 1.0]]], dtype=torch.float64)
    read = torch.tensor([[[2 / 5, 0.0, 0.0, 3 / 5]]], dtype=torch.float64)
    expected = nn.functional.interpolate(read, size=5, mode="linear", align_corners=False)
    torch.testing.assert_close(ExcitationBackprop(model).attribute(x, 0), expected)


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_probabilities_sum_to_one_on_the_kit_models(which):
    torch.manual_seed(0)
    model, x = (ShallowCNN1D(), torch.randn(3, 1, 40)) if which == "1d" else (VGG7(), torch.rand(3, 3, 16, 16))
    model = model.double().eval()
    maps = ExcitationBackprop(model).attribute(x.double(), [0, 3, 5])
    assert (maps >= 0).all()
    torch.testing.assert_close(maps[:, 0].flatten(1).sum(1), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_contrastive_is_the_positive_part_of_map_minus_dual_map(which):
    """The dual unit computed independently: a copy of the model with the top layer's weights negated, read by
    plain excitation backprop. The first ReLU has the input's resolution, so no upsampling is involved."""
    torch.manual_seed(0)
    model, x = (ShallowCNN1D(), torch.randn(3, 1, 40)) if which == "1d" else (VGG7(), torch.rand(3, 3, 16, 16))
    model, x, target = model.double().eval(), x.double(), [0, 3, 5]
    dual = copy.deepcopy(model)
    with torch.no_grad():
        dual.classifier.weight.neg_()
    difference = ExcitationBackprop(model).attribute(x, target) - ExcitationBackprop(dual).attribute(x, target)
    assert (difference < 0).any() and (difference > 0).any()
    contrastive = ContrastiveExcitationBackprop(model).attribute(x, target)
    torch.testing.assert_close(contrastive, difference.clamp(min=0))


def test_layer_option_reads_deeper():
    torch.manual_seed(0)
    model = VGG7().double().eval()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    deep = ExcitationBackprop(model, layer="features.8").attribute(x, 1)   # last ReLU, 4 × 4, upsampled
    assert deep.shape == x.shape
    assert not torch.allclose(deep, ExcitationBackprop(model).attribute(x, 1))


def test_bad_options_raise():
    with pytest.raises(ValueError, match="parameters"):
        ExcitationBackprop(nn.Sequential(nn.Conv1d(1, 2, 1), nn.BatchNorm1d(2), nn.ReLU()))
    with pytest.raises(ValueError, match="nn.Linear"):
        ContrastiveExcitationBackprop(nn.Sequential(nn.Conv1d(1, 2, 1), nn.ReLU()))
    with pytest.raises(ValueError, match="ReLU"):
        ExcitationBackprop(nn.Sequential(nn.Flatten(), nn.Linear(3, 2)))
    with pytest.raises(ValueError):
        ExcitationBackprop(two_layer_average(), contrastive="yes")


def test_model_left_as_found():
    model = two_layer_average().train()
    model[1].inplace = True
    ContrastiveExcitationBackprop(model).attribute(X, 0)
    assert model.training and model[1].inplace
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_registered_by_name():
    assert get("excitation_backprop") is ExcitationBackprop
    assert get("contrastive_excitation_backprop") is ContrastiveExcitationBackprop
