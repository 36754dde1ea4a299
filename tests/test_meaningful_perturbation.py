"""Meaningful perturbation (Fong & Vedaldi 2017): Eq. 4 terms by hand, their written-out gradients against
autograd, blur against SciPy, the whole optimisation against the paper's loop written the direct way, the two
games, per-sample independence of batched runs, seeding, model state, input checks.

Randomly initialised CNNs give an almost uniform softmax, which leaves nothing to explain; the fixtures scale
the (random) classifier weights so that the predicted class has a clear probability.
"""
import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from course_utils.core.filters import gaussian_blur
from course_utils.explainers.base import get, upsample
from course_utils.explainers.meaningful_perturbation import (
    MaskUpsampling, MeaningfulPerturbation, shift, total_variation, total_variation_gradient)
from course_utils.models.architectures import ShallowCNN1D


def pick(which, cnn1d, vgg, signals, images):
    return (cnn1d, signals) if which == "1d" else (vgg, images)


def target_prob(model, x, target):
    with torch.no_grad():
        return model(x).softmax(1)[torch.arange(x.shape[0]), target]


# -- Eq. 4 terms and helpers, by hand -------------------------------------------------------------------------
def test_total_variation_beta3_by_hand():
    signal = torch.tensor([[[0.0, 0.5, 1.0, 0.25]]])
    # |0.5|³ + |0.5|³ + |−0.75|³
    assert total_variation(signal, 3.0).item() == pytest.approx(0.125 + 0.125 + 0.421875)
    image = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
    # vertical: |1.0|³ + |−0.25|³; horizontal: |0.5|³ + |−0.75|³
    assert total_variation(image, 3.0).item() == pytest.approx(1 + 0.015625 + 0.125 + 0.421875)
    assert total_variation(image, 1.0).item() == pytest.approx(1 + 0.25 + 0.5 + 0.75)


def test_total_variation_is_per_sample():
    masks = torch.tensor([[[0.0, 1.0]], [[1.0, 1.0]]])
    assert total_variation(masks).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("game", ["deletion", "preservation"])
def test_objective_combines_l1_tv_and_probability_as_in_eq3_to_5(game, cnn1d):
    mask = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
    prob = torch.tensor([0.3])
    explainer = MeaningfulPerturbation(cnn1d, game=game, l1=1e-4, tv=1e-2)
    area = 784 / 4                          # L1 of a 2 × 2 mask counted at the paper's 28 × 28 scale
    edge = 28 / 2                           # TV boundary cells: 2 per axis here, 28 in the paper
    tv = 1.5625                             # test_total_variation_beta3_by_hand
    if game == "deletion":                  # λ1 ‖1 − m‖₁ + λ2 TV + f_c
        expected = area * 1e-4 * (1 + 0.5 + 0 + 0.75) + edge * 1e-2 * tv + 0.3
    else:                                   # λ1 ‖m‖₁ + λ2 TV − f_c
        expected = area * 1e-4 * (0 + 0.5 + 1 + 0.25) + edge * 1e-2 * tv - 0.3
    assert explainer.objective(mask, prob).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("beta", [1.0, 2.0, 2.5, 3.0])
@pytest.mark.parametrize("shape", [(3, 1, 7), (2, 1, 5, 6)])
def test_total_variation_gradient_equals_autograd(beta, shape):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mask[0, 0, 1] = mask[0, 0, 2]             # a zero difference: the subgradient autograd picks (0)
    mask.requires_grad_(True)
    (oracle,) = torch.autograd.grad(total_variation(mask, beta).sum(), mask)
    torch.testing.assert_close(total_variation_gradient(mask.detach(), beta), oracle, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("game", ["deletion", "preservation"])
def test_penalty_gradient_is_the_objectives_gradient_minus_the_scores(game, cnn1d):
    explainer = MeaningfulPerturbation(cnn1d, game=game, l1=3e-3, tv=5e-2, beta=2.5)
    for shape in [(2, 1, 5), (2, 1, 8, 8)]:
        mask = torch.rand(shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        mask.requires_grad_(True)
        prob = mask.flatten(1).pow(2).mean(1)          # any differentiable score
        (total,) = torch.autograd.grad(explainer.objective(mask, prob).sum(), mask, retain_graph=True)
        (score,) = torch.autograd.grad((prob if game == "deletion" else -prob).sum(), mask)
        torch.testing.assert_close(explainer.penalty_gradient(mask.detach()), total - score,
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("cells", "size"), [((5,), (40,)), ((8, 8), (64, 64)), ((3, 4), (17, 30))])
def test_mask_upsampling_equals_interpolation(cells, size):
    mask = torch.rand((3, 1, *cells), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(MaskUpsampling(cells, size)(mask), upsample(mask, size), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("cells", "size", "channels"), [((5,), (40,), 1), ((5,), (40,), 3), ((3, 4), (17, 30), 3)])
def test_mask_upsampling_adjoint_is_autograds_vector_jacobian_product(cells, size, channels):
    """The gradient w.r.t. the mask of ⟨g, upsample(m) broadcast over channels⟩, by autograd."""
    g = torch.Generator().manual_seed(6)
    mask = torch.rand((2, 1, *cells), generator=g, dtype=torch.float64, requires_grad=True)
    grad = torch.randn((2, channels, *size), generator=g, dtype=torch.float64)
    (oracle,) = torch.autograd.grad((upsample(mask, size) * grad).sum(), mask)
    torch.testing.assert_close(MaskUpsampling(cells, size).adjoint(grad), oracle, rtol=1e-12, atol=1e-12)


def test_gaussian_blur_matches_scipy():
    x = torch.rand(2, 3, 20, 17, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ours = gaussian_blur(x, 1.5, padding="reflect")
    # torch "reflect" (d c b | a b c d) is SciPy's "mirror"; radius ceil(3σ) = 5 = int(truncate σ + 0.5)
    oracle = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, 1.5, 1.5), mode="mirror", truncate=10 / 3)
    np.testing.assert_allclose(ours.numpy(), oracle, rtol=1e-10, atol=1e-12)
    signal = x[:, :1, 0]
    oracle_1d = ndimage.gaussian_filter(signal.numpy(), sigma=(0, 0, 1.5), mode="mirror", truncate=10 / 3)
    np.testing.assert_allclose(gaussian_blur(signal, 1.5, padding="reflect").numpy(), oracle_1d, rtol=1e-10, atol=1e-12)


def test_shift_repeats_the_border():
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    assert shift(x, [1]).flatten().tolist() == [1, 1, 2, 3]
    assert shift(x, [-2]).flatten().tolist() == [3, 4, 4, 4]
    image = torch.arange(9.0).view(1, 1, 3, 3)
    assert shift(image, [1, -1])[0, 0].tolist() == [[1, 2, 2], [1, 2, 2], [4, 5, 5]]


def test_paper_defaults_scale_to_the_input():
    explainer = MeaningfulPerturbation(nn.Identity())
    assert explainer.mask_size((224, 224)) == (28, 28)
    assert explainer.mask_size((64, 64)) == (8, 8)
    assert explainer.mask_size((40,)) == (20,)     # mask_scale 2 for signals (the measured 1-D default)
    assert MeaningfulPerturbation(nn.Identity(), mask_scale=8).mask_size((40,)) == (5,)
    assert explainer.scaled_blur_sigma((224, 224)) == pytest.approx(10.0)
    assert explainer.scaled_blur_sigma((64, 64)) == pytest.approx(10 * 64 / 224)
    assert explainer.scaled_jitter((224, 224)) == 4
    assert explainer.scaled_jitter((40,)) == 1
    assert explainer.penalty_scales((28, 28)) == pytest.approx((1.0, 1.0))
    assert explainer.penalty_scales((8, 8)) == pytest.approx((784 / 64, 3.5))
    assert explainer.penalty_scales((5,)) == pytest.approx((784 / 5, 1.0))


# -- the two games ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["1d", "2d"])
def test_deletion_lowers_and_preservation_keeps_the_target_probability(which, cnn1d, vgg, signals, images):
    model, x = pick(which, cnn1d, vgg, signals, images)
    with torch.no_grad():
        target = model(x).argmax(1)
    original = target_prob(model, x, target)
    reference = torch.zeros_like(x)
    # the games of Eq. 3 are stated for Φ(x; m) itself: no jitter here (it is checked in the batch/seed tests)
    deleted = MeaningfulPerturbation(model, game="deletion", reference="zero", iterations=40, jitter=0,
                                     progress=False).attribute(x, target)
    kept_after_deletion = 1 - deleted
    p_deleted = target_prob(model, kept_after_deletion * x + deleted * reference, target)
    # gradient descent from m = 1 may stay in a local minimum for some sample, but never raises the score
    assert (p_deleted <= original + 1e-3).all() and p_deleted.mean() < original.mean() - 0.05, (p_deleted, original)

    preserved = MeaningfulPerturbation(model, game="preservation", reference="zero", iterations=40, jitter=0,
                                       progress=False).attribute(x, target)
    p_preserved = target_prob(model, preserved * x + (1 - preserved) * reference, target)
    p_reference = target_prob(model, reference, target)
    assert (preserved.flatten(1).mean(1) < 1).all()
    assert (p_preserved > original - 0.05).all(), (p_preserved, original)
    assert (p_preserved > p_reference + 0.05).all(), (p_preserved, p_reference)


@pytest.mark.parametrize("which", ["1d", "2d"])
@pytest.mark.parametrize("game", ["deletion", "preservation"])
def test_saliency_is_a_mask_in_unit_range_broadcast_over_channels(which, game, cnn1d, vgg, signals, images):
    model, x = pick(which, cnn1d, vgg, signals, images)
    attr = MeaningfulPerturbation(model, game=game, iterations=5, progress=False).attribute(x)
    assert attr.shape == x.shape
    assert attr.min() >= 0 and attr.max() <= 1
    assert torch.equal(attr, attr[:, :1].expand_as(attr))
    explained = MeaningfulPerturbation(model, game=game, iterations=5, progress=False).explain(x)
    assert torch.equal(explained, attr[:, 0])


# -- batches, seeds --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["1d", "2d"])
@pytest.mark.parametrize("reference", ["blur", "noise", "mean"])
def test_batched_run_equals_single_image_runs(which, reference, float64_case):
    # float64 so that batch-size dependent rounding cannot hide (or fake) a coupling between samples
    model64, x64 = float64_case(which)
    explainer = MeaningfulPerturbation(model64, game="preservation", reference=reference, iterations=8, seed=7,
                                       progress=False)
    target = torch.tensor([0, 3, 5])
    together = explainer.attribute(x64, target)
    for i in range(x64.shape[0]):
        alone = explainer.attribute(x64[i:i + 1], target[i:i + 1])
        torch.testing.assert_close(together[i:i + 1], alone, rtol=0, atol=1e-10)
    assert any(not torch.allclose(together[0], together[i]) for i in range(1, x64.shape[0]))  # not vacuous


def _paper_loop(explainer, x, target, shift_mask_too=False):
    """Meaningful perturbation written the direct way (Sec. 4): interpolate the mask, shift the image and its
    reference by τ under the fixed mask, blend with torch.lerp, the whole objective by autograd,
    torch.optim.Adam; the same random draws as the explainer. ``shift_mask_too`` is the kit's old, wrong jitter:
    the blended input shifted as a whole, mask included."""
    generator = torch.Generator().manual_seed(explainer.seed)
    spatial = x.shape[2:]
    jitter = explainer.scaled_jitter(spatial)
    mask = torch.ones((x.shape[0], 1, *explainer.mask_size(spatial)), dtype=x.dtype, requires_grad=True)
    optimiser = torch.optim.Adam([mask], lr=explainer.lr)
    fixed = None if explainer.reference == "noise" else explainer.reference_for(x, generator)
    for _ in range(explainer.iterations):
        reference = explainer.reference_for(x, generator) if fixed is None else fixed
        offsets = torch.randint(-jitter, jitter + 1, (len(spatial),), generator=generator).tolist()
        if shift_mask_too:
            perturbed = shift(torch.lerp(reference, x, upsample(mask, spatial)), offsets)
        else:   # Φ(x0(· − τ), m)
            perturbed = torch.lerp(shift(reference, offsets), shift(x, offsets), upsample(mask, spatial))
        logits = explainer.model(perturbed)
        if explainer.score == "probability":
            score = logits.softmax(1)[torch.arange(x.shape[0]), target]
        elif explainer.score == "log_probability":
            score = logits.log_softmax(1)[torch.arange(x.shape[0]), target]
        else:
            score = logits[torch.arange(x.shape[0]), target]
        optimiser.zero_grad()
        explainer.objective(mask, score).sum().backward()
        optimiser.step()
        with torch.no_grad():
            mask.clamp_(0, 1)
    kept = upsample(mask.detach(), spatial)
    return (1 - kept if explainer.game == "deletion" else kept).expand_as(x)


@pytest.mark.parametrize("which", ["1d", "2d"])
@pytest.mark.parametrize(("game", "reference", "score"), [
    ("deletion", "blur", "probability"), ("preservation", "noise", "probability"),
    ("deletion", "blur", "log_probability"), ("deletion", "zero", "logit")])
def test_the_explainer_follows_the_paper_loop(which, game, reference, score, float64_case,
                                              assert_follows_paper_loop):
    model64, x64 = float64_case(which)
    explainer = MeaningfulPerturbation(model64, game=game, reference=reference, score=score, iterations=5,
                                       seed=5, jitter=2, progress=False)
    assert_follows_paper_loop(explainer, x64, _paper_loop)
    # not vacuous: the old jitter (the perturbed input shifted, mask included) is a different optimisation
    target = model64(x64).argmax(1)
    old = _paper_loop(explainer, x64, target, shift_mask_too=True)
    assert (old - explainer.attribute(x64, target)).abs().amax() > 1e-3


class _Probe(nn.Module):
    """Two logits ``(w · x[p], 0)``: the model reads the signal at one position only."""

    def __init__(self, position, weight=4.0):
        super().__init__()
        self.position, self.weight = position, weight

    def forward(self, x):
        read = self.weight * x[:, 0, self.position]
        return torch.stack([read, torch.zeros_like(read)], 1)


@pytest.mark.parametrize("game", ["deletion", "preservation"])
def test_jitter_shifts_the_input_under_a_fixed_mask(game):
    """A model that reads position 20 only: under the paper's jitter the mask cell at 20 is the only one the
    score depends on (the input moves under it), so only that cell leaves its start. The old jitter, which
    shifted the mask with the input, moved cells 20 − τ for every drawn τ (the check fails for it)."""
    x = torch.linspace(1.0, 2.0, 40, dtype=torch.float64).view(1, 1, 40)
    explainer = MeaningfulPerturbation(_Probe(20), game=game, reference="zero", mask_scale=1, tv=0.0, jitter=3,
                                       iterations=30, seed=0, progress=False)
    saliency = explainer.attribute(x, target=0)[0, 0]
    others = torch.cat([saliency[:20], saliency[21:]])
    # deletion: 1 − m, 0 where nothing was deleted; preservation: m, which the L1 prior drives to 0 off cell 20
    assert saliency[20] > 0.5 and others.amax() < 1e-9, saliency
    old = _paper_loop(explainer, x, torch.tensor([0]), shift_mask_too=True)[0, 0]
    assert torch.cat([old[:20], old[21:]]).amax() > 0.1


def test_same_seed_same_result_other_seed_other_jitter(vgg, images):
    run = lambda seed: MeaningfulPerturbation(vgg, iterations=6, seed=seed, progress=False).attribute(images)
    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_global_rng_is_untouched(cnn1d, signals):
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    MeaningfulPerturbation(cnn1d, reference="noise", iterations=3, progress=False).attribute(signals)
    assert torch.equal(torch.rand(3), expected)


# -- the contract ----------------------------------------------------------------------------------------------
def test_model_state_is_restored():
    torch.manual_seed(4)
    model = ShallowCNN1D()
    model.train()
    model.features[1].inplace = True
    model.classifier.weight.requires_grad_(False)
    MeaningfulPerturbation(model, iterations=2, progress=False).attribute(torch.randn(2, 1, 40), target=1)
    assert model.training and all(m.training for m in model.modules())
    assert model.features[1].inplace is True
    assert model.classifier.weight.requires_grad is False
    assert all(p.requires_grad for name, p in model.named_parameters() if name != "classifier.weight")
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
               for m in model.modules())


@pytest.mark.parametrize("options", [
    {"game": "insertion"}, {"reference": "gray"}, {"iterations": 0}, {"iterations": 2.5}, {"lr": 0},
    {"lr": -0.1}, {"l1": -1}, {"tv": float("nan")}, {"beta": 0.5}, {"mask_scale": 0}, {"blur_sigma": -1},
    {"jitter": -1}, {"jitter": 1.5}, {"noise_level": -0.1}, {"seed": "zero"}, {"score": "softmax"},
])
def test_bad_options_raise(options, cnn1d):
    with pytest.raises(ValueError):
        MeaningfulPerturbation(cnn1d, **options)


def test_bad_inputs_raise(cnn1d, signals):
    explainer = MeaningfulPerturbation(cnn1d, iterations=1, progress=False)
    with pytest.raises(ValueError):
        explainer.attribute(signals[0])
    with pytest.raises(ValueError):
        explainer.attribute(signals.long())
    with pytest.raises(ValueError):
        explainer.attribute(signals, target=10)


def test_registered_by_name():
    assert get("meaningful_perturbation") is MeaningfulPerturbation
