"""How a stochastic explainer's maps depend on its budget and on its seed (the questions of Thakur &
Fischmeister 2020: do the maps converge with the number of iterations, and do two runs agree?).

- :func:`convergence`: insertion / deletion AUC (Petsiuk et al. 2018, Sec. 4.1) against the budget of forward
  passes, for several explainers built by ``make(budget, seed)``.
- :func:`run_to_run_consistency`: maps of the same inputs from several seeds, compared pairwise by Spearman rank
  correlation and by the IoU of their top-``k`` positions (ties: the lower flat index, :mod:`.ranking`).
"""
from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from course_utils.core.progress import progress_bar
from course_utils.metrics.insertion_deletion import deletion, insertion
from course_utils.metrics.ranking import top_k_mask
from course_utils.metrics.similarity import spearman

MakeExplainer = Callable[[int, int], object]


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be at least two distinct ints, e.g. range(5), not {seeds!r}.")
    return seeds


def top_k_iou(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """``(N,)`` IoU of the top-``k`` positions of two ``(N, *spatial)`` batches of maps."""
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(f"maps {tuple(a.shape)} and {tuple(b.shape)} must share one (N, *spatial) shape.")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= a[0].numel():
        raise ValueError(f"k must be an int in 1..{a[0].numel()}, not {k!r}.")
    ta, tb = top_k_mask(a.detach(), k).flatten(1), top_k_mask(b.detach(), k).flatten(1)
    return (ta & tb).sum(1) / (ta | tb).sum(1)


def run_to_run_consistency(make: MakeExplainer, x: torch.Tensor, target: torch.Tensor, budget: int,
                           seeds: Sequence[int] = range(5), k: int | None = None,
                           progress: bool = False) -> dict[str, float]:
    """Mean over samples and seed pairs of the Spearman correlation and top-``k`` IoU of the maps
    ``make(budget, seed).explain(x, target)`` (``k`` = 20 % of the positions by default)."""
    seeds = _check_seeds(seeds)
    maps = [make(budget, seed).explain(x, target).detach().cpu()
            for seed in progress_bar(seeds, enabled=progress, desc="seeds")]
    k = max(1, round(0.2 * maps[0][0].numel())) if k is None else k
    rho, iou = [], []
    for a, b in itertools.combinations(maps, 2):
        rho.append(spearman(a, b))
        iou.append(top_k_iou(a, b, k).numpy())
    return {"spearman": float(np.nanmean(np.concatenate(rho))), f"top-{k} IoU": float(np.mean(np.concatenate(iou)))}


def convergence(model: nn.Module, x: torch.Tensor, target: torch.Tensor, makers: dict[str, MakeExplainer],
                budgets: Sequence[int], seed: int = 0, step: int | None = None,
                progress: bool = False) -> list[dict]:
    """One row per (method, budget): the mean insertion and deletion AUC of ``make(budget, seed)``'s maps."""
    budgets = list(budgets)
    if not budgets or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in budgets):
        raise ValueError(f"budgets must be positive ints (forward passes), e.g. [50, 200, 1000], not {budgets!r}.")
    if not makers:
        raise ValueError("makers must map at least one method name to make(budget, seed) -> explainer.")
    rows = []
    for name, budget in progress_bar(list(itertools.product(makers, budgets)), enabled=progress,
                                     desc="convergence"):
        maps = makers[name](budget, seed).explain(x, target)
        rows.append({"method": name, "forward passes": budget,
                     "insertion AUC": insertion(model, x, maps, target, step=step).mean_auc,
                     "deletion AUC": deletion(model, x, maps, target, step=step).mean_auc})
    return rows
