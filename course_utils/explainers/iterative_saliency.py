"""Iterative saliency: Algorithm 1 of Thakur & Fischmeister, "A generalizable saliency map-based interpretation
of model outcome" (ICPR 2020, arXiv:2006.09504).

Algorithm 1 as printed (``N`` iterations, a random initial mask ``M``, the position sets ``Λ_on`` / ``Λ_off``
where ``M`` is on / off)::

    for i = 1 … N:
        M upsampled;  p_i = f(I ⊙ M);  Δp = |p_i − p_{i−1}|
        Λ1 = n1 · p_i random positions of Λ_on,   Λ2 = n2 · (1 − p_i) random positions of Λ_off
        Λ_on ← Λ1 ∪ Λ2
        M_i(λ) = M_{i−1}(λ) · Δp  on Λ_on,   0  on Λ_off
        V = Σ ‖M^{x,y+1} − M^{x,y}‖² + Σ ‖M^{x+1,y} − M^{x,y}‖²
        M_i ← M_i + η V M_{i−1}
    return M

with ``n1 = |Λ_on|``, ``n2 = |Λ_off|``. Positions are the cells of a coarse grid (``cells`` per spatial axis);
"M upsampled" is the RISE upsampling (Petsiuk et al. 2018, Sec. 3.2): bilinear (linear in 1-D) to
``(cells + 1)`` cell sizes, cropped at a random shift. ``M_0`` is binary, each cell on with probability
``initial_keep``; ``p_0 = 0``; ``f`` is the target's softmax probability; the removed input becomes ``baseline``.

What the printed algorithm leaves open, and what we measured (notebook 05, section 7; README):

1. *Counts.* ``n1 · p_i`` is rarely an integer. Rounding it freezes the walk on a coarse grid: a confident model
   (p > 1 − 1/(2 n2)) never brings a cell back, so the walk stays at ``M_0``. We draw the count by stochastic
   rounding (floor, plus one with the probability of the fraction), so its expectation is exactly ``n · p``.
2. *The printed weights collapse to 0.* ``M_{i−1}(λ)`` is 0 on a cell that was off, so a cell of ``Λ2`` (brought
   back) gets 0, and every cell ever switched off stays 0 for good; the others are multiplied by ``Δp < 1`` at
   every step. ``M`` reaches exactly 0 within a few dozen iterations, and then ``p_i = f(I ⊙ 0)`` is constant
   and ``Δp = 0``. ``V`` is one number per image, so ``η V M_{i−1}`` rescales ``M_{i−1}`` rather than smoothing
   it, and cannot revive a zero. ``weights="printed"`` runs exactly this and returns the final ``M``.
3. *The minimal reading that works* (``weights="accumulated"``, the default): the sets ``Λ_on`` walk as printed
   and the input is masked by them (``M`` upsampled is the binary ``1[Λ_on]``), and the weight update is read
   as an accumulation instead of a product, ``M_i = M_{i−1} + Δp · 1[Λ_on]`` (a cell off at this step keeps its
   weight instead of being erased), followed by the printed ``M_i ← M_i + η V M_{i−1}`` with ``V`` the printed
   sum of squared neighbour differences of ``M_i / max M_i`` (scale-free; ``η = 0`` switches it off). The map
   is ``M_N / max M_N``.
4. ``weights="visits"``: the same walk, the map is the mean of the evaluated binary sets, ``(1/N) Σ 1[Λ_on]``,
   upsampled (the course's earlier reading, which ignores ``Δp``).

Every map is upsampled to the input without a shift (linear / bilinear, ``align_corners=False``); ``lr`` (η)
defaults to 0 because the paper gives no value and the term only rescales: on 100 MNIST-1D test signals
(300 iterations, 10 cells) η = 0.02 moved the deletion / insertion AUC by 0.003.

Batches: every sample has its own sets, weights and probabilities; the random numbers (shift, the order in which
positions are drawn, the stochastic rounding) are drawn once per step for the whole batch from a local generator
seeded with ``seed``, so sample ``i`` of a batch follows exactly the run it follows alone with the same seed.
"""
from __future__ import annotations

import math

import torch

from course_utils.core.checks import check_positive_int, check_seed
from course_utils.explainers.base import Explainer, progress_bar, register, upsample

READINGS = ("accumulated", "printed", "visits")


def total_variation(grid: torch.Tensor) -> torch.Tensor:
    """Algorithm 1's ``V``: ``Σ`` squared differences of neighbouring cells along every spatial axis, ``(N,)``."""
    return sum(grid.diff(dim=axis).square().flatten(1).sum(1) for axis in range(2, grid.dim()))


def draw_subset(members: torch.Tensor, share: torch.Tensor, order: torch.Tensor, fraction: torch.Tensor):
    """``share · |members|`` positions of ``members`` (N, C) taken in the order ``order`` (C,), the count rounded
    stochastically: ``floor(e)`` plus one when ``fraction`` (a U(0, 1) draw) is below ``e − floor(e)``."""
    expected = members.sum(1, keepdim=True) * share.view(-1, 1)
    count = expected.floor() + (fraction < expected - expected.floor()).to(members.dtype)
    ordered = members[:, order]
    taken = ordered * (ordered.cumsum(1) <= count)
    return torch.zeros_like(members).index_copy(1, order, taken)


@register("iterative_saliency")
class IterativeSaliency(Explainer):
    """Thakur & Fischmeister (2020), Algorithm 1 (see the module docstring for the readings).

    ``attribute`` returns the map broadcast over channels (``explain`` takes the first). Options:
    ``iterations`` (N, one forward pass each), ``cells`` (grid cells per spatial axis), ``initial_keep``,
    ``lr`` (η), ``weights`` (``"accumulated"``, ``"printed"`` or ``"visits"``), ``baseline``, ``seed``,
    ``progress``.
    """

    reduction = "first"
    stochastic = True

    def __init__(self, model, iterations: int = 1000, cells: int = 8, initial_keep: float = 0.3,
                 lr: float = 0.0, weights: str = "accumulated", baseline: float = 0.0, seed: int = 0,
                 progress: bool = True):
        super().__init__(model, seed=check_seed(seed), progress=progress)
        check_positive_int("iterations", iterations)
        check_positive_int("cells", cells)
        if isinstance(initial_keep, bool) or not isinstance(initial_keep, (int, float)) or not 0 < initial_keep < 1:
            raise ValueError(f"initial_keep must be a probability in (0, 1), e.g. 0.3, not {initial_keep!r}.")
        for name, value in (("lr", lr), ("baseline", baseline)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}.")
        if lr < 0:
            raise ValueError(f"lr (η) must be ≥ 0, not {lr!r}; 0 switches the total-variation term off.")
        if weights not in READINGS:
            raise ValueError(f"weights must be one of {READINGS}, not {weights!r}.")
        self.iterations, self.cells, self.initial_keep = iterations, cells, float(initial_keep)
        self.lr, self.weights, self.baseline = float(lr), weights, float(baseline)

    def upsampled(self, grid: torch.Tensor, spatial, offsets) -> torch.Tensor:
        """``U(M)``: bilinear (linear in 1-D) upsampling to ``(cells + 1) · cell size``, cropped at ``offsets``."""
        cell = [math.ceil(s / self.cells) for s in spatial]
        big = upsample(grid, [(self.cells + 1) * c for c in cell])
        index = (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(offsets, spatial))
        return big[index]

    @torch.no_grad()
    def _attribute(self, x, target):
        generator = torch.Generator(device=x.device).manual_seed(self.seed)
        n, spatial = x.shape[0], x.shape[2:]
        grid_shape = (n, 1) + (self.cells,) * len(spatial)
        size = self.cells ** len(spatial)
        cell = [math.ceil(s / self.cells) for s in spatial]
        on = (torch.rand(1, size, generator=generator, device=x.device, dtype=x.dtype)
              < self.initial_keep).to(x.dtype).expand(n, size).clone()
        weights = on.clone() if self.weights == "printed" else torch.zeros_like(on)
        previous = torch.zeros(n, dtype=x.dtype, device=x.device)
        for _ in progress_bar(range(self.iterations), enabled=self.progress, desc="iterative saliency"):
            offsets = [int(torch.randint(0, c, (1,), generator=generator, device=x.device)) for c in cell]
            shown = self.upsampled((weights if self.weights == "printed" else on).view(grid_shape), spatial,
                                   offsets)
            prob = self.probs(shown * x + (1 - shown) * self.baseline, target)
            change = (prob - previous).abs().view(-1, 1)
            previous = prob
            if self.weights == "visits":
                weights = weights + on
            order = torch.randperm(size, generator=generator, device=x.device)
            fractions = torch.rand(2, generator=generator, device=x.device, dtype=x.dtype)
            on = draw_subset(on, prob, order, fractions[0]) + draw_subset(1 - on, 1 - prob, order, fractions[1])
            if self.weights == "printed":
                new = weights * change * on
                weights = new + self.lr * total_variation(new.view(grid_shape)).view(-1, 1) * weights
            elif self.weights == "accumulated":
                new = weights + change * on
                top = new.amax(1, keepdim=True)
                roughness = total_variation((new / torch.where(top > 0, top, 1.0)).view(grid_shape))
                weights = new + self.lr * roughness.view(-1, 1) * weights
        if self.weights == "accumulated":
            top = weights.amax(1, keepdim=True)
            weights = weights / torch.where(top > 0, top, 1.0)
        elif self.weights == "visits":
            weights = weights / self.iterations
        return upsample(weights.view(grid_shape), spatial).expand_as(x).clone()
