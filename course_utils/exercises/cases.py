"""Drawing exercise cases."""
from __future__ import annotations

import torch


def randint(g: torch.Generator, low: int, high: int) -> int:
    """An integer in [low, high] drawn from ``g``."""
    return int(torch.randint(low, high + 1, (1,), generator=g))
