"""Cascading model-parameter randomisation (Adebayo 2018): an explainer blind to the model must visibly fail."""
import copy

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from skimage import metrics

from course_utils.explainers.base import Explainer
from course_utils.metrics import cascading_randomisation, parameter_layers, spearman, ssim
from course_utils.models import ShallowCNN1D
from course_utils.plotting import plot_randomisation


class EdgeDetector(Explainer):
    """Input-only 'explanation': |x[i+1] − x[i]| summed over channels; ignores the model entirely."""

    reduction = "first"

    def _attribute(self, x, target):
        edges = (x[..., 1:] - x[..., :-1]).abs().sum(1, keepdim=True)
        return torch.nn.functional.pad(edges, (0, 1)).expand_as(x)


class InputGradient(Explainer):
    """|∂y_c/∂x| written here as an independent stand-in for Saliency."""

    reduction = "abs_max"

    def _attribute(self, x, target):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.logits(x, target).sum(), x)
        return grad


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = ShallowCNN1D(channels=16)
    x = torch.randn(8, 1, 40, generator=torch.Generator().manual_seed(1))
    return model, x


def test_spearman_matches_scipy_including_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 4, (5, 12), generator=g).float()
    b = torch.randn(5, 12, generator=g)
    ours = spearman(a, b)
    expected = [spearmanr(a[i].numpy(), b[i].numpy()).statistic for i in range(5)]
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    assert np.isnan(spearman(torch.ones(1, 5), torch.randn(1, 5, generator=g))[0])


@pytest.mark.parametrize("shape", [(3, 40), (2, 16, 20)])
def test_ssim_matches_scikit_image(shape):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    b = (a + 0.5 * torch.rand(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    expected = [metrics.structural_similarity(a[i].numpy(), b[i].numpy(), data_range=1.0, gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False) for i in range(shape[0])]
    np.testing.assert_allclose(ssim(a, b), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.rand(2, 8), torch.rand(2, 8))


def test_layers_are_listed_from_the_top_down(setup):
    model, _ = setup
    assert parameter_layers(model) == ["classifier", "features.4", "features.2", "features.0"]


def test_an_input_only_explainer_visibly_fails(setup):
    model, x = setup
    df = cascading_randomisation(model, EdgeDetector, x, with_ssim=True, progress=False)
    assert df["layer"].drop_duplicates().tolist() == ["original", "classifier", "features.4", "features.2",
                                                    "features.0"]
    assert len(df) == 5 * 8
    assert (df["spearman"] > 0.999).all(), "the edge detector's map must not change at all"
    assert (df["ssim"] > 0.999).all()


@pytest.mark.parametrize("explainer", ["stand-in", "saliency"])
def test_a_gradient_explainer_passes_and_the_model_is_untouched(setup, explainer):
    model, x = setup
    if explainer == "stand-in":
        explainer = InputGradient
    before = copy.deepcopy(model.state_dict())
    df = cascading_randomisation(model, explainer, x, seed=0, progress=False)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} was modified"
    means = df.groupby("step")["spearman"].mean()
    assert means[0] > 0.999
    assert means.iloc[-1] < 0.5, means.to_dict()
    edge = cascading_randomisation(model, EdgeDetector, x, progress=False)
    assert means.iloc[1:].max() < edge.groupby("step")["spearman"].mean().iloc[1:].min() - 0.3


def test_same_seed_same_result_other_seed_other_result(setup):
    model, x = setup
    a = cascading_randomisation(model, InputGradient, x, seed=3, progress=False)
    b = cascading_randomisation(model, InputGradient, x, seed=3, progress=False)
    c = cascading_randomisation(model, InputGradient, x, seed=4, progress=False)
    assert a.equals(b)
    assert not np.allclose(a["spearman"], c["spearman"])


def test_plot_and_bad_input(setup):
    model, x = setup
    df = cascading_randomisation(model, InputGradient, x[:2], layers=["classifier"], progress=False)
    assert df["layer"].tolist() == ["original"] * 2 + ["classifier"] * 2
    ax = plot_randomisation(df, title="check")
    assert ax.get_title() == "check"
    import matplotlib.pyplot as plt
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="parameterised modules"):
        cascading_randomisation(model, InputGradient, x, layers=["nope"], progress=False)
    with pytest.raises(ValueError, match="re-bound"):
        cascading_randomisation(model, InputGradient(model), x, progress=False)
