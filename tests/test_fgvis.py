"""FGVis (Wagner et al. 2019): the Sec. 3.3 defense checked unit by unit with module hooks and, for functional
ReLUs, against a hand-written defended forward pass, its module-hook path against its interception path; the
whole optimisation against the paper's loop written the direct way; the games; batch independence; model state;
input checks.

What the defense guarantees (and what is tested): during each backward pass, no error signal flows through a
unit whose perturbed activation lies outside ``[min(0, h(x)), max(0, h(x))]``. It filters gradients; it does not
project activations, so it does not promise that activations stay in range after an update.
"""
import contextlib

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_utils.explainers.base import get
from course_utils.explainers.fgvis import ActivationRangeDefense, FGVis
from course_utils.models.architectures import VGG7


def sharpened(model, factor):
    model.classifier.weight.data *= factor
    return model.eval()


class FunctionalNet(nn.Module):
    """Nonlinearities called as functions inside ``forward`` (no ReLU modules for hooks to find)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv1d(8, 8, 5, padding=2)
        self.conv3 = nn.Conv1d(8, 8, 3, padding=1)
        self.conv4 = nn.Conv1d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x, gate=None):
        gate = gate or (lambda k, h: h)
        h = gate(0, F.relu(self.conv1(x)))
        h = gate(1, torch.relu(self.conv2(h)))
        h = gate(2, self.conv3(h).relu())
        h = gate(3, F.leaky_relu(self.conv4(h), 0.1))
        return self.head(h.mean(2))


def target_prob(model, x, target):
    with torch.no_grad():
        return model(x).softmax(1)[torch.arange(x.shape[0]), target]


def relu_trace(model, x):
    """(input, output) of every nn.ReLU in ``model`` for ``x``; inputs keep their gradient after backward."""
    trace = []

    def hook(module, inputs, output):
        if inputs[0].requires_grad:
            inputs[0].retain_grad()
        trace.append((inputs[0], output))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, trace


# -- the defense, unit by unit -----------------------------------------------------------------------------------
def _perturbed(x, seed):
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed))
    return (mask * x).requires_grad_(True)


@pytest.mark.parametrize("defended", [True, False])
def test_no_gradient_flows_through_a_relu_unit_outside_its_original_range(defended):
    torch.manual_seed(1)
    model = sharpened(VGG7(), 30)
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        _, clean = relu_trace(model, images)
    e = _perturbed(images, 4)
    defense = ActivationRangeDefense()
    if defended:
        with torch.no_grad(), defense.recording():
            model(images)
        with defense.filtering():
            logits, trace = relu_trace(model, e)
    else:
        logits, trace = relu_trace(model, e)
    logits.softmax(1)[:, 0].sum().backward()
    leaking = 0
    for (_, h_x), (z_e, h_e) in zip(clean, trace):
        outside = (h_e > h_x.clamp(min=0)) | (h_e < h_x.clamp(max=0))
        assert outside.any()          # the random mask does push units out of range
        leaking += int((z_e.grad[outside] != 0).sum())
    if defended:
        assert leaking == 0
    else:
        assert leaking > 0            # without the defense the signal does flow there


def test_defense_covers_functional_relus_like_a_hand_written_gate():
    torch.manual_seed(5)
    model = FunctionalNet().eval()
    x = torch.randn(2, 1, 30, generator=torch.Generator().manual_seed(6))
    target = torch.tensor([1, 2])
    clean = {}
    with torch.no_grad():
        model(x, gate=lambda k, h: clean.setdefault(k, h))

    def cut_outside(k, h):            # the paper's rule written out: zero the gradient where h(e) leaves its range
        inside = (h <= clean[k].clamp(min=0)) & (h >= clean[k].clamp(max=0))
        h.register_hook(lambda g: g * inside)
        return h

    e = _perturbed(x, 7)
    model(e, gate=cut_outside).softmax(1)[torch.arange(2), target].sum().backward()
    oracle, e.grad = e.grad.clone(), None

    defense = ActivationRangeDefense()
    with torch.no_grad(), defense.recording():
        model(x)
    with defense.filtering():
        ours = model(e)
    ours.softmax(1)[torch.arange(2), target].sum().backward()
    torch.testing.assert_close(e.grad, oracle, rtol=1e-5, atol=1e-8)
    assert len(defense.bounds) == 4

    e.grad = None
    model(e).softmax(1)[torch.arange(2), target].sum().backward()
    assert not torch.allclose(e.grad, oracle)   # the gate matters for this perturbation


class ModuleNet(FunctionalNet):
    """FunctionalNet's layers and arithmetic with its nonlinearities as modules: an in-place ReLU, one ReLU
    module called twice, a LeakyReLU."""

    def __init__(self):
        super().__init__()
        self.first, self.shared, self.leaky = nn.ReLU(inplace=True), nn.ReLU(), nn.LeakyReLU(0.1)

    def forward(self, x):
        h = self.shared(self.conv3(self.shared(self.conv2(self.first(self.conv1(x))))))
        return self.head(self.leaky(self.conv4(h)).mean(2))


def test_module_nonlinearities_are_filtered_by_module_hooks_like_intercepted_functional_ones():
    torch.manual_seed(5)
    functional = FunctionalNet().eval()
    modules = ModuleNet().eval()
    modules.load_state_dict(functional.state_dict())
    x = torch.randn(2, 1, 30, generator=torch.Generator().manual_seed(6))
    target = torch.tensor([1, 2])
    grads = []
    for model, hooked in ((functional, []), (modules, [modules.first, modules.shared, modules.leaky])):
        defense = ActivationRangeDefense()
        with torch.no_grad(), defense.recording():
            model(x)
        assert defense.hooked_modules == hooked
        e = _perturbed(x, 7)
        with defense.filtering():
            out = model(e)
        out.softmax(1)[torch.arange(2), target].sum().backward()
        grads.append(e.grad)
        assert all(not m._forward_hooks for m in model.modules())
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-8)
    e = _perturbed(x, 7)
    modules(e).softmax(1)[torch.arange(2), target].sum().backward()
    assert not torch.allclose(e.grad, grads[0])   # the defense did cut something here


def test_a_module_calling_two_nonlinearities_is_intercepted_function_by_function():
    class TwoReLUs(nn.ReLU):
        def forward(self, x):
            return F.relu(F.relu(x) - 0.5)

    model = nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), TwoReLUs())
    x = torch.randn(2, 1, 12, generator=torch.Generator().manual_seed(9))
    defense = ActivationRangeDefense()
    with torch.no_grad(), defense.recording():
        model(x)
    assert defense.hooked_modules == [] and len(defense.bounds) == 2


@pytest.mark.parametrize("relu", [lambda z: F.relu(z, inplace=True), torch.relu_, torch.Tensor.relu_,
                                  lambda z: F.leaky_relu(z, 0.1, inplace=True)])
def test_in_place_relus_are_defended_like_out_of_place_ones(relu):
    torch.manual_seed(8)
    conv = nn.Conv1d(1, 4, 3, padding=1)
    x = torch.randn(2, 1, 12, generator=torch.Generator().manual_seed(9))
    leaky = relu(torch.tensor([-1.0])).item() != 0
    reference = (lambda z: F.leaky_relu(z, 0.1)) if leaky else F.relu
    defense = ActivationRangeDefense()
    with torch.no_grad(), defense.recording():
        reference(conv(x))
    grads, values = [], []
    for fn in (reference, relu):
        e = _perturbed(x, 10)
        with defense.filtering():
            out = fn(conv(e) * 1)
        out.sum().backward()
        grads.append(e.grad)
        values.append(out.detach())
    torch.testing.assert_close(values[1], values[0])
    torch.testing.assert_close(grads[1], grads[0])
    e = _perturbed(x, 10)
    reference(conv(e)).sum().backward()
    assert not torch.allclose(e.grad, grads[0])   # the defense did cut something here


def test_leaky_relu_with_a_non_negative_clean_output_still_cuts_negative_perturbed_units():
    defense = ActivationRangeDefense()
    with torch.no_grad(), defense.recording():
        F.leaky_relu(torch.tensor([1.0, 2.0, 3.0]), 0.1)      # clean range [0, h(x)] on every unit
    e = torch.tensor([0.5, -1.0, 4.0], requires_grad=True)    # inside, below 0, above h(x)
    with defense.filtering():
        out = F.leaky_relu(e, 0.1)
    out.sum().backward()
    torch.testing.assert_close(e.grad, torch.tensor([1.0, 0.0, 0.0]))


def test_defense_rejects_a_forward_that_changes_between_passes():
    defense = ActivationRangeDefense()
    with torch.no_grad(), defense.recording():
        torch.relu(torch.randn(3))
    with pytest.raises(ValueError):
        with defense.filtering():
            torch.relu(torch.randn(3))
            torch.relu(torch.randn(3))
    with pytest.raises(ValueError):
        with defense.filtering():
            torch.relu(torch.randn(4))
    with pytest.raises(ValueError):
        ActivationRangeDefense().filtering()


# -- the explainer ------------------------------------------------------------------------------------------------
def test_without_the_defense_preservation_creates_adversarial_evidence(vgg, images):
    with torch.no_grad():
        target = vgg(images).argmax(1)
    original = target_prob(vgg, images, target)
    results = {}
    for defense in (False, True):
        mask = FGVis(vgg, game="preservation", iterations=40, defense=defense, progress=False).attribute(images, target)
        results[defense] = mask
        with torch.no_grad():
            _, clean = relu_trace(vgg, images)
            _, perturbed = relu_trace(vgg, mask * images)
        exceed = sum(int((h_e > h_x.clamp(min=0)).sum()) for (_, h_x), (_, h_e) in zip(clean, perturbed))
        if not defense:
            assert exceed > 0
            # the score rises far above the original's: evidence the image did not contain
            assert (target_prob(vgg, mask * images, target) > original + 0.1).all()
    defended = target_prob(vgg, results[True] * images, target)
    assert (defended < target_prob(vgg, results[False] * images, target)).all()


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_deletion_lowers_the_score_and_returns_one_minus_mask(which, cnn1d, vgg, signals, images):
    model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
    with torch.no_grad():
        target = model(x).argmax(1)
    evidence = FGVis(model, game="deletion", iterations=30, progress=False).attribute(x, target)
    assert evidence.shape == x.shape and evidence.min() >= 0 and evidence.max() <= 1
    deleted = target_prob(model, (1 - evidence) * x, target)
    assert (deleted < target_prob(model, x, target) - 0.05).all()


def test_objective_by_hand(cnn1d):
    mask = torch.tensor([[[0.0, 0.5, 1.0, 0.5]]])
    score = torch.tensor([0.25])
    assert FGVis(cnn1d, game="preservation", sparsity=0.2).objective(mask, score).item() == pytest.approx(
        0.2 * 0.5 - 0.25)
    assert FGVis(cnn1d, game="deletion", sparsity=0.2).objective(mask, score).item() == pytest.approx(
        0.2 * 0.5 + 0.25)


def _paper_loop(explainer, x, target):
    """FGVis written the direct way: the whole objective (times D) by autograd, torch.optim.SGD, and the
    defense through the functional interception only."""
    mask = torch.ones_like(x, requires_grad=True)
    optimiser = torch.optim.SGD([mask], lr=explainer.lr, momentum=explainer.momentum)
    defense = ActivationRangeDefense()
    with torch.no_grad(), defense.recording():
        explainer.model(x)
    defense.hooked_modules = []
    for _ in range(explainer.iterations):
        with defense.filtering() if explainer.defense else contextlib.nullcontext():
            score = explainer.model(mask * x).softmax(1)[torch.arange(x.shape[0]), target]
        optimiser.zero_grad()
        (x[0].numel() * explainer.objective(mask, score).sum()).backward()
        optimiser.step()
        with torch.no_grad():
            mask.clamp_(0, 1)
    return mask.detach() if explainer.game == "preservation" else 1 - mask.detach()


@pytest.mark.parametrize("which", ["1d", "2d"])
@pytest.mark.parametrize(("game", "defense"), [("preservation", True), ("deletion", True), ("preservation", False)])
def test_the_explainer_follows_the_paper_loop(which, game, defense, float64_case, assert_follows_paper_loop):
    model64, x64 = float64_case(which)
    explainer = FGVis(model64, game=game, defense=defense, iterations=12, lr=0.2, progress=False)
    assert_follows_paper_loop(explainer, x64, _paper_loop)


@pytest.mark.parametrize("which", ["1d", "2d"])
@pytest.mark.parametrize("game", ["preservation", "deletion"])
def test_batched_run_equals_single_image_runs(which, game, float64_case):
    model64, x64 = float64_case(which)
    explainer = FGVis(model64, game=game, iterations=8, progress=False)
    target = torch.tensor([0, 3, 5])
    together = explainer.attribute(x64, target)
    for i in range(x64.shape[0]):
        torch.testing.assert_close(together[i:i + 1], explainer.attribute(x64[i:i + 1], target[i:i + 1]),
                                   rtol=0, atol=1e-10)
    assert any(not torch.allclose(together[0], together[i]) for i in range(1, x64.shape[0]))  # not vacuous


def test_explain_averages_channels(vgg, images):
    explainer = FGVis(vgg, iterations=3, progress=False)
    torch.testing.assert_close(explainer.explain(images), explainer.attribute(images).mean(1))


def test_model_state_is_restored():
    torch.manual_seed(4)
    model = VGG7()
    model.train()
    model.features[1].inplace = True
    model.classifier.bias.requires_grad_(False)
    FGVis(model, iterations=2, progress=False).attribute(torch.rand(2, 3, 16, 16), target=1)
    assert all(m.training for m in model.modules())
    assert model.features[1].inplace is True
    assert model.classifier.bias.requires_grad is False
    assert all(p.requires_grad for name, p in model.named_parameters() if name != "classifier.bias")
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
               for m in model.modules())
    assert torch.relu(torch.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]   # no mode left active


@pytest.mark.parametrize("options", [
    {"game": "insertion"}, {"sparsity": -1}, {"iterations": 0}, {"iterations": True}, {"lr": 0},
    {"lr": float("inf")}, {"momentum": 1.0}, {"defense": "yes"},
])
def test_bad_options_raise(options, cnn1d):
    with pytest.raises(ValueError):
        FGVis(cnn1d, **options)


def test_bad_inputs_raise(cnn1d, signals):
    explainer = FGVis(cnn1d, iterations=1, progress=False)
    with pytest.raises(ValueError):
        explainer.attribute(signals[0])
    with pytest.raises(ValueError):
        explainer.attribute(signals, target=[1, 2])


def test_registered_by_name():
    assert get("fgvis") is FGVis
