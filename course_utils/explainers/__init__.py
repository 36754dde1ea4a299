"""Explainers: one verb, ``attribute(x, target=None)``, on every method; ``get(name)`` and ``available()``.

Each module below holds one method family and registers its methods by name on import.
"""
from course_utils.explainers.base import Explainer, available, get, reduce_channels, register
from course_utils.explainers import cam, fgvis, gradient, meaningful_perturbation, rise, sise, surrogate  # noqa: E402,F401,I001

__all__ = ["Explainer", "available", "get", "reduce_channels", "register"]
