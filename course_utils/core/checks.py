"""Checks of what a user passes in, each failing with one clear ``ValueError`` that names the fix.

Inputs are batched float tensors shaped ``(N, C, L)`` (signals) or ``(N, C, H, W)`` (images); targets are class
indices; options are validated by the small helpers at the end (positive ints, seeds, flags).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

TargetLike = int | Sequence[int] | torch.Tensor | None


def check_input(x) -> torch.Tensor:
    """``x`` must be a finite float tensor shaped (N, C, L) or (N, C, H, W) with N ≥ 1; returned detached."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, not {type(x).__name__}; wrap it with torch.as_tensor.")
    if x.dim() not in (3, 4):
        raise ValueError(f"x must be batched, shaped (N, C, L) or (N, C, H, W), not {tuple(x.shape)}; "
                         "add the batch axis with x.unsqueeze(0).")
    if not x.is_floating_point():
        raise ValueError(f"x must be a float tensor, not {x.dtype}; convert it with x.float().")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch; pass at least one sample.")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf; clean the input (e.g. torch.nan_to_num) first.")
    return x.detach()


def check_target(target: TargetLike, n: int, n_classes: int, device: torch.device | str) -> torch.Tensor:
    """``target`` (an int, N ints or an integer tensor) as a ``(N,)`` long tensor on ``device``, checked."""
    if isinstance(target, bool) or (isinstance(target, torch.Tensor) and target.is_floating_point()):
        raise ValueError("target must be an int, a sequence of ints or an integer tensor (or None).")
    t = torch.as_tensor(target, device=device)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError("target must be an int, a sequence of ints or an integer tensor (or None).")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"target has {t.numel()} labels for a batch of {n}; pass one int or N labels.")
    if (t < 0).any() or (t >= n_classes).any():
        raise ValueError(f"target {t.tolist()} is out of range for a model with {n_classes} classes "
                         f"(0..{n_classes - 1}).")
    return t.clone()


def check_model(model) -> nn.Module:
    """``model`` must be an ``nn.Module``."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, not {type(model).__name__}.")
    return model


def check_positive_int(name: str, value, allow_none: bool = False, none_means: str = ""):
    """``value`` must be an int ≥ 1 (or None when ``allow_none``; ``none_means`` says what None does, e.g.
    ``"automatic"``); returned unchanged."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{_or_none(allow_none, none_means)}, not {value!r}.")
    return value


def check_non_negative(name: str, value) -> float:
    """``value`` must be a finite number ≥ 0; returned as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number ≥ 0, not {value!r}.")
    return float(value)


def check_batch_size(batch_size) -> int:
    """A positive int."""
    return check_positive_int("batch_size", batch_size)


def check_seed(seed, allow_none: bool = False, none_means: str = ""):
    """``seed`` must be an int (or None when ``allow_none``; ``none_means`` says what None does)."""
    if seed is None and allow_none:
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int{_or_none(allow_none, none_means)}, not {seed!r}.")
    return seed


def _or_none(allow_none: bool, none_means: str) -> str:
    if not allow_none:
        return ""
    return f" or None ({none_means})" if none_means else " or None"
