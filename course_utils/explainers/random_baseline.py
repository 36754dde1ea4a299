"""Random maps: the baseline every explainer must beat on a faithfulness metric.

Adebayo et al. 2018 (Sec. 3) and Petsiuk et al. 2018 (Sec. 4.1) both read their scores against maps that know
nothing about the model. Each position gets an independent uniform draw, shared by all channels; the maps come
from a generator seeded with ``seed`` at every call, so the same seed gives the same maps.
"""
from __future__ import annotations

import torch

from course_utils.core.checks import check_seed
from course_utils.explainers.base import Explainer, register


@register("random")
class RandomBaseline(Explainer):
    """Uniform random saliency in [0, 1) per spatial position (the model is not consulted)."""

    reduction = "first"
    stochastic = True

    def __init__(self, model, seed: int = 0, progress: bool = False):
        super().__init__(model, seed=check_seed(seed), progress=progress)

    def _attribute(self, x, target):
        generator = torch.Generator().manual_seed(self.seed)
        maps = torch.rand((x.shape[0], 1, *x.shape[2:]), generator=generator, dtype=x.dtype)
        return maps.to(x.device).expand_as(x).clone()
