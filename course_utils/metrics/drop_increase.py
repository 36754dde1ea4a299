"""Average Drop % and % Increase in Confidence (Chattopadhay et al. 2018, Grad-CAM++, Sec. 6.1).

The project's definition: for each sample keep the top-``k`` fraction of spatial positions of the explanation
map (all channels of a kept position) and set every other position to black, 0 in raw input space (the
models normalise inside ``forward``). With ``Y`` the target-class softmax probability on the original input
and ``O`` the one on the masked input,

    Drop %     = 100 · mean_i max(0, Y_i − O_i) / Y_i        (Grad-CAM++ Sec. 6.1, "Average Drop %")
    Increase % = 100 · mean_i 1[O_i > Y_i]                   (Grad-CAM++ Sec. 6.1, "% Increase in Confidence")

``k = max(1, round(keep · P))`` for ``P`` spatial positions (MNIST-1D: keep 0.3 → 12 of 40 points; HMT: keep
0.9). Ties in the map are broken by a stable sort on ``-map``: the lower flat index is kept first. A sample
whose ``Y`` is exactly 0 (underflow) has drop 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_utils.core.checks import TargetLike, check_batch_size, check_input, check_model
from course_utils.metrics.ranking import check_maps, top_k_mask
from course_utils.metrics.scoring import clean_outputs, gather, resolve_target, target_probability

KEEP_MNIST1D = 0.3
KEEP_HMT = 0.9


@dataclass(frozen=True)
class DropIncrease:
    """Result of :func:`drop_increase`: the two percentages and the per-sample values behind them."""

    drop: float
    increase: float
    y: torch.Tensor
    o: torch.Tensor
    drop_per_sample: torch.Tensor
    increased: torch.Tensor
    target: torch.Tensor


def default_keep(x: torch.Tensor) -> float:
    """The project's keep fraction: 0.3 for 1-D signals (MNIST-1D), 0.9 for images (HMT)."""
    return KEEP_MNIST1D if x.dim() == 3 else KEEP_HMT


def check_keep(keep) -> float:
    """``keep`` must be a number in (0, 1]."""
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ValueError(f"keep must be a fraction in (0, 1], not {keep!r}; e.g. keep=0.3 keeps 30 % of positions.")
    return float(keep)


def keep_count(keep: float, positions: int) -> int:
    """``k = max(1, round(keep · positions))``."""
    return max(1, round(keep * positions))


def keep_top_k(x: torch.Tensor, maps: torch.Tensor, keep: float = KEEP_MNIST1D) -> torch.Tensor:
    """``x`` with every position outside the top-``keep`` fraction of ``maps`` set to 0 (all channels)."""
    x = check_input(x)
    maps = check_maps(x, maps)
    k = keep_count(check_keep(keep), maps[0].numel())
    kept = top_k_mask(maps, k).unsqueeze(1)
    return torch.where(kept, x, torch.zeros((), dtype=x.dtype, device=x.device))


def drop_increase(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None,
                  keep: float = KEEP_MNIST1D, batch_size: int = 256,
                  probs: torch.Tensor | None = None) -> DropIncrease:
    """Drop % and Increase % of ``maps`` (``(N, *spatial)``) for ``model`` on ``x`` (``(N, C, *spatial)``).

    ``target``: the explained class (None = the class predicted on ``x``). The model is scored in eval mode in
    chunks of ``batch_size`` and left in the mode it was in. ``probs``: the model's softmax outputs on ``x``
    when already computed.
    """
    model = check_model(model)
    batch_size = check_batch_size(batch_size)
    masked = keep_top_k(x, maps, keep)
    x = check_input(x)
    probs = clean_outputs(model, x, batch_size, probs)
    target = resolve_target(probs, target)
    y = gather(probs, target)
    o = target_probability(model, masked, target, batch_size)
    positive = y > 0
    drops = torch.where(positive, (y - o).clamp(min=0) / torch.where(positive, y, 1.0), 0.0)
    increased = o > y
    return DropIncrease(drop=100.0 * drops.mean().item(), increase=100.0 * increased.float().mean().item(),
                        y=y, o=o, drop_per_sample=drops, increased=increased, target=target)
