"""Percentile bootstrap intervals for the mean of per-sample scores (Efron & Tibshirani, *An Introduction to the
Bootstrap*, 1993, Sec. 13.3).

A table entry such as Drop %, Increase % or an AUC over ``n`` samples is a sample mean. Drawing ``n`` samples
with replacement ``n_resamples`` times and taking the ``(1 − confidence) / 2`` and ``(1 + confidence) / 2``
quantiles of the resampled means gives the percentile interval: how much the entry would move with another
draw of ``n`` test samples from the same pool. It does not cover the randomness of the explainer itself.
Increase % is a mean of 0/100 indicators, so over 48 tiles it moves in steps of 100/48 ≈ 2.1 %.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Interval(NamedTuple):
    """A sample mean and its bootstrap interval ``[low, high]``."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3g} [{self.low:.3g}, {self.high:.3g}]"


def bootstrap_interval(values, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Interval:
    """The mean of ``values`` (one score per sample, 1-D) with its percentile bootstrap interval.

    Same ``seed``, same interval. The resampled means are computed in float64; the quantiles interpolate
    linearly between the sorted means (``torch.quantile``).
    """
    if isinstance(values, torch.Tensor):
        scores = values.detach().cpu().to(torch.float64)
    else:
        scores = torch.as_tensor(np.asarray(values, dtype=np.float64))
    if scores.dim() != 1 or scores.numel() == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence of per-sample scores, got shape "
                         f"{tuple(scores.shape)}; pass e.g. result.drop_per_sample.")
    if not torch.isfinite(scores).all():
        raise ValueError("values contain NaN or inf; drop those samples before bootstrapping.")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a fraction in (0, 1), not {confidence!r}; e.g. confidence=0.95.")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, not {n_resamples!r}; e.g. n_resamples=2000.")
    generator = torch.Generator().manual_seed(int(seed))
    picks = torch.randint(scores.numel(), (n_resamples, scores.numel()), generator=generator)
    means = scores[picks].mean(1)
    tail = (1 - confidence) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return Interval(scores.mean().item(), low, high)
