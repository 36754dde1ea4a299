"""Deletion and insertion curves (Petsiuk, Das & Saenko 2018, RISE, Sec. 4.1).

Deletion removes the most salient positions first (set to black, 0 in raw input space) and tracks the
target-class softmax probability: a good map makes it fall fast (low AUC). Insertion starts from a blurred
copy of the input (images: Gaussian-blurred image; 1-D signals: Gaussian-blurred signal) and puts the original
values back, most salient first: a good map makes it rise fast (high AUC). ``step`` positions change per step
(all channels of a position together; the last step may be shorter), so a curve has ``ceil(P / step) + 1``
points at the fractions ``0, step/P, …, 1`` of positions changed; the AUC is the trapezoid rule over that
[0, 1] axis. Ranking ties: stable sort on ``-map``, lower flat index first (see :mod:`.ranking`).

Every (sample, step) input is built from one rank comparison and scored in chunks of ``batch_size``: there
is no Python loop over samples or steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_utils.core.checks import TargetLike, check_batch_size, check_input, check_model
from course_utils.core.filters import gaussian_blur
from course_utils.core.progress import progress_bar
from course_utils.metrics.ranking import check_maps, salience_rank
from course_utils.metrics.scoring import clean_outputs, gather, model_outputs, resolve_target

BLUR_SIGMA = 5.0


@dataclass(frozen=True)
class Curves:
    """``fractions`` ``(S,)`` of positions changed, ``scores`` ``(N, S)`` target probabilities, ``auc`` ``(N,)``."""

    fractions: torch.Tensor
    scores: torch.Tensor
    auc: torch.Tensor
    target: torch.Tensor

    @property
    def mean_auc(self) -> float:
        """The AUC averaged over samples."""
        return self.auc.mean().item()


def auc(scores: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under ``scores`` (``(..., S)``) over ``fractions`` (``(S,)`` from 0 to 1)."""
    return torch.trapezoid(scores, fractions.to(scores), dim=-1)


def default_step(x: torch.Tensor) -> int:
    """1 position per step for 1-D signals; one image row's worth (width) for images, as RISE (224 on 224²)."""
    return 1 if x.dim() == 3 else x.shape[-1]


def _curves(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike, step: int | None,
            batch_size: int, start: torch.Tensor | None, progress: bool, probs: torch.Tensor | None) -> Curves:
    model = check_model(model)
    batch_size = check_batch_size(batch_size)
    x = check_input(x)
    maps = check_maps(x, maps)
    positions = maps[0].numel()
    step = default_step(x) if step is None else step
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= positions:
        raise ValueError(f"step must be an int of positions per step in 1..{positions}, not {step!r}.")
    target = resolve_target(clean_outputs(model, x, batch_size, probs), target)
    counts = torch.tensor([*range(0, positions, step), positions], device=x.device)
    ranks = salience_rank(maps)
    n, s = x.shape[0], counts.numel()
    deleting = start is None
    base = torch.zeros_like(x) if deleting else start
    flat_x, flat_base = x.flatten(2), base.flatten(2)
    scores = []
    chunks = torch.arange(n * s, device=x.device).split(batch_size)
    for jobs in progress_bar(chunks, enabled=progress, desc="deletion" if deleting else "insertion"):
        sample, point = jobs // s, jobs % s
        changed = (ranks[sample] < counts[point, None]).unsqueeze(1)
        use_x = ~changed if deleting else changed
        inputs = torch.where(use_x, flat_x[sample], flat_base[sample]).reshape(-1, *x.shape[1:])
        scores.append(gather(model_outputs(model, inputs, batch_size), target[sample]))
    scores = torch.cat(scores).reshape(n, s)
    fractions = counts.to(x.dtype) / positions
    return Curves(fractions=fractions, scores=scores, auc=auc(scores, fractions), target=target)


def deletion(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None,
             step: int | None = None, batch_size: int = 256, progress: bool = False,
             probs: torch.Tensor | None = None) -> Curves:
    """Deletion curve: most salient positions set to 0 first; lower AUC is better (RISE Sec. 4.1). ``probs``:
    the model's softmax outputs on ``x`` when already computed (they resolve and check ``target``)."""
    return _curves(model, x, maps, target, step, batch_size, start=None, progress=progress, probs=probs)


def insertion(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None,
              step: int | None = None, batch_size: int = 256, blur_sigma: float = BLUR_SIGMA,
              progress: bool = False, probs: torch.Tensor | None = None) -> Curves:
    """Insertion curve: most salient positions of ``x`` put into its Gaussian blur first; higher AUC is better.
    ``probs``: as for :func:`deletion`."""
    x = check_input(x)
    return _curves(model, x, maps, target, step, batch_size, start=gaussian_blur(x, blur_sigma),
                   progress=progress, probs=probs)
