"""The one contract every explainer follows (captum-style verb, pytorch-grad-cam-style base class).

``Method(model, **options)``; ``attribute(x, target=None)`` → a tensor shaped like ``x``;
``explain(x, target=None)`` → an ``(N, *spatial)`` map for plots and metrics, reduced over channels by the
subclass's ``reduction``. Subclasses implement one function, :meth:`Explainer._attribute`, which receives a
checked input and a ``(N,)`` long tensor of targets, with the model already in eval mode and its parameters'
``requires_grad`` switched off; :meth:`attribute` restores the model exactly as it found it afterwards.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from typing import ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

_REGISTRY: dict[str, type[Explainer]] = {}
TargetLike = int | Sequence[int] | torch.Tensor | None


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


def progress_bar(iterable, *, enabled: bool, desc: str, total: int | None = None):
    """tqdm bar (a widget in a notebook, plain text when not in a terminal or in CI); a no-op wrapper when
    ``enabled`` is False."""
    if not enabled:
        return iterable
    notebook = sys.modules.get("tqdm.notebook")
    if notebook is not None and issubclass(tqdm, notebook.tqdm):  # tqdm.auto chose widgets: a notebook kernel
        return _notebook_bar()(iterable, desc=desc, total=total, leave=False)
    plain = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    return tqdm(iterable, desc=desc, total=total, leave=False, ascii=plain, mininterval=1.0 if plain else 0.1)


@functools.cache
def _notebook_bar():
    """tqdm's notebook bar, shown under a display id and replaced by plain text when it closes.

    A closed widget bar would leave an output that points at a widget model which no longer exists, and a notebook
    saved with it shows "Error displaying widget: model not found" when reopened. The text is the bar's last line,
    or nothing for a ``leave=False`` bar that finished.
    """
    from IPython.display import display
    from tqdm.notebook import tqdm as widget_tqdm

    class NotebookBar(widget_tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, display=False, **kwargs)
            self.handle = None if self.disable else display(self.container, display_id=True)

        def close(self):
            finished = not (self.total and self.n < self.total)
            super().close()
            if getattr(self, "handle", None) is not None:
                self.handle.update({"text/plain": "" if finished and not self.leave else str(self)}, raw=True)
                self.handle = None

    return NotebookBar


@contextlib.contextmanager
def model_state_preserved(model: nn.Module) -> Iterator[nn.Module]:
    """Run with ``model`` in eval mode, parameters frozen, in-place ReLUs made out-of-place; restore all after.

    Restored: every module's ``training`` flag, every parameter's ``requires_grad``, every ``inplace``
    attribute. Hooks are not touched here; explainers remove their own hooks (see :func:`hooks_removed`).
    """
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    inplace = [(m, m.inplace) for m in model.modules() if isinstance(getattr(m, "inplace", None), bool)]
    try:
        model.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        for m, _ in inplace:
            m.inplace = False
        yield model
    finally:
        for m, flag in modes:
            m.training = flag
        for p, flag in grads:
            p.requires_grad_(flag)
        for m, flag in inplace:
            m.inplace = flag


@contextlib.contextmanager
def hooks_removed(handles: list) -> Iterator[list]:
    """Collect hook handles in the yielded list; all are removed on exit, even after an error."""
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()
        handles.clear()


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
    """

    name: ClassVar[str] = "explainer"
    reduction: ClassVar[str] = "sum"

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, not {type(model).__name__}.")
        self.model = model
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
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor, not {type(x).__name__}; wrap it with torch.as_tensor.")
        if x.dim() not in (3, 4):
            raise ValueError(f"x must be batched, shaped (N, C, L) or (N, C, H, W), not {tuple(x.shape)}; "
                             "add the batch axis with x.unsqueeze(0).")
        if not x.is_floating_point():
            raise ValueError(f"x must be a float tensor, not {x.dtype}; convert it with x.float().")
        if x.shape[0] == 0:
            raise ValueError("x is an empty batch; pass at least one sample.")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf; clean the input (e.g. torch.nan_to_num) first.")
        return x.detach()

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


def check_target(target: TargetLike, n: int, n_classes: int, device: torch.device | str) -> torch.Tensor:
    """``target`` (an int, N ints or an integer tensor) as a ``(N,)`` long tensor on ``device``, checked."""
    if isinstance(target, bool) or (isinstance(target, torch.Tensor) and target.is_floating_point()):
        raise ValueError("target must be an int, a sequence of ints or an integer tensor (or None).")
    t = torch.as_tensor(target, device=device)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError("target must be an int, a sequence of ints or an integer tensor (or None).")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"target has {t.numel()} labels for a batch of {n}; pass one int or N labels.")
    if (t < 0).any() or (t >= n_classes).any():
        raise ValueError(f"target {t.tolist()} is out of range for a model with {n_classes} classes "
                         f"(0..{n_classes - 1}).")
    return t.clone()


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
