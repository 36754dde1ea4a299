"""Device choice (CUDA, then Apple MPS, then CPU) and seeding."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

_CHOICES = ("auto", "cpu", "cuda", "mps")


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to use.

    ``None`` or ``"auto"`` picks CUDA, then MPS, then CPU; the environment variable ``COURSE_DEVICE`` overrides
    the automatic choice. An explicit device that is not available raises a ``ValueError`` saying what to pass.
    """
    if isinstance(device, torch.device):
        return device
    choice = (device or os.environ.get("COURSE_DEVICE") or "auto").lower()
    if choice.split(":")[0] not in _CHOICES:
        raise ValueError(f"device={device!r} is not one of {_CHOICES}; pass e.g. device='cpu'.")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA GPU is available; pass device='cpu' or 'auto'.")
    if choice == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device='mps' was asked for but MPS is not available; pass device='cpu' or 'auto'.")
    return torch.device(choice)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
