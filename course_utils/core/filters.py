"""The separable Gaussian blur shared by a perturbation method (Fong & Vedaldi 2017, Eq. 2's blurred reference)
and a metric (Petsiuk et al. 2018, Sec. 4.1's blurred start of the insertion curve)."""
from __future__ import annotations

import math

import torch
from torch import nn

PADDINGS = ("replicate", "reflect")


def gaussian_blur(x: torch.Tensor, sigma: float, padding: str = "replicate") -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, L)`` or ``(N, C, H, W)`` inputs along every spatial axis, per channel.

    Kernel: ``exp(-t² / 2σ²)`` on ``t = -r … r`` with ``r = ceil(3σ)``, normalised to sum 1. ``padding``:
    ``"replicate"`` repeats the border sample (SciPy's ``"nearest"``); ``"reflect"`` mirrors without repeating it
    (``d c b | a b c d``, SciPy's ``"mirror"``), and then ``r`` is capped at ``size − 1`` so the reflection stays
    inside the input.
    """
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma < math.inf:
        raise ValueError(f"blur sigma must be a positive number of positions, not {sigma!r}.")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}.")
    out = x
    for axis in range(2, x.dim()):
        size = x.shape[axis]
        radius = math.ceil(3 * sigma) if padding == "replicate" else min(math.ceil(3 * sigma), size - 1)
        if radius < 1:
            continue
        t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
        kernel = torch.exp(-t ** 2 / (2 * sigma ** 2))
        kernel = kernel / kernel.sum()
        moved = out.movedim(axis, -1)
        rows = nn.functional.pad(moved.reshape(-1, 1, size), (radius, radius), mode=padding)
        out = nn.functional.conv1d(rows, kernel.view(1, 1, -1)).reshape(moved.shape).movedim(-1, axis)
    return out
