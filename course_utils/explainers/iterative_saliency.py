"""Iterative saliency: a random binary mask revised by the model's confidence (Thakur & Fischmeister, ICPR 2020).

"A generalizable saliency map-based interpretation of model outcome" (arXiv:2006.09504). A coarse binary mask
``M_t`` over a grid of cells is upsampled (with a random sub-cell shift, as in RISE) to ``U(M_t)`` and applied to
the input; the target's softmax probability ``p_t`` on the masked input drives a random revision of the
*preserved* set (cells with ``M_t > 0``) and of the *masked* set (cells with ``M_t = 0``):

    (1)  p_t = f_c(x ⊙ U(M_t)),       Δp_t = p_t − p_{t−1}   (p_{−1} = 0)
    (2)  B_{t+1}(u) = 1[r_t(u) > 1 − p_t]  if M_t(u) > 0     (a preserved cell stays with probability p_t)
         B_{t+1}(u) = 1[r_t(u) > p_t]      if M_t(u) = 0     (a masked cell returns with probability 1 − p_t)
    (3)  M_{t+1}(u) = B_{t+1}(u) · (1 − η |Δp_t|)  where B_{t+1}(u) > M_t(u) (cells just revealed)
         M_{t+1}(u) = B_{t+1}(u)                  elsewhere
    (4)  S = (1 / T) Σ_{t<T} U(M_t)

with ``r_t(u) ~ U(0, 1)``, ``M_0(u) ~ Bernoulli(initial_keep)`` and learning rate η. A confident masked input
is kept (its cells survive with probability ``p_t``) and accumulates in ``S``; an unconfident one is mostly
replaced; cells revealed at a step where the confidence jumped (either way) are down-weighted by the size of
the jump, the update of step (3).

Sources and choices: we could not read the paper's full text; the algorithm above follows the authors'
description ("randomly retaining p % of the unmasked pixels and (1 − p) % of the masked pixels, followed by
weighing the pixels using the class score") and their reference notebook: 8 × 8 grid, initial keep 0.3,
η = 0.02, the RISE-style shifted bilinear upsampling, and the update (3), whose two sign branches in the
notebook both give ``1 − η |Δp|``. The map ``S`` of (4) is the mean of the evaluated masks (the notebook's sum
divided by T), so it lies in [0, 1]. Grid: ``cells`` per spatial axis (8 by default, also for 40-point signals).
The removed input is replaced by ``baseline`` (0 = black, as ``x ⊙ U(M)``). The probabilities are
forward-only (no gradients).

Batches: every sample has its own mask and probabilities; the random numbers ``r_t`` and the shift are drawn
once per step for the whole batch (shape 1 along the batch axis) from a local generator seeded with ``seed``,
so image ``i`` of a batch follows exactly the run it follows alone with the same seed.
"""
from __future__ import annotations

import math

import torch

from course_utils.explainers.base import Explainer, progress_bar, register, upsample


@register("iterative_saliency")
class IterativeSaliency(Explainer):
    """Thakur & Fischmeister (2020) confidence-driven random mask revision, Eq. (1)–(4) of this module.

    ``attribute`` returns the map ``S`` in [0, 1] broadcast over channels (``explain`` takes the first).
    Options: ``iterations`` (T), ``cells`` (grid cells per spatial axis), ``initial_keep``, ``lr`` (η),
    ``baseline`` (value of removed input), ``seed``, ``progress``.
    """

    reduction = "first"

    def __init__(self, model, iterations: int = 1000, cells: int = 8, initial_keep: float = 0.3,
                 lr: float = 0.02, baseline: float = 0.0, seed: int = 0, progress: bool = True):
        super().__init__(model)
        for name, value in (("iterations", iterations), ("cells", cells)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}.")
        if isinstance(initial_keep, bool) or not isinstance(initial_keep, (int, float)) or not 0 < initial_keep < 1:
            raise ValueError(f"initial_keep must be a probability in (0, 1), e.g. 0.3, not {initial_keep!r}.")
        for name, value in (("lr", lr), ("baseline", baseline)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}.")
        if not 0 <= lr <= 1:
            raise ValueError(f"lr must be in [0, 1] so that weights stay in [0, 1], not {lr!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, not {seed!r}.")
        self.iterations, self.cells, self.initial_keep = iterations, cells, float(initial_keep)
        self.lr, self.baseline, self.seed, self.progress = float(lr), float(baseline), seed, progress

    def upsampled(self, grid: torch.Tensor, spatial, offsets) -> torch.Tensor:
        """``U(M)``: bilinear (linear in 1-D) upsampling to ``(cells + 1) · cell size``, cropped at ``offsets``."""
        cell = [math.ceil(s / self.cells) for s in spatial]
        big = upsample(grid, [(self.cells + 1) * c for c in cell])
        index = (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(offsets, spatial))
        return big[index]

    def _draw_offsets(self, spatial, generator: torch.Generator, device) -> list[int]:
        cell = [math.ceil(s / self.cells) for s in spatial]
        return [int(torch.randint(0, c, (1,), generator=generator, device=device)) for c in cell]

    @torch.no_grad()
    def _attribute(self, x, target):
        generator = torch.Generator(device=x.device).manual_seed(self.seed)
        spatial = x.shape[2:]
        grid_shape = (1, 1) + (self.cells,) * len(spatial)
        draw = torch.rand(grid_shape, generator=generator, device=x.device, dtype=x.dtype)
        mask = (draw < self.initial_keep).to(x.dtype).expand(x.shape[0], *grid_shape[1:]).clone()
        total = torch.zeros((x.shape[0], 1, *spatial), dtype=x.dtype, device=x.device)
        previous = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        view = (-1,) + (1,) * (mask.dim() - 1)
        for _ in progress_bar(range(self.iterations), enabled=self.progress, desc="iterative saliency"):
            kept = self.upsampled(mask, spatial, self._draw_offsets(spatial, generator, x.device))
            total += kept
            prob = self.probs(kept * x + (1 - kept) * self.baseline, target)
            change = (prob - previous).abs().view(view)
            p = prob.view(view)
            r = torch.rand(grid_shape, generator=generator, device=x.device, dtype=x.dtype)
            revised = torch.where(mask > 0, r > 1 - p, r > p).to(x.dtype)
            mask = torch.where(revised > mask, revised * (1 - self.lr * change), revised)
            previous = prob
        return (total / self.iterations).expand_as(x).clone()
