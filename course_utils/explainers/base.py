"""The one contract every explainer follows (captum-style verb, pytorch-grad-cam-style base class).

``Method(model, seed=..., progress=..., **options)``, or :func:`build` by registry name; ``attribute(x,
target=None)`` → a tensor shaped like ``x``; ``explain(x, target=None)`` → an ``(N, *spatial)`` map for plots and
metrics, reduced over channels by the subclass's ``reduction``. Subclasses implement one function,
:meth:`Explainer._attribute`, which receives a checked input and a ``(N,)`` long tensor of targets, with the model
already in eval mode and its parameters' ``requires_grad`` switched off; :meth:`attribute` restores the model
exactly as it found it afterwards.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from course_utils.core.checks import TargetLike, check_input, check_model, check_seed, check_target
from course_utils.core.model_state import hooks_removed, model_state_preserved
from course_utils.core.progress import progress_bar

__all__ = ["Explainer", "TargetLike", "available", "build", "check_target", "find_layer", "get", "hooks_removed",
           "model_state_preserved", "progress_bar", "reduce_channels", "register", "upsample"]

_REGISTRY: dict[str, type[Explainer]] = {}


def register(name: str):
    """Class decorator: make an explainer available as ``get(name)``."""

    def deco(cls):
        if name in _REGISTRY:
            raise ValueError(f"explainer name {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get(name: str) -> type[Explainer]:
    """The explainer class registered as ``name`` (see :func:`available`)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown explainer {name!r}; choose one of {available()}.") from None


def available() -> list[str]:
    """Names of every registered explainer, sorted."""
    return sorted(_REGISTRY)


def build(name: str, model: nn.Module, seed: int = 0, progress: bool = False, **options) -> Explainer:
    """The explainer registered as ``name`` on ``model``: ``get(name)(model, seed=seed, progress=progress,
    **options)``. Every method takes ``seed`` and ``progress`` (see :class:`Explainer`)."""
    return get(name)(model, seed=seed, progress=progress, **options)


def find_layer(model: nn.Module, layer: nn.Module | str | None, kind: type | tuple = (nn.Conv1d, nn.Conv2d)):
    """Resolve ``layer`` (a module of ``model``, its dotted name, or None = the last module of ``kind``)."""
    if layer is None:
        found = [m for m in model.modules() if isinstance(m, kind)]
        if not found:
            raise ValueError("the model has no convolution layer; pass layer= explicitly.")
        return found[-1]
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer not in modules:
            raise ValueError(f"layer {layer!r} is not in the model; choose one of {list(modules)[1:]}.")
        return modules[layer]
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError("layer= is not a module of this model; pass one of model.modules() or its name.")
        return layer
    raise ValueError(f"layer= must be a module, its dotted name or None, not {type(layer).__name__}.")


class Explainer:
    """Base class. Subclasses set ``reduction`` and implement ``_attribute(x, target)``.

    ``reduction`` says how :meth:`explain` turns the ``(N, C, *spatial)`` attribution into ``(N, *spatial)``:
    ``"sum"`` (signed sum over channels), ``"abs_max"`` (max of |·| over channels, Simonyan 2014 Sec. 3.1),
    ``"abs_sum"``, ``"mean"``, or ``"first"`` (maps already broadcast over channels, e.g. CAM, RISE).

    Every method takes ``seed`` and ``progress``. ``seed`` fixes the random draws of a method that makes any
    (``stochastic`` True: noise, masks, perturbations, initial grids), so the same seed gives the same map; a
    method without randomness ignores it. ``progress`` shows a tqdm bar over a method's long loop (iterations,
    masks, windows); a method that runs in one pass ignores it. Subclasses pass both to this constructor.
    """

    name: ClassVar[str] = "explainer"
    reduction: ClassVar[str] = "sum"
    stochastic: ClassVar[bool] = False

    def __init__(self, model: nn.Module, seed: int | None = None, progress: bool = False):
        self.model = check_model(model)
        self.seed = check_seed(seed, allow_none=True)
        self.progress = bool(progress)
        self._n_classes: dict[tuple, int] = {}

    # -- the verb ---------------------------------------------------------------------------------------------
    def attribute(self, x: torch.Tensor, target: TargetLike = None) -> torch.Tensor:
        """Attribution for ``target`` (None = predicted class), shaped like ``x``."""
        x = self.check_input(x)
        with model_state_preserved(self.model):
            target = self.resolve_target(x, target)
            out = self._attribute(x, target)
        return out.detach()

    def explain(self, x: torch.Tensor, target: TargetLike = None) -> torch.Tensor:
        """``(N, *spatial)`` map: :meth:`attribute` reduced over channels by ``reduction``."""
        return reduce_channels(self.attribute(x, target), self.reduction)

    def _attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- shared helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def check_input(x) -> torch.Tensor:
        """``x`` must be a finite float tensor shaped (N, C, L) or (N, C, H, W) with N ≥ 1."""
        return check_input(x)

    def n_classes(self, x: torch.Tensor) -> int:
        """Number of model outputs for inputs like ``x``: one 1-sample forward pass, then remembered per input
        shape, dtype and device (an explainer is called again and again on the same kind of input)."""
        key = (tuple(x.shape[1:]), x.dtype, x.device)
        if key not in self._n_classes:
            with torch.no_grad():
                self._n_classes[key] = self.model(x[:1]).shape[1]
        return self._n_classes[key]

    def resolve_target(self, x: torch.Tensor, target: TargetLike) -> torch.Tensor:
        """A ``(N,)`` long tensor of class indices on ``x.device``; None → the model's prediction."""
        if target is None:
            with torch.no_grad():
                return self.model(x).argmax(1)
        return check_target(target, x.shape[0], self.n_classes(x), x.device)

    def logits(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The target logit of each sample, ``(N,)``."""
        return self.model(x).gather(1, target[:, None]).squeeze(1)

    def probs(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The target softmax probability of each sample, ``(N,)``."""
        return self.model(x).softmax(1).gather(1, target[:, None]).squeeze(1)


def reduce_channels(attr: torch.Tensor, how: str) -> torch.Tensor:
    """Reduce ``(N, C, *spatial)`` → ``(N, *spatial)``; see :class:`Explainer` for the options."""
    if how == "sum":
        return attr.sum(1)
    if how == "abs_max":
        return attr.abs().amax(1)
    if how == "abs_sum":
        return attr.abs().sum(1)
    if how == "mean":
        return attr.mean(1)
    if how == "first":
        return attr[:, 0]
    raise ValueError(f"unknown channel reduction {how!r}")


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``(N, C, *s)`` maps to ``size``: linear in 1-D, bilinear in 2-D (align_corners=False)."""
    mode = "linear" if maps.dim() == 3 else "bilinear"
    return nn.functional.interpolate(maps, size=tuple(size), mode=mode, align_corners=False)
