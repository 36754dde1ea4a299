"""Plain values that cross the sandbox boundary: tensors, numbers, strings, None, tuples/lists/dicts of them.

Both directions use ``torch.save`` and ``torch.load(weights_only=True)`` on bytes sent through a pipe, so
nothing the student's process sends can make the grader run code while loading it. NumPy arrays and scalars
become tensors and Python numbers; any other returned object is replaced by ``{"unsupported_type": name}`` so the check can say so.
"""
from __future__ import annotations

import io

import numpy as np
import torch


def to_plain(value, depth: int = 0):
    """``value`` made of plain, picklable-without-code parts (tensors detached, on the CPU, own storage)."""
    if depth > 20:
        return {"unsupported_type": "deeply nested container"}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone().as_subclass(torch.Tensor)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"unsupported_type": "numpy object array"}
        return torch.from_numpy(np.array(value, copy=True))
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, complex)):
        return value
    if isinstance(value, str):
        return value[:1000]
    if isinstance(value, (tuple, list)):
        items = [to_plain(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return {"unsupported_type": type(value).__name__}


def dumps(value) -> bytes:
    """``value`` (already plain) as bytes for a pipe."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def loads(data: bytes):
    """Read bytes made by :func:`dumps` without unpickling any code."""
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
