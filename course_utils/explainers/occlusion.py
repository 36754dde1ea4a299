"""Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014, Sec. 4.2).

A window slides over the input with a stride; at each position the window (all channels) is replaced by a
constant and the model scores the occluded input. The map of an input element is the mean, over the windows that
cover it, of the score's drop ``s_c(x) − s_c(x occluded)`` (positive = the class needed this part). Windows
start at 0, s, 2s, … until one reaches the end, the last ones cut at the border (as captum's ``Occlusion``), so
every element is covered unless the stride is larger than the window (uncovered elements get 0).

The paper occludes with a grey square and plots the probability of the true class; here the default constant is
0 (black in the kit's raw input space, the reference Drop% uses) and ``score`` is the softmax probability
(``"logit"`` gives the drop of the target logit, captum's ``Occlusion`` on the model's output).

Defaults: 1-D signals a 5-point window with stride 1 (36 positions on 40 points, about half a digit template);
2-D images an 8-pixel square with stride 4 (15 × 15 positions on 64 px tiles, the RISE cell size).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from course_utils.core.batching import auto_rows, fast_layout
from course_utils.core.checks import check_positive_int
from course_utils.explainers.base import Explainer, progress_bar, register

DEFAULT_WINDOW = {1: 5, 2: 8}
DEFAULT_STRIDE = {1: 1, 2: 4}
_SCORES = ("probability", "logit")


def _per_axis(name: str, value, dims: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        values = (value,) * dims
    elif isinstance(value, (list, tuple)):
        values = tuple(value)
    else:
        raise ValueError(f"{name} must be a positive int or one positive int per spatial axis, not {value!r}.")
    if len(values) != dims or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be a positive int or one positive int per spatial axis, not {value!r}.")
    return values


def window_masks(size: Sequence[int], window: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """``(P, *size)`` 0/1 masks, one per window position (row-major), ``P = Π (⌈(size − w) / s⌉ + 1)``; windows
    that reach past the end are cut at the border."""
    starts = [range(0, s - w + st, st) for s, w, st in zip(size, window, stride)]
    grids = torch.meshgrid(*[torch.tensor(list(r)) for r in starts], indexing="ij")
    corners = torch.stack([g.flatten() for g in grids], 1)
    masks = torch.zeros((corners.shape[0], *size))
    for k, corner in enumerate(corners.tolist()):
        masks[(k, *[slice(c, c + w) for c, w in zip(corner, window)])] = 1
    return masks


@register("occlusion")
class Occlusion(Explainer):
    """Sliding-window occlusion (Zeiler & Fergus 2014, Sec. 4.2), mean score drop per element, broadcast over
    channels.

    Options: ``window`` and ``stride`` (an int or one per spatial axis; None = the defaults in the module
    docstring), ``value`` (the occluding constant, 0 = black), ``score`` ("probability" | "logit"),
    ``batch_size`` (occluded inputs per pass, None = automatic), ``progress``.
    """

    reduction = "first"

    def __init__(self, model, window: int | Sequence[int] | None = None, stride: int | Sequence[int] | None = None,
                 value: float = 0.0, score: str = "probability", batch_size: int | None = None,
                 seed: int | None = None, progress: bool = True):
        super().__init__(model, seed=seed, progress=progress)
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, not {score!r}.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) < float("inf"):
            raise ValueError(f"value must be a finite number (the occluding constant), not {value!r}.")
        check_positive_int("batch_size", batch_size, allow_none=True, none_means="automatic")
        for name, option in (("window", window), ("stride", stride)):
            if option is not None:
                _per_axis(name, option, len(option) if isinstance(option, (list, tuple)) else 1)
        self.window, self.stride, self.value, self.score = window, stride, float(value), score
        self.batch_size = batch_size

    def windows(self, spatial: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(window, stride)`` per spatial axis for an input of size ``spatial``, checked against it."""
        dims = len(spatial)
        window = _per_axis("window", self.window, dims) or (DEFAULT_WINDOW[dims],) * dims
        stride = _per_axis("stride", self.stride, dims) or (DEFAULT_STRIDE[dims],) * dims
        if any(w > s for w, s in zip(window, spatial)):
            raise ValueError(f"window {window} is larger than the input {tuple(spatial)}; pass a smaller window=.")
        return window, stride

    def target_scores(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if self.score == "probability":
            out = out.softmax(1)
        return out.gather(1, target[:, None]).squeeze(1)

    def _attribute(self, x, target):
        n, spatial = x.shape[0], x.shape[2:]
        window, stride = self.windows(spatial)
        masks = window_masks(spatial, window, stride).to(x)               # (P, *spatial)
        counts = masks.sum(0)
        rows = self.batch_size or auto_rows(x)
        per_pass = max(1, rows // n)                                       # window positions per pass
        total = torch.zeros((n, *spatial), dtype=x.dtype, device=x.device)
        with torch.no_grad():
            clean = self.target_scores(x, target)
            chunks = range(0, masks.shape[0], per_pass)
            for p0 in progress_bar(chunks, enabled=self.progress, desc="occlusion", total=len(chunks)):
                block = masks[p0:p0 + per_pass]                             # (B, *spatial)
                keep = (1 - block)[:, None, None]                           # (B, 1, 1, *spatial)
                occluded = x[None] * keep + self.value * (1 - keep)         # (B, N, C, *spatial)
                scores = self.target_scores(fast_layout(occluded.flatten(0, 1)), target.repeat(block.shape[0]))
                drops = clean[None] - scores.view(block.shape[0], n)        # (B, N)
                total += torch.einsum("bn,b...->n...", drops, block)
        maps = torch.where(counts > 0, total / counts.clamp(min=1), torch.zeros_like(total))
        return maps[:, None].expand_as(x).clone()
