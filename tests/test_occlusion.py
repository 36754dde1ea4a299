"""Occlusion (Zeiler & Fergus 2014) against captum's ``Occlusion`` (logit and probability, 1-D and 2-D, stride
smaller and equal to the window, uncovered elements), a hand-computed case, options."""
import pytest
import torch
from captum.attr import Occlusion as CaptumOcclusion
from torch import nn

from course_utils.explainers import get
from course_utils.explainers.occlusion import Occlusion, window_masks
from course_utils.models import VGG7, ShallowCNN1D


@pytest.mark.parametrize(("which", "window", "stride"),
                         [("1d", 5, 1), ("1d", 7, 3), ("2d", 4, 4), ("2d", (5, 3), (3, 2))])
@pytest.mark.parametrize("score", ["logit", "probability"])
def test_matches_captum(which, window, stride, score):
    torch.manual_seed(0)
    model, x = (ShallowCNN1D(), torch.randn(2, 1, 40)) if which == "1d" else (VGG7(), torch.rand(2, 3, 12, 12))
    model.eval().double()
    x = x.double()
    target = torch.tensor([1, 6])
    ours = Occlusion(model, window=window, stride=stride, score=score, batch_size=7,
                     progress=False).attribute(x, target)
    spatial = window if isinstance(window, tuple) else (window,) * (x.dim() - 2)
    strides = stride if isinstance(stride, tuple) else (stride,) * (x.dim() - 2)
    forward = model if score == "logit" else (lambda z: model(z).softmax(1))
    theirs = CaptumOcclusion(forward).attribute(x, sliding_window_shapes=(x.shape[1], *spatial),
                                                strides=(1, *strides), baselines=0.0, target=target)
    # captum accumulates in float32 even for a float64 model and input
    assert theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-5, atol=1e-6 * theirs.abs().max().item())


def test_hand_computed_case():
    """Logits (x0 + x1 + x2 + x3, 0) on a 4-point signal, window 2, stride 2: the windows [0, 1] and [2, 3] each
    remove their sum; every element gets its window's drop."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]))
    x = torch.tensor([[[1.0, 2.0, 3.0, 5.0]]])
    maps = Occlusion(model, window=2, stride=2, score="logit", progress=False).attribute(x, 0)
    assert maps.flatten().tolist() == [3.0, 3.0, 8.0, 8.0]
    # window 3, stride 1: windows [0..2] drop 6, [1..3] drop 10; elements 1, 2 average both
    maps = Occlusion(model, window=3, stride=1, score="logit", value=1.0, progress=False).attribute(x, 0)
    assert maps.flatten().tolist() == [3.0, (3.0 + 7.0) / 2, (3.0 + 7.0) / 2, 7.0]


def test_window_masks_and_uncovered_elements():
    # the last window is cut at the border, as in captum
    assert window_masks((5,), (2,), (2,)).tolist() == [[1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]]
    # a stride larger than the window leaves element 2 uncovered: its map is 0
    assert window_masks((5,), (2,), (3,)).tolist() == [[1, 1, 0, 0, 0], [0, 0, 0, 1, 1]]
    model = nn.Sequential(nn.Flatten(), nn.Linear(5, 2))
    maps = Occlusion(model, window=2, stride=3, progress=False).attribute(torch.rand(2, 1, 5) + 1, 0)
    assert (maps[..., 2] == 0).all() and (maps[..., [0, 1, 3, 4]] != 0).all()


def test_batch_size_does_not_change_the_map():
    torch.manual_seed(1)
    model, x = VGG7().eval(), torch.rand(2, 3, 16, 16)
    a = Occlusion(model, batch_size=3, progress=False).attribute(x, [0, 1])
    b = Occlusion(model, batch_size=None, progress=False).attribute(x, [0, 1])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [
    {"window": 0}, {"window": 2.5}, {"window": "big"}, {"stride": (1, 0)}, {"score": "softmax"},
    {"value": float("nan")}, {"batch_size": 0}])
def test_bad_options_raise(options):
    with pytest.raises(ValueError):
        Occlusion(nn.Identity(), **options)


def test_window_larger_than_input_or_wrong_rank_raises():
    model = ShallowCNN1D().eval()
    with pytest.raises(ValueError, match="window"):
        Occlusion(model, window=41, progress=False).attribute(torch.rand(2, 1, 40))
    with pytest.raises(ValueError, match="window"):
        Occlusion(model, window=(3, 3), progress=False).attribute(torch.rand(2, 1, 40))


def test_registered_by_name():
    assert get("occlusion") is Occlusion
