"""Guided backpropagation (Springenberg et al. 2015) against captum's ``GuidedBackprop``, a hand-computed ReLU
case, the model left as found, and a model it cannot treat."""
import pytest
import torch
from captum.attr import GuidedBackprop as CaptumGuidedBackprop
from torch import nn

from course_utils.explainers import get
from course_utils.explainers.guided_backprop import GuidedBackprop
from course_utils.models import VGG7, ShallowCNN1D

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU activations")


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_matches_captum(which):
    torch.manual_seed(0)
    model, x = (ShallowCNN1D(), torch.randn(3, 1, 40)) if which == "1d" else (VGG7(), torch.rand(3, 3, 16, 16))
    model.eval()
    target = torch.tensor([1, 4, 6])
    ours = GuidedBackprop(model).attribute(x, target)
    theirs = CaptumGuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=target).detach()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())
    # not the plain gradient: the backward ReLU rule changes the map
    x_grad = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(model(x_grad).gather(1, target[:, None]).sum(), x_grad)
    assert (ours - plain).abs().max() > 0.1 * plain.abs().max()


class _TwoUnits(nn.Module):
    """y = v · relu(W x) with W = [[1, −1], [2, 1]], v = (1, −3): one hidden unit gets a negative signal."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(2, 2, bias=False)
        self.relu = nn.ReLU()
        self.out = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 1.0]]))
            self.out.weight.copy_(torch.tensor([[1.0, -3.0], [0.0, 0.0]]))

    def forward(self, x):
        return self.out(self.relu(self.hidden(x.flatten(1))))


def test_hand_computed_relu_rule():
    # x = (1, 0.5): hidden pre-activations (0.5, 2.5), both active; arriving signal (1, −3).
    # gradient: Wᵀ (1, −3) = (1 − 6, −1 − 3) = (−5, −4); guided: the −3 is clamped, Wᵀ (1, 0) = (1, −1)
    x = torch.tensor([[[1.0, 0.5]]])
    assert GuidedBackprop(_TwoUnits()).attribute(x, 0).flatten().tolist() == [1.0, -1.0]


def test_model_left_as_found_with_in_place_relus():
    model = _TwoUnits().train()
    model.relu.inplace = True
    GuidedBackprop(model).attribute(torch.tensor([[[1.0, 0.5]]]), 0)
    assert model.training and model.relu.inplace
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_model_without_relu_modules_is_refused():
    with pytest.raises(ValueError, match="nn.ReLU"):
        GuidedBackprop(nn.Sequential(nn.Flatten(), nn.Linear(4, 2))).attribute(torch.rand(2, 1, 4))


def test_registered_by_name():
    assert get("guided_backprop") is GuidedBackprop
