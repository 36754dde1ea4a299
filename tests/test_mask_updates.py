"""The written-out mask updates against torch.optim (the oracle) over many steps of random gradients."""
import pytest
import torch

from course_utils.explainers.mask_updates import SGD, Adam


def _run(make_ours, make_oracle, steps=25):
    gen = torch.Generator().manual_seed(0)
    start = torch.rand(4, 3, 5, generator=gen)
    ours, oracle = start.clone(), start.clone().requires_grad_(True)
    update, optimiser = make_ours(ours), make_oracle(oracle)
    for _ in range(steps):
        grad = torch.randn(start.shape, generator=gen) * torch.rand(1, generator=gen) * 3
        update.step(grad)
        oracle.grad = grad.clone()
        optimiser.step()
    return ours, oracle.detach(), start


@pytest.mark.parametrize("lr", [0.1, 1e-3])
def test_adam_matches_torch_optim(lr):
    ours, oracle, start = _run(lambda p: Adam(p, lr=lr), lambda p: torch.optim.Adam([p], lr=lr, foreach=False))
    torch.testing.assert_close(ours, oracle, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(ours, start)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_torch_optim(momentum):
    ours, oracle, start = _run(lambda p: SGD(p, lr=0.05, momentum=momentum),
                               lambda p: torch.optim.SGD([p], lr=0.05, momentum=momentum, foreach=False))
    torch.testing.assert_close(ours, oracle, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(ours, start)


def test_adam_first_step_moves_each_element_by_lr():
    param = torch.zeros(3)
    Adam(param, lr=0.1).step(torch.tensor([2.0, -0.5, 1e-3]))   # bias-corrected m/√v = sign(g) on step 1
    torch.testing.assert_close(param, torch.tensor([-0.1, 0.1, -0.1]), rtol=1e-4, atol=0)
