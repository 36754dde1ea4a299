"""Localisation against ground-truth masks (MNIST-1D: the dataset's ``.positions``, (N, 40) bool).

- Pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop", Sec. 4.1): a hit when
  the map's maximum lies inside the truth (ties: the lower flat index, as everywhere in :mod:`.ranking`).
- Energy inside (Wang et al. 2020, Score-CAM, Sec. 5.2, "energy-based pointing game"): the share of the
  positive part of the map that falls inside the truth, ``Σ relu(m)·g / Σ relu(m)``; 0 for a map with no
  positive value.
- IoU of the top-``k`` positions of the map with the truth; ``k`` = the number of true positions of each
  sample by default.
- IoU of the thresholded map's box with the truth (Thakur & Fischmeister 2020, the binary box ``B``): the
  positions whose min–max normalised value reaches ``threshold``, closed to their bounding interval (1-D) or
  bounding box (2-D).
"""
from __future__ import annotations

import torch

from course_utils.metrics.ranking import salience_order, top_k_mask


def check_truth(maps, truth) -> tuple[torch.Tensor, torch.Tensor]:
    """``maps`` a finite float ``(N, *spatial)`` tensor and ``truth`` a bool tensor of the same shape."""
    if not isinstance(maps, torch.Tensor) or not isinstance(truth, torch.Tensor):
        raise ValueError("maps and truth must be torch tensors; wrap them with torch.as_tensor.")
    if maps.dim() < 2 or maps.shape != truth.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and truth {tuple(truth.shape)} must both be shaped "
                         "(N, *spatial); for MNIST-1D pass explainer.explain(x) and dataset.positions.")
    if truth.dtype != torch.bool:
        raise ValueError(f"truth must be a bool mask, not {truth.dtype}; convert it with truth.bool().")
    maps = maps.detach().float()
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or inf; clean them (torch.nan_to_num) first.")
    return maps, truth.to(maps.device)


def pointing_game(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``(N,)`` bool: the map's maximum lies inside the truth."""
    maps, truth = check_truth(maps, truth)
    peak = salience_order(maps)[:, :1]
    return truth.flatten(1).gather(1, peak).squeeze(1)


def energy_inside(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``(N,)`` share of the positive map energy inside the truth (0 when the map has no positive value)."""
    maps, truth = check_truth(maps, truth)
    positive = maps.clamp(min=0).flatten(1)
    total = positive.sum(1)
    inside = (positive * truth.flatten(1)).sum(1)
    return torch.where(total > 0, inside / torch.where(total > 0, total, 1.0), 0.0)


def iou_top_k(maps: torch.Tensor, truth: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """``(N,)`` intersection over union of the top-``k`` map positions with the truth (default ``k`` = |truth|)."""
    maps, truth = check_truth(maps, truth)
    positions = maps[0].numel()
    if k is None:
        k = truth.flatten(1).sum(1)
    elif isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= positions:
        raise ValueError(f"k must be an int in 1..{positions} (or None for the size of the truth), not {k!r}.")
    top = top_k_mask(maps, k).flatten(1)
    g = truth.flatten(1)
    union = (top | g).sum(1)
    inter = (top & g).sum(1)
    return torch.where(union > 0, inter / union.clamp(min=1), 0.0)


def threshold_box(maps: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Bool ``(N, *spatial)``: the bounding box of the positions whose min–max normalised value is ≥ ``threshold``
    (a constant map gives the whole input)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a number in [0, 1] (of the map's range), not {threshold!r}.")
    flat = maps.flatten(1)
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    hot = ((flat - low) >= threshold * (high - low)).reshape(maps.shape)
    box = torch.ones_like(hot)
    for axis in range(1, maps.dim()):
        others = [a for a in range(1, maps.dim()) if a != axis]
        along = hot.any(dim=others) if others else hot
        index = torch.arange(along.shape[1], device=maps.device)
        first = torch.where(along, index, along.shape[1]).amin(1)
        last = torch.where(along, index, -1).amax(1)
        inside = (index >= first[:, None]) & (index <= last[:, None])
        shape = [maps.shape[0]] + [maps.shape[a] if a == axis else 1 for a in range(1, maps.dim())]
        box = box & inside.reshape(shape)
    return box


def box_iou(maps: torch.Tensor, truth: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """``(N,)`` IoU of :func:`threshold_box` with the truth."""
    maps, truth = check_truth(maps, truth)
    box = threshold_box(maps, threshold).flatten(1)
    g = truth.flatten(1)
    return (box & g).sum(1) / (box | g).sum(1)


def localisation(maps: torch.Tensor, truth: torch.Tensor, k: int | None = None) -> dict[str, float]:
    """Mean pointing-game hit rate, energy inside and top-k IoU, as a dict for a results table."""
    return {"pointing game": pointing_game(maps, truth).float().mean().item(),
            "energy inside": energy_inside(maps, truth).mean().item(),
            "IoU top-k": iou_top_k(maps, truth, k).mean().item()}
