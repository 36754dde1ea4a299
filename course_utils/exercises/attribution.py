"""Exercises on attribution maps: Integrated Gradients (03), Grad-CAM (04, 08), RISE (05, 08)."""
from __future__ import annotations

import torch

from course_utils.exercises.calling import ModelRef
from course_utils.exercises.spec import Case, Exercise, close

CAM_LIBRARIES = ("course_utils.explainers", "captum", "pytorch_grad_cam", "torchcam")


def integrated_gradients(model, x, target, baseline, n_steps):
    """Sundararajan et al. 2017, Eq. 3 (right Riemann sum): (x − x′) ⊙ (1/m) Σ_k ∂F_c(x′ + k/m (x − x′))/∂x."""
    alphas = (torch.arange(1, n_steps + 1, dtype=x.dtype) / n_steps).view(-1, *[1] * x.dim())
    path = (baseline + alphas * (x - baseline)).flatten(0, 1).detach().requires_grad_(True)
    score = model(path).gather(1, target.repeat(n_steps)[:, None]).sum()
    (grads,) = torch.autograd.grad(score, path)
    return (x - baseline) * grads.view(n_steps, *x.shape).mean(0)


def integrated_gradients_cases(g):
    signals = torch.randn(3, 1, 40, generator=g)
    tiles = torch.rand(2, 3, 16, 16, generator=g)
    return [
        Case((ModelRef("mnist1d"), signals, torch.randint(0, 10, (3,), generator=g), torch.zeros_like(signals), 8),
             "MNIST-1D model, 3 signals, black baseline, 8 steps"),
        Case((ModelRef("mnist1d"), signals[:2], torch.randint(0, 10, (2,), generator=g),
              0.3 * torch.randn(2, 1, 40, generator=g), 20),
             "MNIST-1D model, 2 signals, a random baseline, 20 steps"),
        Case((ModelRef("hmt"), tiles, torch.randint(0, 8, (2,), generator=g), torch.zeros_like(tiles), 5),
             "HMT model, 2 random 16 × 16 tiles, black baseline, 5 steps"),
    ]


INTEGRATED_GRADIENTS = Exercise(
    "integrated_gradients", 2, integrated_gradients_cases, integrated_gradients,
    check=close(rtol=1e-3, atol=1e-4, what="your attributions", terms="shaped like x, (N, C, *s)"),
    description="(x − baseline) ⊙ mean of the target logit's gradients at k/n_steps along the path, k = 1..n_steps",
    forbidden=("course_utils.explainers", "captum"))


def gradcam_weights(gradients):
    """Grad-CAM channel weights (Selvaraju et al. 2017, Eq. 1): α_k = mean over positions of ∂y_c/∂A_k."""
    return gradients.flatten(2).mean(2)


def gradcam_weights_cases(g):
    return [Case((torch.randn(4, 6, 10, generator=g),), "1-D layer: 4 signals × 6 channels × 10 positions"),
            Case((torch.randn(2, 5, 4, 6, generator=g),), "2-D layer: 2 tiles × 5 channels × 4 × 6 positions"),
            Case((torch.randn(3, 8, 5, 5, generator=g) + 0.5,), "2-D layer: 3 tiles × 8 channels × 5 × 5")]


GRADCAM_WEIGHTS = Exercise(
    "gradcam_weights", 2, gradcam_weights_cases, gradcam_weights,
    check=close(what="your weights", terms="(N, K)"),
    description="the mean of each channel's gradient over all spatial positions", forbidden=CAM_LIBRARIES)


def gradcam_map(activations, gradients):
    """Grad-CAM at layer resolution (Selvaraju et al. 2017, Eqs. 1–2): ReLU(Σ_k α_k A_k)."""
    weights = gradients.flatten(2).mean(2)
    return torch.einsum("nk,nk...->n...", weights, activations).clamp(min=0)


def gradcam_map_cases(g):
    def layer(*shape, shift=0.0):
        while True:  # a case whose map is zero everywhere would not tell a ReLU from a constant
            activations = torch.randn(*shape, generator=g).clamp(min=0)
            gradients = torch.randn(*shape, generator=g) + shift
            if gradcam_map(activations, gradients).gt(0).any():
                return activations, gradients

    return [Case(layer(4, 6, 10), "1-D layer (4 signals × 6 channels × 10)"),
            Case(layer(2, 5, 4, 6), "2-D layer (2 tiles × 5 channels × 4 × 6)"),
            Case(layer(3, 4, 5, 5, shift=-0.2), "2-D layer (3 tiles × 4 channels × 5 × 5), mostly negative gradients")]


GRADCAM_MAP = Exercise(
    "gradcam_map", 3, gradcam_map_cases, gradcam_map, check=close(what="your map", terms="(N, *s)"),
    description="ReLU(Σ_k mean(grad_k) · A_k) at layer resolution", forbidden=CAM_LIBRARIES)


def rise_saliency(probs, masks, p):
    """RISE (Petsiuk et al. 2018, Eq. 6): S = Σ_i probs[:, i] · M_i / (N_masks · p)."""
    n_masks = masks.shape[0]
    return torch.tensordot(probs, masks, dims=([1], [0])) / (n_masks * p)


def rise_saliency_cases(g):
    return [Case((torch.rand(3, 16, generator=g), (torch.rand(16, 40, generator=g) < 0.5).float(), 0.5),
                 "1-D binary masks (3 signals, 16 masks of 40), p = 0.5"),
            Case((torch.rand(2, 12, generator=g), torch.rand(12, 8, 8, generator=g), 0.3),
                 "2-D soft masks (2 images, 12 masks of 8 × 8), p = 0.3"),
            Case((torch.rand(2, 10, generator=g), (torch.rand(10, 6, 5, generator=g) < 0.25).float(), 0.25),
                 "2-D binary masks (2 images, 10 masks of 6 × 5), p = 0.25")]


RISE_SALIENCY = Exercise(
    "rise_saliency", 2, rise_saliency_cases, rise_saliency, check=close(what="your saliency", terms="(N_img, *s)"),
    description="Σ_i probs[:, i] · masks[i] / (N_masks · p)", forbidden=("course_utils.explainers",))
