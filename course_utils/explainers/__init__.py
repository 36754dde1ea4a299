"""Explainers: one verb, ``attribute(x, target=None)``, on every method; ``get(name)`` and ``available()``.

Each module below holds one method family and registers its methods by name on import.
"""
from course_utils.explainers.base import Explainer, available, build, get, reduce_channels, register
from course_utils.explainers import (  # noqa: F401  (importing registers the methods)
    cam, excitation_backprop, fgvis, gradient, guided_backprop, iterative_saliency, meaningful_perturbation, occlusion,
    random_baseline, rise, sise, surrogate,
)

__all__ = ["Explainer", "available", "build", "get", "reduce_channels", "register"]
