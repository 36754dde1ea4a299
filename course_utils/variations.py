"""Acceptable variations of the salient region (Thakur & Fischmeister 2020, problem 2).

Given inputs ``X``, a region ``B`` (1 = the salient region to vary; e.g. the thresholded box of a saliency map,
:func:`course_utils.metrics.threshold_box`) and a generative model ``G`` (a VAE decoder,
:mod:`course_utils.models.generative`), a variation is

    X′ = X ⊙ (1 − B) + B ⊙ G(z′),   z′ = argmin_z  L_reconstruction(z) + λ L_contextual(z),

with ``L_reconstruction = Σ (1 − B) ⊙ (G(z) − X)² / (2σ²)`` (the squared error outside the region, in the
VAE's normalised units, σ its likelihood's ``noise_std``) and ``L_contextual = ½ ‖z‖²`` (how realistic ``G(z)``
is: the negative log-density of the VAE's prior ``N(0, I)``). With λ = 1 the sum is the negative log-posterior of ``z`` given the visible part of
``X`` under the VAE's Gaussian likelihood, so ``z′`` is its MAP estimate: ``G(z′)`` agrees with
the context and is a plausible sample, and the content it puts inside ``B`` is one acceptable variation.
Different starting points ``z₀ ~ N(0, I)`` (seeded) give different variations. ``value_range=(low, high)``
clips ``G(z′)`` to the valid input range (HMT tiles: ``(0, 1)``), as a decoder without a squashing output can
overshoot it. ``z′`` is found by Adam on ``z``
only (gradients by ``torch.autograd.grad``; the generator's parameters, mode and gradients are left as found).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from course_utils.core.progress import progress_bar


@dataclass(frozen=True)
class Variations:
    """``inputs`` ``(N, K, C, *s)`` the variations ``X′``; ``z`` ``(N, K, latent)``; ``outside_mse`` ``(N, K)``
    the mean squared error of ``G(z′)`` outside ``B`` (raw units); ``generated`` ``(N, K, C, *s)`` ``G(z′)``."""

    inputs: torch.Tensor
    z: torch.Tensor
    outside_mse: torch.Tensor
    generated: torch.Tensor


def _check(generator, x, region, n_variations, steps, lr, context_weight, seed) -> torch.Tensor:
    if not all(hasattr(generator, name) for name in ("decoder", "decode", "normalize", "latent", "noise_std")):
        raise ValueError("generator must be a course VAE: course_utils.models.load_generator('mnist1d' or 'hmt').")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() not in (3, 4):
        raise ValueError("x must be a float tensor shaped (N, 1, 40) for signals or (N, 3, H, W) for images.")
    if not isinstance(region, torch.Tensor):
        raise ValueError("region must be a tensor shaped (N, *spatial) with values in [0, 1], "
                         "e.g. threshold_box(maps).")
    if region.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"region has shape {tuple(region.shape)}; x {tuple(x.shape)} needs (N, *spatial) = "
                         f"{(x.shape[0], *x.shape[2:])} (drop the channel axis).")
    region = region.to(x.dtype)
    if not torch.isfinite(region).all() or region.min() < 0 or region.max() > 1:
        raise ValueError("region values must lie in [0, 1] (1 = vary this position).")
    for name, value in (("n_variations", n_variations), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, not {value!r}.")
    for name, value, low in (("lr", lr, 0.0), ("context_weight", context_weight, -1e-300)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low or value == float("inf"):
            raise ValueError(f"{name} must be a finite number {'> 0' if low == 0 else '≥ 0'}, not {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, not {seed!r}.")
    with torch.no_grad():
        shape = generator.decode(torch.zeros(1, generator.latent, device=x.device, dtype=x.dtype)).shape[1:]
    if tuple(shape) != tuple(x.shape[1:]):
        raise ValueError(f"the generator makes inputs shaped {tuple(shape)}, not {tuple(x.shape[1:])}; "
                         "resize x (HMT: hmt(image_size=64)).")
    return region


def acceptable_variations(generator, x: torch.Tensor, region: torch.Tensor, n_variations: int = 8,
                          steps: int = 200, lr: float = 0.05, context_weight: float = 1.0, seed: int = 0,
                          value_range: tuple[float, float] | None = None, progress: bool = True) -> Variations:
    """``n_variations`` acceptable variations of the region ``B`` of every input (see the module docstring)."""
    region = _check(generator, x, region, n_variations, steps, lr, context_weight, seed)
    if value_range is not None and (len(value_range) != 2 or not value_range[0] < value_range[1]):
        raise ValueError(f"value_range must be (low, high) with low < high, e.g. (0, 1), not {value_range!r}.")
    n, k = x.shape[0], n_variations
    keep = (1 - region).unsqueeze(1).repeat_interleave(k, 0)               # (N·K, 1, *s), 1 outside B
    with torch.no_grad():
        target = generator.normalize(x).repeat_interleave(k, 0)
    start = torch.randn(n * k, generator.latent, generator=torch.Generator().manual_seed(seed))
    z = start.to(device=x.device, dtype=x.dtype).requires_grad_(True)
    first, second = torch.zeros_like(z), torch.zeros_like(z)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in progress_bar(range(1, steps + 1), enabled=progress, desc="variations"):
        with torch.enable_grad():
            residual = (generator.decoder(z) - target) * keep
            prior = 0.5 * z.square().sum()
            loss = 0.5 * residual.square().sum() / generator.noise_std ** 2 + context_weight * prior
            (grad,) = torch.autograd.grad(loss, z)
        with torch.no_grad():                                               # Adam (Kingma & Ba 2015, Alg. 1)
            first.mul_(beta1).add_(grad, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            z -= lr * (first / (1 - beta1 ** step)) / ((second / (1 - beta2 ** step)).sqrt() + eps)
    with torch.no_grad():
        generated = generator.decode(z.detach())
        if value_range is not None:
            generated = generated.clamp(*value_range)
        inputs = x.repeat_interleave(k, 0) * keep + generated * (1 - keep)
        outside = ((generated - x.repeat_interleave(k, 0)).square() * keep).flatten(1).sum(1)
        outside = outside / (keep.flatten(1).sum(1) * x.shape[1]).clamp(min=1)
    unflat = lambda t: t.view(n, k, *t.shape[1:])
    return Variations(inputs=unflat(inputs), z=unflat(z.detach()), outside_mse=outside.view(n, k),
                      generated=unflat(generated))
