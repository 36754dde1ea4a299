"""Hidden checks for 08_project_evaluation (instructor only; never copied into notebooks/).

Four functions the student writes (signatures fixed by the notebook contract), each called on inputs drawn
with the grading run's secret generator and compared with the reference code below:

- ``keep_top_k``: Drop%/Increase% masking (Chattopadhay et al. 2018, Grad-CAM++, Sec. 6.1), stable ties.
- ``drop_increase``: Average Drop % and % Increase in Confidence (Grad-CAM++ Sec. 6.1).
- ``gradcam_map``: Grad-CAM at layer resolution (Selvaraju et al. 2017, Eqs. 1-2).
- ``rise_saliency``: RISE Monte-Carlo estimate (Petsiuk et al. 2018, Eq. 6).
"""
import torch

from course_utils.grading.rubric import Case, Exercise, Rubric


def keep_top_k(x, saliency, keep):
    flat = saliency.reshape(saliency.shape[0], -1)
    k = max(1, round(keep * flat.shape[1]))
    order = torch.sort(-flat, dim=1, stable=True).indices[:, :k]
    kept = torch.zeros_like(flat, dtype=torch.bool).scatter(1, order, True).reshape(saliency.shape)
    return torch.where(kept.unsqueeze(1), x, torch.zeros((), dtype=x.dtype))


def drop_increase(y, o):
    drop = 100 * ((y - o).clamp(min=0) / y).mean().item()
    increase = 100 * (o > y).double().mean().item()
    return drop, increase


def gradcam_map(activations, gradients):
    spatial = tuple(range(2, activations.dim()))
    weights = gradients.mean(dim=spatial, keepdim=True)
    return (weights * activations).sum(1).clamp(min=0)


def rise_saliency(probs, masks, p):
    return torch.einsum("nm,m...->n...", probs, masks) / (masks.shape[0] * p)


def keep_top_k_cases(g):
    ties = torch.randint(0, 4, (4, 20), generator=g).float()
    return [
        Case((torch.randn(5, 1, 40, generator=g), torch.randn(5, 40, generator=g), 0.3),
             "1-D signals (5 × 1 × 40), keep 30 %"),
        Case((torch.rand(3, 3, 8, 8, generator=g), torch.rand(3, 8, 8, generator=g), 0.9),
             "images (3 × 3 × 8 × 8), keep 90 %"),
        Case((torch.randn(4, 2, 20, generator=g), ties, 0.35), "maps with ties (lower index first), keep 35 %"),
    ]


def drop_increase_cases(g):
    def scale(n, low, high):
        return low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)

    y = scale(50, 0.05, 1.0)
    ties = (y[:40] * scale(40, 0.2, 1.8)).clamp(max=1)
    ties[::4] = y[:40:4]
    return [
        Case((y, torch.rand(50, generator=g, dtype=torch.float64)), "random probabilities (50 samples)"),
        Case((y[:30], y[:30] * scale(30, 0.1, 0.9)), "no sample increases"),
        Case((y[:40], ties), "some masked probabilities equal to the original (not an increase)"),
    ]


def gradcam_map_cases(g):
    return [
        Case((torch.randn(4, 6, 10, generator=g).clamp(min=0), torch.randn(4, 6, 10, generator=g)),
             "1-D layer (4 × 6 channels × 10)"),
        Case((torch.randn(2, 5, 4, 4, generator=g).clamp(min=0), torch.randn(2, 5, 4, 4, generator=g)),
             "2-D layer (2 × 5 channels × 4 × 4)"),
    ]


def rise_saliency_cases(g):
    return [
        Case((torch.rand(3, 16, generator=g), (torch.rand(16, 40, generator=g) < 0.5).float(), 0.5),
             "1-D masks (3 signals, 16 masks of 40), p = 0.5"),
        Case((torch.rand(2, 12, generator=g), torch.rand(12, 8, 8, generator=g), 0.3),
             "2-D soft masks (2 images, 12 masks of 8 × 8), p = 0.3"),
    ]


RUBRIC = Rubric(
    assignment="08_project_evaluation",
    exercises=[
        Exercise("keep_top_k", 3, keep_top_k_cases, keep_top_k,
                 description="keep the top round(keep·P) positions of the map over all channels, zero the rest",
                 forbidden_modules=("course_utils.metrics",)),
        Exercise("drop_increase", 2, drop_increase_cases, drop_increase,
                 description="(Drop %, Increase %) from original and masked target probabilities",
                 forbidden_modules=("course_utils.metrics",)),
        Exercise("gradcam_map", 3, gradcam_map_cases, gradcam_map,
                 description="ReLU(Σ_k mean(grad_k) · A_k) at layer resolution",
                 forbidden_modules=("course_utils.explainers",)),
        Exercise("rise_saliency", 2, rise_saliency_cases, rise_saliency,
                 description="Σ_i probs[:, i] · masks[i] / (N_masks · p)",
                 forbidden_modules=("course_utils.explainers",)),
    ],
)
