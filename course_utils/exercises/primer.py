"""Exercises of the primer (00_xai_primer): occlusion and the energy-inside ground-truth metric."""
from __future__ import annotations

import torch

from course_utils.exercises.calling import ModelRef
from course_utils.exercises.spec import Case, Exercise, close


def occlusion(model, x, target, width):
    """Zeiler & Fergus 2014, Sec. 4.2, on signals: (N, L) drop of the target logit when points i … i + width − 1
    (clipped at the end) are set to 0."""
    length = x.shape[-1]
    points = torch.arange(length, device=x.device)
    starts = points[:, None]
    hidden = (points[None, :] >= starts) & (points[None, :] < starts + width)
    with torch.no_grad():
        base = model(x).gather(1, target[:, None])
        occluded = (x.unsqueeze(1) * (~hidden).to(x.dtype)[None, :, None, :]).flatten(0, 1)
        scores = model(occluded).view(len(x), length, -1).gather(2, target.view(-1, 1, 1).expand(-1, length, 1))
    return base - scores.squeeze(2)


def occlusion_cases(g):
    signals = torch.randn(3, 1, 40, generator=g)
    return [Case((ModelRef("mnist1d"), signals, torch.randint(0, 10, (3,), generator=g), 1),
                 "MNIST-1D model, 3 signals, a window of 1 point"),
            Case((ModelRef("mnist1d"), signals, torch.randint(0, 10, (3,), generator=g), 4),
                 "MNIST-1D model, 3 signals, a window of 4 points"),
            Case((ModelRef("mnist1d"), signals[:2], torch.randint(0, 10, (2,), generator=g), 9),
                 "MNIST-1D model, 2 signals, a window of 9 points (clipped at the end)")]


OCCLUSION = Exercise(
    "occlusion", 2, occlusion_cases, occlusion, check=close(rtol=1e-4, atol=1e-4, what="your drops", terms="(N, L)"),
    description="target logit of x minus that of x with points i … i + width − 1 set to 0, for every i",
    forbidden=("course_utils.explainers", "captum"))


def energy_inside(maps, truth):
    """Share of the positive map energy inside the ground truth (0 where a map has no positive value)."""
    positive = maps.clamp(min=0).flatten(1)
    total = positive.sum(1)
    inside = (positive * truth.flatten(1)).sum(1)
    return torch.where(total > 0, inside / total.where(total > 0, torch.ones_like(total)), torch.zeros_like(total))


def energy_inside_cases(g):
    flat = torch.randn(6, 40, generator=g)
    flat[0] = -flat[0].abs()
    return [Case((torch.randn(6, 40, generator=g), torch.rand(6, 40, generator=g) > 0.7), "1-D signed maps"),
            Case((torch.rand(2, 8, 8, generator=g), torch.rand(2, 8, 8, generator=g) > 0.5), "2-D positive maps"),
            Case((flat, torch.rand(6, 40, generator=g) > 0.5), "1-D maps, the first without any positive value")]


ENERGY_INSIDE = Exercise(
    "energy_inside", 2, energy_inside_cases, energy_inside, check=close(what="your shares", terms="(N,)"),
    description="Σ positive map inside / Σ positive map, per sample; 0 without positive values",
    forbidden=("course_utils.metrics",))
