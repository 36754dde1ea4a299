"""Rows per model pass for the explainers that score many perturbed copies of their inputs (occlusion, RISE,
SISE, LIME, KernelSHAP) when the user passes ``batch_size=None``.

On a CPU a pass is fastest when its largest activation stays in the last-level cache: larger passes stream
every layer through memory, smaller ones pay the per-call overhead of every layer. So the automatic choice is
read from the processor's cache, not a fixed element count:

    rows = clamp(cache bytes / (ACTIVATION_FACTOR × bytes of one input), 1, MAX_ROWS)

``ACTIVATION_FACTOR`` (16) is about the ratio of the kit models' widest activation to their input (VGG7 at
64 px: 32 channels at full resolution, 10.7× the 3-channel tile, and a second buffer for the next layer's
output). The cache is the largest one ``/sys/devices/system/cpu/cpu0/cache`` lists (the shared L3 on current
laptops); where that is not readable (macOS, Windows) ``FALLBACK_CACHE_BYTES`` (8 MiB, a small laptop L3).
On a 32 MiB L3 this gives 42 tiles of 3 × 64 × 64 per pass, where VGG7's forward ran fastest (16 to 170
tiles swept by ``benchmarks/bench_batch.py``; 64 took 1.5× as long, 170 2.5×). Small inputs stop at ``MAX_ROWS``
(256): ShallowCNN1D on 40-point signals ran 1.8× slower at 1024 signals per pass and 3× at 2048. On an accelerator the activations live in its memory, and a
pass holds ``ACCELERATOR_ELEMENTS`` input elements.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

ACTIVATION_FACTOR = 16
FALLBACK_CACHE_BYTES = 8 * 2**20
MAX_ROWS = 256
ACCELERATOR_ELEMENTS = 2**21
_CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


def _parse_size(text: str) -> int:
    """``"32768K"`` → bytes (the sysfs format: a number with an optional K / M / G suffix)."""
    text = text.strip().upper()
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


@functools.lru_cache(maxsize=None)
def cache_bytes(cache_dir: Path = _CACHE_DIR) -> int:
    """Size of the processor's largest cache in bytes, or ``FALLBACK_CACHE_BYTES`` if it cannot be read."""
    sizes = []
    for index in sorted(cache_dir.glob("index*")):
        try:
            if (index / "type").read_text().strip() in ("Unified", "Data"):
                sizes.append(_parse_size((index / "size").read_text()))
        except (OSError, ValueError):
            continue
    return max(sizes, default=FALLBACK_CACHE_BYTES)


def auto_rows(x: torch.Tensor) -> int:
    """Inputs shaped like one row of ``x`` to stack in one model pass (see the module docstring)."""
    one = x[0].numel()
    if x.device.type != "cpu":
        return max(1, min(MAX_ROWS, ACCELERATOR_ELEMENTS // one))
    return max(1, min(MAX_ROWS, cache_bytes() // (ACTIVATION_FACTOR * one * x.element_size())))


def fast_layout(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` in channels_last memory layout if it is a 4-D CPU tensor (image batches), else as it is.

    The values are the same; torch's CPU convolutions run 1.4–1.9× faster on VGG7 with channels_last inputs
    (``benchmarks/bench_layout.py``), and their results agree with the contiguous layout's to float rounding.
    """
    if batch.dim() == 4 and batch.device.type == "cpu":
        return batch.contiguous(memory_format=torch.channels_last)
    return batch
