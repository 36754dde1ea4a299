"""The contract every registered explainer keeps, checked on the whole registry (1-D and 2-D, N > 1).

Shapes, model restored (mode, requires_grad, in-place ReLUs, hooks, parameters), targets in every accepted
form, same seed → same map, and one ``ValueError`` per kind of bad input. Method-specific correctness lives in
each method's own test file.
"""
import pytest
import torch
from torch import nn

from course_utils.explainers import available, build as build_named, get
from course_utils.models import VGG7, ShallowCNN1D

CHEAP = {  # the fewest samples / steps that still exercise each method's full code path
    "fgvis": {"iterations": 3}, "iterative_saliency": {"iterations": 5}, "integrated_gradients": {"n_steps": 8},
    "kernelshap": {"n_samples": 32}, "lime": {"n_samples": 32}, "meaningful_perturbation": {"iterations": 3},
    "rise": {"n_masks": 32}, "smoothgrad": {"n_samples": 4},
}
SEEDED = [name for name in available() if get(name).stochastic]
PER_SAMPLE = [name for name in available() if name not in SEEDED] + ["meaningful_perturbation"]
"""Methods whose map of a sample does not depend on the rest of the batch (the sampling methods draw their noise
or masks for the whole batch at once, so only their seeded batch is reproducible)."""


def build(name, model, **options):
    return build_named(name, model, **{**CHEAP.get(name, {}), **options})


def setups():
    torch.manual_seed(0)
    signals = torch.randn(2, 1, 40, generator=torch.Generator().manual_seed(1))
    tiles = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return {"1d": (ShallowCNN1D(), signals, 10), "2d": (VGG7(), tiles, 8)}


SETUPS = setups()


def hook_count(model: nn.Module) -> int:
    return sum(len(getattr(m, a)) for m in model.modules() for a in
               ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"))


@pytest.mark.parametrize("dim", ["1d", "2d"])
@pytest.mark.parametrize("name", available())
def test_shapes_and_the_model_is_left_as_found(name, dim):
    model, x, _ = SETUPS[dim]
    model.train()
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    for m in relus:
        m.inplace = True
    first = next(model.parameters())
    first.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = hook_count(model)
    try:
        explainer = build(name, model)
        maps = explainer.attribute(x, target=[1, 2])
        heat = explainer.explain(x, target=[1, 2])
        assert model.training and all(m.training for m in model.modules())
        assert all(m.inplace for m in relus)
        assert not first.requires_grad and all(p.requires_grad for p in list(model.parameters())[1:])
        assert hook_count(model) == hooks
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    finally:
        model.eval().requires_grad_(True)
        for m in relus:
            m.inplace = False
    assert maps.shape == x.shape and maps.dtype == x.dtype and torch.isfinite(maps).all()
    assert heat.shape == (x.shape[0], *x.shape[2:]) and torch.isfinite(heat).all()
    assert not maps.requires_grad and not heat.requires_grad


@pytest.mark.parametrize("name", available())
def test_targets_as_int_list_tensor_or_predicted(name):
    model, x, _ = SETUPS["1d"]
    explainer = build(name, model)
    predicted = model(x).argmax(1)
    as_tensor = explainer.attribute(x, target=predicted)
    torch.testing.assert_close(explainer.attribute(x, target=predicted.tolist()), as_tensor)
    torch.testing.assert_close(explainer.attribute(x), as_tensor)
    if name in PER_SAMPLE:
        torch.testing.assert_close(explainer.attribute(x[:1], target=int(predicted[0])), as_tensor[:1])


@pytest.mark.parametrize("name", SEEDED)
def test_same_seed_same_map_other_seed_other_map(name):
    model, x, _ = SETUPS["2d"]
    # on an untrained model the deletion game's mask never leaves 1 (nothing to delete); preservation moves
    options = {"game": "preservation"} if name == "meaningful_perturbation" else {}
    a = build(name, model, seed=3, **options).attribute(x, target=[0, 1])
    b = build(name, model, seed=3, **options).attribute(x, target=[0, 1])
    c = build(name, model, seed=4, **options).attribute(x, target=[0, 1])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", [name for name in available() if name not in SEEDED])
def test_a_method_without_randomness_ignores_the_seed(name):
    model, x, _ = SETUPS["2d"]
    a = build(name, model, seed=3).attribute(x, target=[0, 1])
    b = build(name, model, seed=4).attribute(x, target=[0, 1])
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", available())
def test_every_method_takes_seed_and_progress_and_rejects_a_bad_seed(name):
    model, _, _ = SETUPS["1d"]
    explainer = build(name, model, seed=5, progress=True)
    assert (explainer.seed, explainer.progress) == (5, True)
    with pytest.raises(ValueError, match="seed"):
        build(name, model, seed="5")


def test_build_passes_the_method_options():
    model, _, _ = SETUPS["1d"]
    explainer = build_named("rise", model, seed=2, n_masks=8, cells=4)
    assert (explainer.seed, explainer.progress, explainer.n_masks, explainer.cells) == (2, False, 8, 4)


def bad_inputs(x, classes):
    nan = x.clone()
    nan[0, 0, 0] = float("nan")
    inf = x.clone()
    inf[-1, 0, -1] = float("inf")
    return {
        "rank": (x[0], None, "batched"),
        "dtype": ((x * 100).long(), None, "float"),
        "nan": (nan, None, "NaN or inf"),
        "inf": (inf, None, "NaN or inf"),
        "target range": (x, [0, classes], "target"),
        "negative target": (x, [-1, 0], "target"),
        "target length": (x, [0, 1, 2], "target"),
    }


@pytest.mark.parametrize("case", list(bad_inputs(torch.zeros(2, 1, 4), 10)))
@pytest.mark.parametrize("name", available())
def test_bad_input_raises_one_clear_value_error(name, case):
    model, x, classes = SETUPS["1d"]
    bad_x, target, message = bad_inputs(x, classes)[case]
    with pytest.raises(ValueError, match=message):
        build(name, model).attribute(bad_x, target=target)
