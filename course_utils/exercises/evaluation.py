"""Exercises of the project (08): top-k masking and Drop% / Increase% (Chattopadhay et al. 2018, Sec. 6.1)."""
from __future__ import annotations

import torch

from course_utils.exercises.spec import Case, Exercise, close


def keep_top_k(x, saliency, keep):
    """x with all but the top round(keep · P) positions of the map zeroed in every channel; ties: lower index."""
    flat = saliency.reshape(saliency.shape[0], -1)
    k = max(1, round(keep * flat.shape[1]))
    order = torch.sort(-flat, dim=1, stable=True).indices[:, :k]
    kept = torch.zeros_like(flat, dtype=torch.bool).scatter(1, order, True).reshape(saliency.shape)
    return torch.where(kept.unsqueeze(1), x, x.new_zeros(()))


def keep_top_k_cases(g):
    return [Case((torch.randn(5, 1, 40, generator=g), torch.randn(5, 40, generator=g), 0.3),
                 "1-D signals (5 × 1 × 40), signed maps, keep 30 %"),
            Case((torch.rand(3, 3, 8, 8, generator=g), torch.randn(3, 8, 8, generator=g), 0.9),
                 "images (3 × 3 × 8 × 8), signed maps, keep 90 % (57.6 → 58 positions)"),
            Case((torch.randn(4, 2, 20, generator=g), torch.randint(-2, 3, (4, 20), generator=g).float(), 0.35),
                 "maps with ties (the lower index wins), keep 35 %"),
            Case((torch.rand(2, 3, 6, 5, generator=g), torch.randint(0, 3, (2, 6, 5), generator=g).float(), 0.5),
                 "6 × 5 images with ties, keep 50 %")]


KEEP_TOP_K = Exercise(
    "keep_top_k", 3, keep_top_k_cases, keep_top_k,
    check=close(what="your masked input", terms="like x, (N, C, *s)"),
    description="keep the top round(keep·P) positions of the map over all channels, zero the rest",
    forbidden=("course_utils.metrics",))


def drop_increase(y, o):
    """(Average Drop %, Increase in Confidence %) = (100·mean(max(0, y − o)/y), 100·mean(1[o > y]))
    (Chattopadhay et al. 2018, Sec. 6.1)."""
    drop = 100 * ((y - o).clamp(min=0) / y).mean().item()
    increase = 100 * (o > y).double().mean().item()
    return drop, increase


def drop_increase_cases(g):
    def scale(n, low, high):
        return low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)

    y = scale(50, 0.05, 1.0)
    ties = (y[:40] * scale(40, 0.2, 1.8)).clamp(max=1)
    ties[::4] = y[:40:4]
    return [Case((y, torch.rand(50, generator=g, dtype=torch.float64)), "random probabilities (50 samples)"),
            Case((y[:30], y[:30] * scale(30, 0.1, 0.9)), "no sample increases"),
            Case((y[:40], ties), "some masked probabilities equal the original ones (not an increase)")]


DROP_INCREASE = Exercise(
    "drop_increase", 2, drop_increase_cases, drop_increase,
    check=close(what="your (drop %, increase %)", terms="(drop %, increase %)"),
    description="(Drop %, Increase %) from original and masked target probabilities",
    forbidden=("course_utils.metrics",))
