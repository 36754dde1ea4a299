"""Gradient family (Saliency, Gradient × Input, SmoothGrad, Integrated Gradients) against captum and properties.

Oracles: captum's ``Saliency``, ``InputXGradient`` and ``IntegratedGradients`` on the same randomly initialised
model and input (1-D ShallowCNN1D and 2-D VGG7 at 16×16), and captum's ``Saliency`` averaged over the same
noisy copies for SmoothGrad. Tolerances are relative to the oracle's largest value (random-init models give
gradients of order 1e-3).
"""
import pytest
import torch
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import IntegratedGradients as CaptumIntegratedGradients
from captum.attr import Saliency as CaptumSaliency
from torch import nn

from course_utils.explainers import get
from course_utils.explainers.gradient import GradientXInput, IntegratedGradients, Saliency, SmoothGrad
from course_utils.models.architectures import VGG7, ShallowCNN1D

pytestmark = pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
RIEMANN = ["riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"]
FAST = {"smoothgrad": {"n_samples": 3, "progress": False}, "integrated_gradients": {"n_steps": 4, "progress": False}}


def fast(name: str, model: nn.Module):
    """The explainer registered as ``name``, with few samples/steps to keep the tests quick."""
    return get(name)(model, **FAST.get(name, {}))


def make_case(kind: str, n: int = 3):
    """A random-init model (fixed seed) in eval mode, an input batch and per-sample targets."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        if kind == "1d":
            model, x = ShallowCNN1D(), torch.randn(n, 1, 40)
        else:
            model, x = VGG7(), torch.rand(n, 3, 16, 16)
    return model.eval(), x, torch.arange(n) % 4


@pytest.fixture(params=["1d", "2d"])
def case(request):
    return make_case(request.param)


def assert_matches(ours: torch.Tensor, theirs: torch.Tensor, rtol: float = 1e-5):
    """Equal up to float32 rounding, measured relative to the oracle's largest magnitude."""
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=rtol * theirs.abs().max().item())


def test_registered_names():
    assert get("saliency") is Saliency
    assert get("gradient_x_input") is GradientXInput
    assert get("smoothgrad") is SmoothGrad
    assert get("integrated_gradients") is IntegratedGradients


def test_saliency_matches_captum(case):
    model, x, t = case
    assert_matches(Saliency(model).attribute(x, t), CaptumSaliency(model).attribute(x, t, abs=False))
    assert_matches(Saliency(model, abs=True).attribute(x, t), CaptumSaliency(model).attribute(x, t, abs=True))


def test_saliency_explain_is_max_abs_over_channels(case):
    model, x, t = case
    grad = CaptumSaliency(model).attribute(x, t, abs=False)
    expected = torch.stack([grad[:, c].abs() for c in range(x.shape[1])]).max(0).values
    assert_matches(Saliency(model).explain(x, t), expected)


def test_gradient_x_input_matches_captum(case):
    model, x, t = case
    ours = GradientXInput(model).attribute(x, t)
    assert_matches(ours, CaptumInputXGradient(model).attribute(x, t))
    assert_matches(GradientXInput(model).explain(x, t), ours.sum(1))


@pytest.mark.parametrize("method", RIEMANN)
@pytest.mark.parametrize("internal_batch_size", [2, None])
def test_integrated_gradients_matches_captum(case, method, internal_batch_size):
    model, x, t = case
    baseline = 0.25 * torch.ones_like(x[:1])
    ours, gap = IntegratedGradients(model, baseline=baseline, n_steps=6, method=method,
                                    internal_batch_size=internal_batch_size, progress=False
                                    ).attribute(x, t, return_gap=True)
    theirs, delta = CaptumIntegratedGradients(model).attribute(
        x, baselines=baseline.expand_as(x), target=t, n_steps=6, method=method, return_convergence_delta=True)
    assert_matches(ours, theirs)
    torch.testing.assert_close(gap, delta, rtol=1e-4, atol=1e-4 * delta.abs().max().item())


def test_integrated_gradients_default_baseline_is_black(case):
    model, x, t = case
    ours = IntegratedGradients(model, n_steps=8, progress=False).attribute(x, t)
    theirs = CaptumIntegratedGradients(model).attribute(x, target=t, n_steps=8, method="riemann_right")
    assert_matches(ours, theirs)


def test_integrated_gradients_completeness(case):
    """Σ IG ≈ F(x) − F(0) (Sundararajan Prop. 1): the gap is < 1 % of |F(x) − F(0)| with enough steps."""
    model, x, t = case
    ig = IntegratedGradients(model, n_steps=256, method="riemann_middle", progress=False)
    attr, gap = ig.attribute(x, t, return_gap=True)
    with torch.no_grad():
        change = model(x).gather(1, t[:, None])[:, 0] - model(torch.zeros_like(x)).gather(1, t[:, None])[:, 0]
    torch.testing.assert_close(attr.flatten(1).sum(1) - change, gap, rtol=0, atol=1e-6 * change.abs().max())
    assert (gap.abs() < 0.01 * change.abs()).all(), (gap, change)


def test_smoothgrad_without_noise_is_saliency(case):
    model, x, t = case
    smooth = SmoothGrad(model, noise_level=0.0, n_samples=5, progress=False).attribute(x, t)
    assert_matches(smooth, Saliency(model).attribute(x, t), rtol=1e-6)


def test_smoothgrad_is_mean_saliency_over_its_noisy_copies(case):
    """Oracle: the documented noise draw ``σ · randn((n, *x.shape))`` fed to captum's Saliency, averaged."""
    model, x, t = case
    n, level = 4, 0.2
    noise = torch.randn((n, *x.shape), generator=torch.Generator().manual_seed(7))
    sigma = level * (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, *[1] * (x.dim() - 1))
    grads = torch.stack([CaptumSaliency(model).attribute(x + sigma * e, t, abs=False) for e in noise])
    smooth = SmoothGrad(model, n_samples=n, noise_level=level, seed=7, batch_size=5, progress=False)
    assert_matches(smooth.attribute(x, t), grads.mean(0))
    squared = SmoothGrad(model, n_samples=n, noise_level=level, seed=7, squared=True, progress=False)
    assert_matches(squared.attribute(x, t), (grads**2).mean(0))


def test_smoothgrad_seed(case):
    model, x, t = case
    first = SmoothGrad(model, n_samples=4, seed=3, progress=False).attribute(x, t)
    again = SmoothGrad(model, n_samples=4, seed=3, progress=False).attribute(x, t)
    other = SmoothGrad(model, n_samples=4, seed=4, progress=False).attribute(x, t)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_smoothgrad_does_not_depend_on_batch_size(case):
    model, x, t = case
    one_row = SmoothGrad(model, n_samples=4, batch_size=1, progress=False).attribute(x, t)
    assert_matches(SmoothGrad(model, n_samples=4, progress=False).attribute(x, t), one_row)


@pytest.mark.parametrize("name", ["saliency", "gradient_x_input", "integrated_gradients"])
def test_batch_equals_per_sample(case, name):
    model, x, t = case
    explainer = fast(name, model)
    batch = explainer.attribute(x, t)
    single = torch.cat([explainer.attribute(x[i:i + 1], t[i:i + 1]) for i in range(len(x))])
    assert_matches(batch, single)


def test_explain_shapes_and_default_target(case):
    model, x, _ = case
    predicted = model(x).argmax(1)
    for explainer in (Saliency(model), GradientXInput(model), SmoothGrad(model, n_samples=2, progress=False),
                      IntegratedGradients(model, n_steps=2, progress=False)):
        assert explainer.explain(x).shape == (x.shape[0], *x.shape[2:])
    assert torch.equal(Saliency(model).attribute(x), Saliency(model).attribute(x, predicted))


def hooks_left(model: nn.Module) -> int:
    return sum(len(d) for m in model.modules() for d in (m._forward_hooks, m._forward_pre_hooks,
                                                         m._backward_hooks, m._backward_pre_hooks))


@pytest.mark.parametrize("name", ["saliency", "gradient_x_input", "smoothgrad", "integrated_gradients"])
def test_model_state_restored(name):
    model, x, t = make_case("2d", n=2)
    reference = fast(name, model).attribute(x, t)
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True
    model.train()
    model.features[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    assert_matches(fast(name, model).attribute(x, t), reference)
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert hooks_left(model) == 0
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["saliency", "gradient_x_input", "smoothgrad", "integrated_gradients"])
def test_bad_inputs_raise(name):
    model, x, t = make_case("1d")
    explainer = fast(name, model)
    bad = [(x[0], t), (x.long(), t), (x.clone().index_fill_(2, torch.tensor([3]), float("nan")), t),
           (x, torch.tensor([0, 1, 10])), (x, torch.tensor([0, 1]))]
    for inputs, target in bad:
        with pytest.raises(ValueError):
            explainer.attribute(inputs, target)


@pytest.mark.parametrize("options", [
    {"n_samples": 0}, {"noise_level": -0.1}, {"noise_level": float("nan")}, {"batch_size": 0}, {"seed": 1.5},
])
def test_bad_smoothgrad_options_raise(options):
    with pytest.raises(ValueError):
        SmoothGrad(ShallowCNN1D(), **options)


@pytest.mark.parametrize("options", [
    {"n_steps": 1}, {"method": "gausslegendre"}, {"internal_batch_size": -1}, {"baseline": "black"},
])
def test_bad_integrated_gradients_options_raise(options):
    with pytest.raises(ValueError):
        IntegratedGradients(ShallowCNN1D(), **options)


def test_baseline_shape_mismatch_raises():
    model, x, t = make_case("1d")
    with pytest.raises(ValueError, match="broadcast"):
        IntegratedGradients(model, baseline=torch.zeros(1, 1, 39)).attribute(x, t)
