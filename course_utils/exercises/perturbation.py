"""Exercises on perturbation masks: the blend Φ and TV_β of Meaningful Perturbation (06), FGVis' gate (07), the
context weights R of Thakur & Fischmeister's acceptable variations (05_thakur_fischmeister)."""
from __future__ import annotations

import torch

from course_utils.exercises.calling import gate_value_and_gradient
from course_utils.explainers.base import upsample
from course_utils.exercises.spec import Case, Exercise, close


def perturb(x, mask, reference):
    """Φ(x; m) = m ⊙ x + (1 − m) ⊙ x̃, m upsampled to x (Fong & Vedaldi 2017, Eq. 2 with x̃ a reference)."""
    m = upsample(mask, x.shape[2:])
    return m * x + (1 - m) * reference


def perturb_cases(g):
    return [Case((torch.randn(3, 1, 40, generator=g), torch.rand(3, 1, 5, generator=g),
                  0.2 * torch.randn(3, 1, 40, generator=g)), "1-D: 3 signals of 40, masks of 5 cells"),
            Case((torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 1, 4, 4, generator=g),
                  torch.rand(2, 3, 16, 16, generator=g)), "2-D: 2 RGB images 16 × 16, masks 4 × 4"),
            Case((torch.rand(2, 3, 12, 8, generator=g), torch.rand(2, 1, 3, 2, generator=g),
                  torch.full((2, 3, 12, 8), 0.5)), "2-D: 12 × 8 images, masks 3 × 2, a grey reference")]


PERTURB = Exercise(
    "perturb", 2, perturb_cases, perturb, check=close(what="your perturbed input", terms="like x, (N, C, *s)"),
    description="m ⊙ x + (1 − m) ⊙ reference, with m upsampled to x by course_utils.explainers.base.upsample",
    forbidden=("course_utils.explainers.meaningful_perturbation",))


def tv_beta(mask, beta=3.0):
    """TV_β(m) = Σ_u Σ_axes |m(u + e_axis) − m(u)|^β per sample (Fong & Vedaldi 2017, Eq. 4), shaped (N,)."""
    total = torch.zeros(mask.shape[0], dtype=mask.dtype, device=mask.device)
    for axis in range(2, mask.dim()):
        total = total + mask.diff(dim=axis).abs().pow(beta).flatten(1).sum(1)
    return total


def tv_beta_cases(g):
    return [Case((torch.rand(3, 1, 6, generator=g), 3.0), "1-D masks of 6 cells, β = 3"),
            Case((torch.rand(2, 1, 8, 8, generator=g), 3.0), "2-D masks 8 × 8, β = 3"),
            Case((torch.rand(2, 1, 6, 4, generator=g), 1.0), "2-D masks 6 × 4, β = 1"),
            Case((torch.rand(2, 1, 7, generator=g), 2.5), "1-D masks of 7 cells, β = 2.5")]


TV_BETA = Exercise(
    "tv_beta", 2, tv_beta_cases, tv_beta, check=close(what="your TV", terms="(N,)"),
    description="Σ over positions and axes of |neighbour difference|^β, one value per sample",
    forbidden=("course_utils.explainers.meaningful_perturbation",))


def gradient_gate(h_perturbed, h_clean):
    """FGVis' defense (Wagner et al. 2019, Sec. 3.3): h_perturbed, whose gradient is cut wherever it leaves
    [min(0, h_clean), max(0, h_clean)]."""
    inside = (h_perturbed >= h_clean.clamp(max=0)) & (h_perturbed <= h_clean.clamp(min=0))
    return torch.where(inside, h_perturbed, h_perturbed.detach())


def gradient_gate_cases(g):
    def layer(*shape):
        clean = torch.randn(*shape, generator=g) * (torch.rand(*shape, generator=g) > 0.3)
        perturbed = 1.5 * torch.randn(*shape, generator=g)
        on_edge = torch.rand(*shape, generator=g) < 0.2
        return torch.where(on_edge, clean, perturbed), clean

    return [Case(layer(2, 8, 5, 5), "2-D layer (2 × 8 × 5 × 5), signed activations, some equal to the clean ones"),
            Case(layer(3, 6, 10), "1-D layer (3 × 6 × 10), signed activations, some equal to the clean ones"),
            Case((torch.tensor([0.5, 1.0, 3.0, -0.5, -2.0, 0.0]), torch.tensor([0.0, 2.0, 1.0, -1.0, -1.0, 0.0])),
                 "by hand: gradients pass only for entries 2, 4 and 6")]


GRADIENT_GATE = Exercise(
    "gradient_gate", 2, gradient_gate_cases, gradient_gate, harness=gate_value_and_gradient,
    check=close(what="(your gate's value, its gradient)"),
    description="value unchanged; gradient only where min(0, h_clean) ≤ h_perturbed ≤ max(0, h_clean)",
    forbidden=("course_utils.explainers",))


def context_weights(region, s):
    """Thakur & Fischmeister's R: the inverted box 1 − B, (N, *spatial), convolved with an s-wide (1-D) or s×s
    (2-D) mean filter, same size; near the border the mean over the window's positions inside the input."""
    inverted = (1 - region).unsqueeze(1)
    pool = torch.nn.functional.avg_pool1d if region.dim() == 2 else torch.nn.functional.avg_pool2d
    return pool(inverted, s, stride=1, padding=s // 2, count_include_pad=False).squeeze(1)


def context_weights_cases(g):
    def boxes(n, *shape):
        region = torch.zeros(n, *shape)
        for i in range(n):
            start = [int(torch.randint(0, size - 2, (1,), generator=g)) for size in shape]
            stop = [a + int(torch.randint(2, size - a + 1, (1,), generator=g)) for a, size in zip(start, shape)]
            region[(i, *[slice(a, b) for a, b in zip(start, stop)])] = 1
        return region

    return [Case((boxes(3, 40), 3), "1-D: 3 boxes in signals of 40, s = 3"),
            Case((boxes(2, 16, 16), 5), "2-D: 2 boxes in 16 × 16, s = 5"),
            Case((boxes(2, 12, 9), 3), "2-D: 2 boxes in 12 × 9, s = 3"),
            Case((torch.rand(2, 10, generator=g), 5), "1-D: soft regions in [0, 1] of 10 positions, s = 5"),
            Case((boxes(2, 8, 8), 1), "2-D: 2 boxes in 8 × 8, s = 1 (R = 1 − B)")]


CONTEXT_WEIGHTS = Exercise(
    "context_weights", 2, context_weights_cases, context_weights,
    check=close(what="your R", terms="like region, (N, *spatial)"),
    description="1 − B averaged over the s (1-D) or s × s (2-D) window around each position, positions inside only",
    forbidden=("course_utils.variations",))
