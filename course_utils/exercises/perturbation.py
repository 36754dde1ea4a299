"""Exercises on perturbation masks: the blend Φ and TV_β of Meaningful Perturbation (06), FGVis' gate (07)."""
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
    "perturb", 2, perturb_cases, perturb, check=close(what="your perturbed input", terms="shaped like x, (N, C, *s)"),
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
