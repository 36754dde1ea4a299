"""Ranking the positions of an explanation map, most salient first, with a deterministic tie-break.

Tie-break rule (used by every metric here): positions are sorted by a *stable* sort on ``-map`` over the
flattened spatial axes, so among equal map values the lower flat (row-major) index ranks first.
"""
from __future__ import annotations

import torch


def check_maps(x: torch.Tensor, maps) -> torch.Tensor:
    """``maps`` must be a finite float tensor shaped ``(N, *spatial)`` for ``x`` shaped ``(N, C, *spatial)``."""
    if not isinstance(maps, torch.Tensor):
        raise ValueError(f"maps must be a torch.Tensor, not {type(maps).__name__}; use explainer.explain(x).")
    expected = (x.shape[0], *x.shape[2:])
    if tuple(maps.shape) != expected:
        hint = " (drop the channel axis: use explainer.explain(x), not attribute(x))" \
            if maps.dim() == x.dim() else ""
        raise ValueError(f"maps has shape {tuple(maps.shape)} but x {tuple(x.shape)} needs maps shaped "
                         f"(N, *spatial) = {expected}{hint}; resize or reduce the maps to match.")
    if not maps.is_floating_point():
        maps = maps.float()
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or inf; fix the explainer or clean them (torch.nan_to_num) first.")
    return maps.detach().to(x.device)


def salience_order(maps: torch.Tensor) -> torch.Tensor:
    """``(N, P)`` flat position indices, most salient first (stable sort on ``-map``: lower index wins ties)."""
    return torch.argsort(-maps.flatten(1), dim=1, stable=True)


def salience_rank(maps: torch.Tensor) -> torch.Tensor:
    """``(N, P)`` rank of each flat position (0 = most salient), the inverse of :func:`salience_order`."""
    order = salience_order(maps)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return ranks


def top_k_mask(maps: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """Bool ``(N, *spatial)``: True on the ``k`` most salient positions of each map (``k`` int or ``(N,)``)."""
    k = torch.as_tensor(k, device=maps.device).reshape(-1, 1)
    return (salience_rank(maps) < k).reshape(maps.shape)
