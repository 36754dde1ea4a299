"""Memory layout: VGG7's forward on contiguous (NCHW) inputs against the same inputs in channels_last, which
``course_utils.core.batching.fast_layout`` gives the image batches of occlusion and RISE and the products of
excitation backprop's backward. ``ratio`` is channels_last / contiguous (below 1: channels_last pays);
``max_abs_diff`` is the largest difference between the two layouts' logits (float rounding only).
Randomly initialised VGG7, 64 tiles of 64 px (``quick``: 4 tiles of 32 px), the model's parameters as loaded.
"""
from __future__ import annotations

import math

import torch

from benchmarks.common import row, timed_rounds
from course_utils.core.batching import fast_layout
from course_utils.models.architectures import VGG7


def run(quick: bool = False) -> list[dict]:
    """One row per batch shape: channels_last vs contiguous forward time, and the logits' largest difference."""
    torch.manual_seed(0)
    model = VGG7().eval()
    n, size = (4, 32) if quick else (64, 64)
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))
    fast = fast_layout(x)

    def forward(batch):
        def fn():
            with torch.no_grad():
                return model(batch)
        return fn

    last, plain = timed_rounds([forward(fast), forward(x)], repeat=1 if quick else 7)
    result = row(f"vgg7 forward {n} tiles {size} px, channels_last", last, "contiguous", plain)
    result["max_abs_diff"] = float((forward(fast)() - forward(x)()).abs().max())
    assert math.isfinite(result["ratio"])
    return [result]
