"""LIME and KernelSHAP: exact Shapley values (enumeration oracle, captum ShapleyValues), linear recovery."""
import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import pairwise_distances
from captum.attr import Lime as CaptumLime
from captum.attr import ShapleyValues
from captum._utils.models.linear_model import SkLearnLinearRegression
from lime.lime_image import LimeImageExplainer

from course_utils.explainers.surrogate import LIME, KernelSHAP, grid_segments
from course_utils.models.architectures import VGG7, ShallowCNN1D


@pytest.fixture(scope="module")
def cnn1d():
    torch.manual_seed(0)
    model = ShallowCNN1D().eval()
    with torch.no_grad():
        model.classifier.weight.mul_(20)  # decisive outputs, so Shapley values are far from 0
    return model


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(1)
    model = VGG7().eval()
    with torch.no_grad():
        model.classifier.weight.mul_(20)
    return model


@pytest.fixture(scope="module")
def signals():
    return torch.randn(2, 1, 40, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))


class LinearInSegments(torch.nn.Module):
    """Two classes with P_0(x) = b + Σ_j w_j · mean of x over segment j (softmax of log-probabilities)."""

    def __init__(self, labels: torch.Tensor, weights: torch.Tensor, bias: float):
        super().__init__()
        self.labels, self.weights, self.bias = labels.flatten(), weights, bias

    def forward(self, x):
        flat = x.mean(1).flatten(1)
        means = torch.stack([flat[:, self.labels == j].mean(1) for j in range(len(self.weights))], 1)
        p0 = self.bias + means @ self.weights
        return torch.stack([p0.log(), (1 - p0).log()], 1)


def exact_shapley(model, x, target, labels, m, baseline=0.0):
    """Shapley values by enumerating every coalition (Shapley 1953), for one sample."""
    coalitions = [s for r in range(m + 1) for s in itertools.combinations(range(m), r)]
    keep = torch.stack([torch.isin(labels, torch.tensor(s, dtype=torch.long)) for s in coalitions])
    with torch.no_grad():
        scores = model(torch.where(keep, x, baseline)).softmax(1)[:, target].tolist()
    values = dict(zip(coalitions, scores))
    phi = []
    for j in range(m):
        total = 0.0
        for s, v in values.items():
            if j not in s:
                with_j = tuple(sorted(s + (j,)))
                total += math.factorial(len(s)) * math.factorial(m - len(s) - 1) / math.factorial(m) \
                    * (values[with_j] - v)
        phi.append(total)
    return torch.tensor(phi)


def per_segment(attr, labels, m):
    """The coefficient of each segment from a (C, *spatial) attribution map (first channel)."""
    flat = attr[0].flatten()
    return torch.stack([flat[labels.flatten() == j][0] for j in range(m)])


def test_kernelshap_is_exact_shapley_by_enumeration(cnn1d, signals):
    labels = grid_segments((40,), 8)
    target = torch.tensor([3, 7])
    attr = KernelSHAP(cnn1d, cells=8).attribute(signals, target)
    for i in range(2):
        oracle = exact_shapley(cnn1d, signals[i], target[i].item(), labels.view(1, 40), 8)
        assert oracle.abs().max() > 1e-3
        torch.testing.assert_close(per_segment(attr[i], labels, 8), oracle.float(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_kernelshap_matches_captum_shapley_values(which, cnn1d, vgg, signals, images):
    model, x, cells = (cnn1d, signals, 5) if which == "1d" else (vgg, images, 2)
    size = tuple(x.shape[2:])
    labels = grid_segments(size, cells)
    m = cells ** len(size)
    target = torch.tensor([1, 4])
    attr = KernelSHAP(model, cells=cells).attribute(x, target)
    captum = ShapleyValues(lambda inp: model(inp).softmax(1)).attribute(
        x, baselines=0.0, target=target, feature_mask=labels.expand(1, x.shape[1], *size).contiguous(),
        perturbations_per_eval=16)
    assert captum.abs().max() > 1e-3
    torch.testing.assert_close(attr, captum, rtol=1e-4, atol=1e-6)
    assert attr.shape == x.shape and m == len(labels.unique())


def test_kernelshap_sampled_keeps_efficiency_and_is_seeded(vgg, images):
    target = torch.tensor([0, 5])
    explainer = KernelSHAP(vgg, n_samples=60, seed=11)
    attr = explainer.attribute(images, target)
    labels = grid_segments((32, 32), 8)
    with torch.no_grad():
        full = vgg(images).softmax(1)[torch.arange(2), target]
        empty = vgg(torch.zeros_like(images)).softmax(1)[torch.arange(2), target]
    for i in range(2):
        total = per_segment(attr[i], labels, 64).sum()
        torch.testing.assert_close(total, full[i] - empty[i], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(attr, KernelSHAP(vgg, n_samples=60, seed=11).attribute(images, target),
                               rtol=0, atol=0)
    assert not torch.equal(attr, KernelSHAP(vgg, n_samples=60, seed=12).attribute(images, target))


def linear_case():
    labels = torch.tensor([7, 7, 3, 3, 3, 42, 42, 0, 0, 0, 0, 5])
    weights = torch.tensor([0.05, -0.1, 0.2, 0.15, -0.05])  # for the labels sorted: 0, 3, 5, 7, 42
    model = LinearInSegments(torch.searchsorted(torch.tensor([0, 3, 5, 7, 42]), labels), weights, 0.4)
    return labels, weights, model


def test_lime_recovers_the_coefficients_of_a_linear_model():
    labels, weights, model = linear_case()
    x = torch.ones(3, 1, 12)
    attr = LIME(model, segments=labels, alpha=0.0, n_samples=100).attribute(x, 0)
    sorted_labels = torch.tensor([0, 3, 5, 7, 42])
    for j, label in enumerate(sorted_labels):
        assert torch.allclose(attr[:, 0, labels == label], weights[j].expand(3, int((labels == label).sum())),
                              atol=1e-5)
    captum = CaptumLime(lambda inp: model(inp).softmax(1), interpretable_model=SkLearnLinearRegression())
    reference = captum.attribute(x[:1], target=0, feature_mask=labels.view(1, 1, 12), n_samples=100)
    torch.testing.assert_close(attr[:1], reference.float(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_lime_kernel_matches_sklearn_distances(distance):
    z = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 1], [0, 1, 1, 1]], dtype=torch.float32)
    d = pairwise_distances(z.numpy(), np.ones((1, 4)), metric=distance)[:, 0]
    expected = torch.from_numpy(np.exp(-d ** 2 / 0.3 ** 2))
    torch.testing.assert_close(LIME(torch.nn.Identity(), kernel_width=0.3, distance=distance).kernel(z), expected)


def test_lime_equals_weighted_ridge_of_the_lime_package(cnn1d, signals):
    explainer = LIME(cnn1d, n_samples=300, cells=8, seed=3)
    attr = explainer.attribute(signals, 5)
    z = explainer.samples(8, torch.Generator().manual_seed(3))
    labels = grid_segments((40,), 8)
    keep = z[:, labels].unsqueeze(1)
    weights = explainer.kernel(z).numpy()
    for i in range(2):
        with torch.no_grad():
            y = cnn1d(signals[i] * keep).softmax(1)[:, 5].double().numpy()
        ridge = Ridge(alpha=1.0).fit(z.numpy(), y, sample_weight=weights)
        torch.testing.assert_close(per_segment(attr[i], labels, 8), torch.from_numpy(ridge.coef_).float(),
                                   rtol=1e-4, atol=1e-7)
        assert np.abs(ridge.coef_).max() > 1e-3


def test_default_lime_equals_the_lime_package_image_explainer_fit(cnn1d, signals):
    """Oracle: the ``lime`` package's own image-explainer kernel (width 0.25, ``sqrt(exp(−d²/w²))``), cosine
    distances and ``LimeBase`` ridge fit, on the same binary samples and scores as ours with default options."""
    explainer = LIME(cnn1d, n_samples=300, cells=8, seed=4)
    attr = explainer.attribute(signals, 5)
    z = explainer.samples(8, torch.Generator().manual_seed(4))
    labels = grid_segments((40,), 8)
    package = LimeImageExplainer(random_state=0).base   # default kernel_width=0.25
    distances = pairwise_distances(z.numpy(), z[:1].numpy(), metric="cosine").ravel()
    for i in range(2):
        with torch.no_grad():
            probs = cnn1d(signals[i] * z[:, labels].unsqueeze(1)).softmax(1).double().numpy()
        _, local_exp, _, _ = package.explain_instance_with_data(
            z.numpy(), probs, distances, 5, num_features=8, feature_selection="none",
            model_regressor=Ridge(alpha=1.0, fit_intercept=True))
        theirs = torch.zeros(8)
        for feature, coef in local_exp:
            theirs[feature] = float(coef)
        torch.testing.assert_close(per_segment(attr[i], labels, 8), theirs, rtol=1e-4, atol=1e-7)
        assert theirs.abs().max() > 1e-3
    narrow = LIME(cnn1d, n_samples=300, cells=8, seed=4, kernel_width=0.25).attribute(signals, 5)
    assert not torch.allclose(narrow, attr, rtol=1e-2, atol=1e-4)   # the paper's formula at w itself differs


def test_lime_and_kernelshap_accept_one_label_map_per_sample():
    labels, weights, model = linear_case()
    x = torch.ones(2, 1, 12)
    # Sample 1 merges labels 0 and 5 into one segment: its coefficient is then w_0 + w_5 on those elements.
    per_sample = torch.stack([labels, torch.where(labels == 5, 0, labels)])
    for explainer in (LIME(model, segments=per_sample, alpha=0.0, n_samples=200),
                      KernelSHAP(model, segments=per_sample)):
        attr = explainer.attribute(x, 0)[:, 0]
        assert torch.allclose(attr[0, labels == 5], weights[2].expand(1), atol=1e-5)
        merged = (labels == 5) | (labels == 0)
        assert torch.allclose(attr[1, merged], (weights[0] + weights[2]).expand(int(merged.sum())), atol=1e-5)
        assert torch.allclose(attr[1, labels == 42], weights[4].expand(2), atol=1e-5)


def test_kernelshap_mean_baseline_on_a_linear_model():
    labels, weights, model = linear_case()
    x = 0.5 + 0.5 * torch.rand(2, 1, 12, generator=torch.Generator().manual_seed(4))
    attr = KernelSHAP(model, segments=labels, baseline="mean").attribute(x, 0)[:, 0]
    sorted_labels = [0, 3, 5, 7, 42]
    for i in range(2):
        mean = x[i].mean()
        for j, label in enumerate(sorted_labels):
            expected = weights[j] * (x[i, 0, labels == label].mean() - mean)
            torch.testing.assert_close(attr[i, labels == label], expected.expand(int((labels == label).sum())),
                                       rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", [LIME, KernelSHAP])
@pytest.mark.parametrize("which", ["1d", "2d"])
def test_batched_equals_per_image(method, which, cnn1d, vgg, signals, images):
    model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
    explainer = method(model, n_samples=40, batch_size=7)
    together = explainer.attribute(x)
    alone = torch.cat([explainer.attribute(x[i:i + 1]) for i in range(x.shape[0])])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-6)
    assert torch.equal(together[:, :1].expand_as(together), together)


@pytest.mark.parametrize("method", [LIME, KernelSHAP])
def test_model_state_is_restored(method, vgg, images):
    vgg.train()
    vgg.classifier.bias.requires_grad_(False)
    before = [(m.training, len(m._forward_hooks), len(m._forward_pre_hooks)) for m in vgg.modules()]
    grads = [p.requires_grad for p in vgg.parameters()]
    method(vgg, n_samples=8).attribute(images)
    assert [(m.training, len(m._forward_hooks), len(m._forward_pre_hooks)) for m in vgg.modules()] == before
    assert [p.requires_grad for p in vgg.parameters()] == grads
    vgg.classifier.bias.requires_grad_(True)
    vgg.eval()


@pytest.mark.parametrize("options", [{"n_samples": 0}, {"cells": -2}, {"segments": torch.zeros(40)},
                                     {"baseline": "blur"}, {"baseline": None}, {"seed": "a"},
                                     {"batch_size": 0}])
@pytest.mark.parametrize("method", [LIME, KernelSHAP])
def test_bad_options_raise(options, method, cnn1d):
    with pytest.raises(ValueError):
        method(cnn1d, **options)


@pytest.mark.parametrize("options", [{"distance": "manhattan"}, {"alpha": -1.0}, {"kernel_width": 0}])
def test_bad_lime_options_raise(options, cnn1d):
    with pytest.raises(ValueError):
        LIME(cnn1d, **options)


def test_bad_inputs_raise(cnn1d, signals):
    with pytest.raises(ValueError):
        KernelSHAP(cnn1d, segments=torch.zeros(39, dtype=torch.long)).attribute(signals)
    with pytest.raises(ValueError):
        LIME(cnn1d, baseline=torch.zeros(3, 1, 40)).attribute(signals)
    with pytest.raises(ValueError):
        LIME(cnn1d).attribute(signals.long())
