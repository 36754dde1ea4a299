"""Acceptable variations of the salient region (Thakur & Fischmeister 2020, ICPR, problem 2 of the poster).

Given inputs ``X``, a region ``B`` (1 = the salient region to vary; e.g. the thresholded box of a saliency map,
:func:`course_utils.metrics.threshold_box`) and a generator ``G`` (:mod:`course_utils.models.generative`), a
variation is the composite

    X′ = X ⊙ (1 − B) + B ⊙ G(z′),   z′ = argmin_z  L_reconstruction(z) + λ L_contextual(z)

(the poster's equations, a context-encoder / semantic-inpainting latent search in the manner of Pathak et al.
2016 and Yeh et al. 2017), with

* ``L_reconstruction = Σ R ⊙ (G(z) − X)²`` (in the generator's normalised units, summed over positions and
  channels), where ``R`` is the poster's weight: the inverted box ``1 − B`` convolved with an ``s×s`` mean
  filter (``s`` = ``window``, odd; ``s`` in 1-D), :func:`context_weights`. ``R`` is 1 deep in the context, 0
  deep inside ``B`` and ramps across the box's edge, so ``G(z)`` must match ``X`` outside ``B`` and join it
  smoothly at the border. The poster does not print the norm; we use the squared error of the context
  encoder's reconstruction loss (Pathak et al., Eq. 1).
* ``L_contextual = −log σ(D(X′))`` for a GAN (:class:`~course_utils.models.generative.GAN`): the poster's
  realism term, the discriminator's judgement of whether the composite ``X′`` is real. We use the
  non-saturating ``−log D`` rather than ``log(1 − D)`` (Yeh et al.'s perceptual loss) because ``log(1 − D)``
  has almost no gradient exactly where ``D`` rejects ``X′`` (Goodfellow et al. 2014, Sec. 3).

*Deviation, the VAE comparison.* With a VAE (no discriminator) the second term is replaced by the prior's
``½‖z‖²`` and ``L_reconstruction`` is divided by ``2σ²`` (σ its likelihood's ``noise_std``): the sum is then
the negative log-posterior of ``z`` and ``z′`` its MAP estimate. That is *not* the poster's realism term — the
prior density of ``z`` says nothing about whether ``X′`` looks real — and is kept only as the comparison.

Different starting points ``z₀ ~ N(0, I)`` (seeded) give different variations. ``value_range=(low, high)``
clips ``G(z′)`` to the valid input range (HMT tiles: ``(0, 1)``). ``z′`` is found by Adam on ``z`` only
(gradients by ``torch.autograd.grad``; the generator's parameters, mode and gradients are left as found).

Whether a variation is *acceptable* is the poster's question, answered by :func:`judge`: acceptable = realistic
(the discriminator's ``σ(D(X′))`` at least a threshold, e.g. a low quantile of its scores on real inputs) and
the model's outcome unchanged. A realistic variation that changes the class is a candidate counterfactual; an
unrealistic one is filtered out and says nothing about the model. The judge is only as good as ``D``: trained
against its own generator, it learns that generator's flaws, and another generator's output (the VAE's) may
pass it without being realistic.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_utils.core.progress import progress_bar


@dataclass(frozen=True)
class Variations:
    """``inputs`` ``(N, K, C, *s)`` the variations ``X′``; ``z`` ``(N, K, latent)``; ``outside_mse`` ``(N, K)``
    the mean squared error of ``G(z′)`` outside ``B`` (raw units); ``generated`` ``(N, K, C, *s)`` ``G(z′)``;
    ``loss`` ``(steps, N, K)`` the objective of every code at every step (before its update)."""

    inputs: torch.Tensor
    z: torch.Tensor
    outside_mse: torch.Tensor
    generated: torch.Tensor
    loss: torch.Tensor


def context_weights(region: torch.Tensor, window: int) -> torch.Tensor:
    """The poster's ``R``: the inverted region ``1 − B`` (``(N, *s)``) convolved with a ``window``-wide mean
    filter along every spatial axis (same size; at the input's border the mean over the positions inside)."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window (s) must be an odd positive int, e.g. 3, not {window!r}.")
    inverted = (1 - region).unsqueeze(1)
    pool = nn.functional.avg_pool1d if region.dim() == 2 else nn.functional.avg_pool2d
    return pool(inverted, window, stride=1, padding=window // 2, count_include_pad=False).squeeze(1)


def _check(generator, x, region, n_variations, steps, lr, context_weight, seed) -> torch.Tensor:
    if not (all(hasattr(generator, name) for name in ("generator", "discriminator", "decode", "normalize",
                                                       "latent"))
            or all(hasattr(generator, name) for name in ("decoder", "decode", "normalize", "latent",
                                                         "noise_std"))):
        raise ValueError("generator must be a course GAN or VAE: course_utils.models.load_generator('mnist1d' "
                         "or 'hmt', kind='gan' or 'vae').")
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


def objective(generator, z: torch.Tensor, target: torch.Tensor, region: torch.Tensor, weights: torch.Tensor,
              context_weight: float) -> torch.Tensor:
    """``L_reconstruction + λ L_contextual`` of every code ``z`` ``(M, latent)``, ``(M,)``; ``target`` is the
    normalised ``X``, ``region`` ``B`` and ``weights`` ``R`` with a channel axis (see the module docstring)."""
    if hasattr(generator, "discriminator"):
        fake = generator.generator(z)
        reconstruction = (weights * (fake - target).square()).flatten(1).sum(1)
        composite = target * (1 - region) + region * fake                 # X′ in normalised units
        realism = nn.functional.softplus(-generator.discriminator(composite).squeeze(1))   # −log σ(D(X′))
        return reconstruction + context_weight * realism
    fake = generator.decoder(z)
    reconstruction = (weights * (fake - target).square()).flatten(1).sum(1) / (2 * generator.noise_std ** 2)
    return reconstruction + context_weight * 0.5 * z.square().sum(1)


def acceptable_variations(generator, x: torch.Tensor, region: torch.Tensor, n_variations: int = 8,
                          steps: int = 200, lr: float = 0.05, context_weight: float = 1.0, window: int = 3,
                          seed: int = 0, value_range: tuple[float, float] | None = None,
                          progress: bool = True) -> Variations:
    """``n_variations`` variations of the region ``B`` of every input by the latent search of the module
    docstring (a GAN: the poster's; a VAE: the comparison); ``window`` is ``s`` of ``R``."""
    region = _check(generator, x, region, n_variations, steps, lr, context_weight, seed)
    if value_range is not None and (len(value_range) != 2 or not value_range[0] < value_range[1]):
        raise ValueError(f"value_range must be (low, high) with low < high, e.g. (0, 1), not {value_range!r}.")
    n, k = x.shape[0], n_variations
    inside = region.unsqueeze(1).repeat_interleave(k, 0)                   # (N·K, 1, *s), 1 inside B
    weights = context_weights(region, window).unsqueeze(1).repeat_interleave(k, 0)
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        target = generator.normalize(x).repeat_interleave(k, 0)
    start = torch.randn(n * k, generator.latent, generator=torch.Generator().manual_seed(seed))
    z = start.to(device=x.device, dtype=x.dtype).requires_grad_(True)
    first, second = torch.zeros_like(z), torch.zeros_like(z)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    history = []
    for step in progress_bar(range(1, steps + 1), enabled=progress, desc="variations"):
        with torch.enable_grad():
            loss = objective(generator, z, target, inside, weights, context_weight)
            (grad,) = torch.autograd.grad(loss.sum(), z)
        history.append(loss.detach())
        with torch.no_grad():                                               # Adam (Kingma & Ba 2015, Alg. 1)
            first.mul_(beta1).add_(grad, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            z -= lr * (first / (1 - beta1 ** step)) / ((second / (1 - beta2 ** step)).sqrt() + eps)
    generator.train(was_training)
    with torch.no_grad():
        generated = generator.decode(z.detach())
        if value_range is not None:
            generated = generated.clamp(*value_range)
        original = x.repeat_interleave(k, 0)
        inputs = original * (1 - inside) + inside * generated
        outside = ((generated - original).square() * (1 - inside)).flatten(1).sum(1)
        outside = outside / ((1 - inside).flatten(1).sum(1) * x.shape[1]).clamp(min=1e-12)
    unflat = lambda t: t.view(n, k, *t.shape[1:])
    return Variations(inputs=unflat(inputs), z=unflat(z.detach()), outside_mse=outside.view(n, k),
                      generated=unflat(generated), loss=torch.stack(history).view(steps, n, k))


@torch.no_grad()
def judge(model: nn.Module, gan, variations: Variations, target: torch.Tensor, threshold: float) -> dict:
    """Per variation ``(N, K)``: ``realism`` the discriminator's ``σ(D(X′))``; ``confidence`` the model's top
    softmax; ``keeps`` whether the model's class is ``target`` ``(N,)``; ``realistic`` ``realism ≥ threshold``;
    ``acceptable`` realistic and keeps the class; ``counterfactual`` realistic and flips it. Modes restored."""
    if not hasattr(gan, "realism_logit"):
        raise ValueError("gan must be a course GAN (its discriminator is the judge): "
                         "course_utils.models.load_generator('mnist1d' or 'hmt', kind='gan').")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a probability in [0, 1], e.g. a low quantile of σ(D) on real inputs, "
                         f"not {threshold!r}.")
    n, k = variations.inputs.shape[:2]
    flat = variations.inputs.flatten(0, 1)
    modes = model.training, gan.training
    model.eval(), gan.eval()
    probs = model(flat).softmax(1)
    realism = gan.realism_logit(flat).sigmoid().view(n, k)
    model.train(modes[0]), gan.train(modes[1])
    keeps = probs.argmax(1).view(n, k) == target.view(-1, 1)
    realistic = realism >= threshold
    return {"realism": realism, "confidence": probs.amax(1).view(n, k), "keeps": keeps, "realistic": realistic,
            "acceptable": realistic & keeps, "counterfactual": realistic & ~keeps}
