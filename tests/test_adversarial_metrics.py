"""FGVis experiments (Wagner 2019): adversarial evidence with/without the defense, and colour bias on RGB input."""
import math

import pandas as pd
import pytest
import torch
from torch import nn

from course_utils.explainers.base import Explainer
from course_utils.metrics import (adversarial_evidence, channel_permutation_accuracy, colour_bias,
                                  logits_within_clean_range, maintained_classification_ratio, mean_channel_mask)


def sigmoid(s):
    return 1 / (1 + math.exp(-s))


class InhibitoryNet(nn.Module):
    """h = relu(1 − x) per position; logit 0 = mean h, logit 1 = 0."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.conv.weight.fill_(-1.0)
            self.conv.bias.fill_(1.0)
            self.head.weight.copy_(torch.tensor([[1.0], [0.0]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).mean(-1))


class StandInFGVis(Explainer):
    """Returns a fixed mask: all zeros without the defense, [1, 0, 1, 1] with it."""

    reduction = "mean"

    def __init__(self, model, defense=True, game="preservation"):
        super().__init__(model)
        self.defense, self.game = defense, game

    def _attribute(self, x, target):
        mask = torch.tensor([1.0, 0.0, 1.0, 1.0]) if self.defense else torch.zeros(4)
        mask = mask.expand_as(x).clone()
        return mask if self.game == "preservation" else 1 - mask


@pytest.mark.parametrize("game", ["preservation", "deletion"])
def test_excited_fraction_and_scores_by_hand(game):
    x = torch.tensor([[[1.0, 1.0, 0.5, 2.0]]])  # h(x) = [0, 0, 0.5, 0]
    df = adversarial_evidence(InhibitoryNet(), x, explainer=StandInFGVis, options={"game": game})
    no, yes = df[~df["defense"]].iloc[0], df[df["defense"]].iloc[0]
    # without: e = 0, h(e) = 1 everywhere, above h(x) at all 4 units; with: e = [1, 0, .5, 2], h(e) = [0, 1, .5, 0].
    assert no["excited_fraction"] == pytest.approx(1.0)
    assert yes["excited_fraction"] == pytest.approx(0.25)
    assert no["score_original"] == pytest.approx(sigmoid(0.125))
    assert no["score_explanation"] == pytest.approx(sigmoid(1.0))
    assert yes["score_explanation"] == pytest.approx(sigmoid(0.375))  # mean h(e) = 1.5 / 4
    # within the clean range min(h(e), h(x)) = [0, 0, .5, 0] in both: logit 0.125
    assert no["created_evidence"] == pytest.approx(1.0 - 0.125)
    assert yes["created_evidence"] == pytest.approx(0.375 - 0.125)


class TwoReLUNet(nn.Module):
    """h1 = relu(x), h2 = relu(2 − h1) per position; logit 0 = mean h2, logit 1 = 0."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(1, 1, 1), nn.Conv1d(1, 1, 1)
        with torch.no_grad():
            self.conv1.weight.fill_(1.0)
            self.conv1.bias.zero_()
            self.conv2.weight.fill_(-1.0)
            self.conv2.bias.fill_(2.0)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        h2 = self.relu2(self.conv2(self.relu1(self.conv1(x)))).mean(-1)
        return torch.cat([h2, torch.zeros_like(h2)], 1)


def test_clean_range_is_imposed_layer_after_layer():
    """x = [1, −1]: h1(x) = [1, 0], h2(x) = [1, 2]. e = [2, 3]: h1(e) = [2, 3] → [1, 0] within range, so h2
    becomes [1, 2] (logit 1.5); clamping h2(e) = [0, 0] alone would give 0, the model itself gives 0."""
    model = TwoReLUNet()
    x, e = torch.tensor([[[1.0, -1.0]]]), torch.tensor([[[2.0, 3.0]]])
    torch.testing.assert_close(logits_within_clean_range(model, x, e), torch.tensor([[1.5, 0.0]]))
    torch.testing.assert_close(logits_within_clean_range(model, x, x), model(x))
    assert all(not m._forward_hooks for m in model.modules())


def test_tolerance_ignores_tiny_excess():
    x = torch.tensor([[[1.0, 1.0, 0.5, 2.0]]])
    df = adversarial_evidence(InhibitoryNet(), x, explainer=StandInFGVis, tol=2.0)
    assert (df["excited_fraction"] == 0).all()


def test_runs_with_the_registered_fgvis_on_a_batch():
    from course_utils.models import ShallowCNN1D
    torch.manual_seed(0)
    x = torch.randn(3, 1, 40, generator=torch.Generator().manual_seed(0))
    df = adversarial_evidence(ShallowCNN1D(channels=8), x, options={"iterations": 5, "progress": False})
    assert len(df) == 6 and df["excited_fraction"].between(0, 1).all()
    assert df["score_explanation"].between(0, 1).all() and df["created_evidence"].notna().all()


class RedVsBlue(nn.Module):
    """Class 0 if the mean red value exceeds the mean blue one, else class 1."""

    def forward(self, x):
        d = x[:, 0].mean((1, 2)) - x[:, 2].mean((1, 2))
        return torch.stack([d, -d], 1)


def test_channel_permutation_accuracy_by_hand():
    red, blue = torch.tensor([1.0, 0.5, 0.0]), torch.tensor([0.0, 0.5, 1.0])
    x = torch.stack([red, red, blue])[:, :, None, None].expand(3, 3, 2, 2).clone()
    y = torch.tensor([0, 0, 1])
    table = channel_permutation_accuracy(RedVsBlue(), x, y, class_names=["red", "blue"])
    expected = pd.DataFrame({"red": [100.0, 100, 100, 0, 0, 0], "blue": [100.0, 100, 100, 0, 0, 0],
                             "all": [100.0, 100, 100, 0, 0, 0]},
                            index=pd.Index(["RGB", "RBG", "GRB", "GBR", "BRG", "BGR"], name="channel order"))
    pd.testing.assert_frame_equal(table, expected)
    with pytest.raises(ValueError, match="RGB"):
        channel_permutation_accuracy(RedVsBlue(), torch.rand(2, 1, 4, 4), torch.tensor([0, 1]))


def test_maintained_classification_ratio_by_hand():
    """Tile 3 is red but labelled blue: wrong with RGB, so it never counts, even where a permutation makes it
    right (accuracy counts it there: 50 % for blue under the swapping orders, the ratio 0 %)."""
    red, blue = torch.tensor([1.0, 0.5, 0.0]), torch.tensor([0.0, 0.5, 1.0])
    x = torch.stack([red, red, blue, red])[:, :, None, None].expand(4, 3, 2, 2).clone()
    y = torch.tensor([0, 0, 1, 1])
    ratio = maintained_classification_ratio(RedVsBlue(), x, y, class_names=["red", "blue"])
    kept = [100.0, 100, 100, 0, 0, 0]
    expected = pd.DataFrame({"red": kept, "blue": kept, "all": kept},
                            index=pd.Index(["RGB", "RBG", "GRB", "GBR", "BRG", "BGR"], name="channel order"))
    pd.testing.assert_frame_equal(ratio, expected)
    accuracy = channel_permutation_accuracy(RedVsBlue(), x, y, class_names=["red", "blue"])
    assert accuracy.loc["BGR", "blue"] == 50.0
    both = colour_bias(RedVsBlue(), x, y, class_names=["red", "blue"], progress=True)
    pd.testing.assert_frame_equal(both[0], accuracy)
    pd.testing.assert_frame_equal(both[1], ratio)
    with pytest.raises(ValueError, match="RGB"):
        maintained_classification_ratio(RedVsBlue(), torch.rand(2, 1, 4, 4), torch.tensor([0, 1]))


def test_mean_channel_mask_by_hand():
    masks = torch.zeros(3, 3, 2, 2)
    masks[0, 0] = 1.0
    masks[1, 0] = 0.5
    masks[2, 2, 0] = 1.0
    table = mean_channel_mask(masks, torch.tensor([0, 0, 1]), class_names=["a", "b"])
    assert table.loc["a"].tolist() == [0.75, 0.0, 0.0]
    assert table.loc["b"].tolist() == [0.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="labels"):
        mean_channel_mask(masks, torch.tensor([0, 0, 2]), class_names=["a", "b"])
