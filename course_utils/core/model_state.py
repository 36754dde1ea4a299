"""The guard that leaves a model as it was found: modes, ``requires_grad``, in-place flags and hooks."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def model_state_preserved(model: nn.Module) -> Iterator[nn.Module]:
    """Run with ``model`` in eval mode, parameters frozen, in-place ReLUs made out-of-place; restore all after.

    Restored: every module's ``training`` flag, every parameter's ``requires_grad``, every ``inplace``
    attribute. Hooks are not touched here; their owners remove them (see :func:`hooks_removed`).
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
