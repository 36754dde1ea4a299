"""The optimiser updates of the mask-learning explainers, written out for their one tensor.

Meaningful Perturbation uses Adam, FGVis SGD with momentum. ``torch.optim``'s general machinery (parameter
groups, hooks, state dictionaries) costs about 0.15 ms per step on a CPU, as much as a forward and backward pass
of the 1-D CNN on a small batch; these classes apply the same formulas as ``torch.optim.Adam`` and
``torch.optim.SGD`` (same defaults, same order of operations; tests compare them) in a few in-place operations.
"""
from __future__ import annotations

import math

import torch


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1) on one tensor, as ``torch.optim.Adam(lr=lr)`` computes it.

    ``m ← β1 m + (1 − β1) g``, ``v ← β2 v + (1 − β2) g²``,
    ``θ ← θ − lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + ε)``.
    """

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m, self.v, self.t = torch.zeros_like(param), torch.zeros_like(param), 0

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        self.t += 1
        self.m.lerp_(grad, 1 - beta1)
        self.v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = self.v.sqrt().div_(math.sqrt(1 - beta2 ** self.t)).add_(self.eps)
        self.param.addcdiv_(self.m, denominator, value=-self.lr / (1 - beta1 ** self.t))


class SGD:
    """SGD with momentum on one tensor, as ``torch.optim.SGD(lr=lr, momentum=momentum)`` computes it.

    ``b ← g`` on the first step, then ``b ← μ b + g``; ``θ ← θ − lr · b`` (PyTorch's momentum convention).
    """

    def __init__(self, param: torch.Tensor, lr: float, momentum: float = 0.0):
        self.param, self.lr, self.momentum = param, lr, momentum
        self.buffer: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        if self.momentum == 0:
            direction = grad
        elif self.buffer is None:
            direction = self.buffer = grad.clone()
        else:
            direction = self.buffer.mul_(self.momentum).add_(grad)
        self.param.add_(direction, alpha=-self.lr)
