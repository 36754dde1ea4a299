"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

Saliency is the expected random mask weighted by the model's score on the masked input (Eq. 6):
``S_c = Σ_i P_c(x ⊙ M_i) · M_i / (N · p)``, where ``E[M] = p``. The masks follow Sec. 3.2: a random binary grid
of ``s × s`` cells (``s`` cells in 1-D), each on with probability ``p``, upsampled bilinearly (linearly in 1-D)
to ``(s + 1) · ⌈size / s⌉`` and cropped to the input size at a random shift in ``[0, ⌈size / s⌉)``.
Masked-out parts become 0 (black), the same as the paper's masking. The score is the target softmax probability.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

from course_utils.core.batching import auto_rows, fast_layout
from course_utils.core.checks import check_positive_int, check_seed
from course_utils.explainers.base import Explainer, progress_bar, register, upsample

DEFAULT_N_MASKS = {1: 2000, 2: 4000}
"""Masks per call: 4000 for images (the paper's count for ResNet/VGG); 2000 for 40-point signals, which have
10 cells instead of 49 and need fewer samples for the same Monte Carlo error."""

DEFAULT_CELLS = {1: 10, 2: 8}
"""Grid cells per axis: 8 × 8 for images (the paper's 7 × 7 at 224 px makes 32-px cells; 8 × 8 at the kit's
64 px makes 8-px cells, about a tissue texture's scale); 10 for 40-point signals (4-point cells, the surrogate
methods' default segment length)."""


def generate_masks(size: Sequence[int], n_masks: int, cells: int, p: float = 0.5, seed: int = 0,
                   device: torch.device | str = "cpu", chunk: int = 500) -> torch.Tensor:
    """``(n_masks, *size)`` RISE masks in [0, 1] (Petsiuk et al. 2018, Sec. 3.2).

    ``size`` is ``(L,)`` or ``(H, W)``. All random draws (grids, then shifts) come from one generator seeded
    with ``seed`` before any upsampling, so the result does not depend on ``chunk`` (masks upsampled at a time).
    """
    size = tuple(int(s) for s in size)
    if len(size) not in (1, 2) or min(size) < 1:
        raise ValueError(f"size must be (L,) or (H, W) with positive entries, not {size}.")
    check_positive_int("n_masks", n_masks)
    check_positive_int("cells", cells)
    if cells > min(size):
        raise ValueError(f"cells={cells} is more than the input size {size}; pass cells ≤ {min(size)}.")
    if not 0.0 < float(p) <= 1.0:
        raise ValueError(f"p (keep probability) must be in (0, 1], not {p!r}.")
    gen = torch.Generator().manual_seed(int(seed))
    grids = (torch.rand((n_masks, 1) + (cells,) * len(size), generator=gen) < p).float()
    cell = [math.ceil(s / cells) for s in size]
    shifts = torch.stack([torch.randint(0, c, (n_masks,), generator=gen) for c in cell], 1)
    up_size = [(cells + 1) * c for c in cell]
    masks = torch.empty((n_masks,) + size)
    for i0 in range(0, n_masks, chunk):
        i1 = min(i0 + chunk, n_masks)
        big = upsample(grids[i0:i1], up_size)[:, 0]
        masks[i0:i1] = _crop(big, shifts[i0:i1], size)
    return masks.to(device)


def _crop(big: torch.Tensor, shifts: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Window of ``size`` from each of ``big`` (n, *up_size), starting at that mask's ``shifts`` (n, dims)."""
    n = big.shape[0]
    idx = [shifts[:, d, None] + torch.arange(size[d]) for d in range(len(size))]
    if len(size) == 1:
        return big[torch.arange(n)[:, None], idx[0]]
    return big[torch.arange(n)[:, None, None], idx[0][:, :, None], idx[1][:, None, :]]


def _blocks(n_masks: int, n: int, rows: int) -> Iterator[tuple[slice, slice]]:
    """Blocks ``(masks, samples)`` of the ``n_masks × N`` masked inputs, at most ``rows`` per model pass."""
    masks_per_pass, samples_per_pass = max(1, rows // n), min(n, rows)
    for m0 in range(0, n_masks, masks_per_pass):
        for i0 in range(0, n, samples_per_pass):
            yield slice(m0, min(m0 + masks_per_pass, n_masks)), slice(i0, min(i0 + samples_per_pass, n))


@register("rise")
class RISE(Explainer):
    """RISE saliency (Petsiuk et al. 2018, Eq. 6) of the target softmax probability, broadcast over channels.

    Options: ``n_masks`` and ``cells`` (None = :data:`DEFAULT_N_MASKS` / :data:`DEFAULT_CELLS` for the input's
    dimension), keep probability ``p`` (paper: 0.5), ``seed``, ``batch_size`` (rows per model pass; None = by
    input size), ``progress``. ``masks=`` gives explicit ``(n_masks, *spatial)`` masks in [0, 1] instead (the
    ``E[M] = p`` normalisation still uses ``p``). Generated masks are kept in :attr:`masks_cache`, keyed by
    (size, n_masks, cells, p, seed, device), and reused by later calls on inputs of the same size.
    """

    reduction = "first"
    stochastic = True

    def __init__(self, model, n_masks: int | None = None, cells: int | None = None, p: float = 0.5,
                 seed: int = 0, batch_size: int | None = None, progress: bool = False,
                 masks: torch.Tensor | None = None):
        super().__init__(model, seed=check_seed(seed), progress=progress)
        check_positive_int("n_masks", n_masks, allow_none=True)
        check_positive_int("cells", cells, allow_none=True)
        check_positive_int("batch_size", batch_size, allow_none=True)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
            raise ValueError(f"p (keep probability) must be a number in (0, 1], not {p!r}.")
        if masks is not None:
            if not isinstance(masks, torch.Tensor) or not masks.is_floating_point() or masks.dim() not in (2, 3):
                raise ValueError("masks must be a float tensor shaped (n_masks, L) or (n_masks, H, W).")
            if masks.shape[0] == 0 or not torch.isfinite(masks).all() or masks.min() < 0 or masks.max() > 1:
                raise ValueError("masks must hold at least one mask, with finite values in [0, 1].")
        self.n_masks, self.cells, self.p, self.batch_size = n_masks, cells, float(p), batch_size
        self.masks = None if masks is None else masks.detach()
        self.masks_cache: dict[tuple, torch.Tensor] = {}

    def masks_for(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(n_masks, *spatial)`` masks used for inputs shaped like ``x`` (generated once, then cached)."""
        size = tuple(x.shape[2:])
        if self.masks is not None:
            if tuple(self.masks.shape[1:]) != size:
                raise ValueError(f"masks are shaped {tuple(self.masks.shape[1:])} but the input's spatial shape "
                                 f"is {size}; pass masks of shape (n_masks, *{size}).")
            return self.masks.to(device=x.device, dtype=x.dtype)
        dim = len(size)
        n_masks = self.n_masks or DEFAULT_N_MASKS[dim]
        cells = self.cells or min(DEFAULT_CELLS[dim], min(size))
        key = (size, n_masks, cells, self.p, self.seed, str(x.device))
        if key not in self.masks_cache:
            self.masks_cache[key] = generate_masks(size, n_masks, cells, self.p, self.seed, device=x.device)
        return self.masks_cache[key].to(x.dtype)

    def _attribute(self, x, target):
        masks = self.masks_for(x)
        n, n_masks = x.shape[0], masks.shape[0]
        rows = self.batch_size or auto_rows(x)
        scores = torch.empty(n_masks, n, device=x.device, dtype=x.dtype)
        blocks = list(_blocks(n_masks, n, rows))
        with torch.no_grad():
            for ms, ss in progress_bar(blocks, enabled=self.progress, desc="RISE"):
                m = masks[ms].unsqueeze(1).unsqueeze(2)
                batch = fast_layout((m * x[ss].unsqueeze(0)).flatten(0, 1))
                t = target[ss].repeat(m.shape[0])
                scores[ms, ss] = self.probs(batch, t).view(m.shape[0], -1)
            saliency = (scores.T @ masks.flatten(1)) / (n_masks * self.p)
        saliency = saliency.view((n, 1) + tuple(x.shape[2:]))
        return saliency.expand_as(x).contiguous()
