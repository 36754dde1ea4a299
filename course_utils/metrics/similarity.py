"""Similarity of two batches of explanation maps, as used by the sanity checks (Adebayo et al. 2018, Sec. 3).

- :func:`spearman`: per-sample Spearman rank correlation (Pearson correlation of average ranks).
- :func:`ssim`: per-sample structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004, Eq. 13) with the
  paper's Gaussian window (σ = 1.5, 11 taps), ``K1 = 0.01``, ``K2 = 0.03``, population (co)variances, averaged
  over the positions where the whole window fits inside the map.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5


def spearman(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-row Spearman rank correlation of two ``(N, …)`` maps (average ranks for ties; NaN for a constant row)."""
    ra = rankdata(a.flatten(1).double().cpu().numpy(), axis=1)
    rb = rankdata(b.flatten(1).double().cpu().numpy(), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1.0), np.nan)


def _window_mean(x: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted local mean of ``(N, *spatial)`` over every spatial axis, 'valid' positions only."""
    t = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / SSIM_SIGMA) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    for axis in range(1, x.dim()):
        moved = x.movedim(axis, -1)
        out = nn.functional.conv1d(moved.reshape(-1, 1, moved.shape[-1]), kernel)
        x = out.reshape(*moved.shape[:-1], out.shape[-1]).movedim(-1, axis)
    return x


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> np.ndarray:
    """Per-sample mean SSIM of two ``(N, *spatial)`` maps whose values span ``data_range``."""
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(f"maps {tuple(a.shape)} and {tuple(b.shape)} must share one (N, *spatial) shape.")
    if min(a.shape[1:]) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs maps of at least {2 * SSIM_RADIUS + 1} positions per axis, "
                         f"not {tuple(a.shape[1:])}; compare with spearman() instead.")
    a, b = a.detach().double(), b.detach().double()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _window_mean(a), _window_mean(b)
    var_a = _window_mean(a * a) - mu_a ** 2
    var_b = _window_mean(b * b) - mu_b ** 2
    cov = _window_mean(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1).cpu().numpy()


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Each map rescaled to [0, 1] (a constant map becomes 0)."""
    flat = maps.flatten(1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    span = torch.where(high > low, high - low, torch.ones_like(high))
    return ((flat - low) / span).reshape(maps.shape)
