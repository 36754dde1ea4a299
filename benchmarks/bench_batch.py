"""Rows per pass: the automatic choice (``course_utils.core.batching.auto_rows``, from the CPU's cache size)
against fixed sizes, for the no-grad forward passes that occlusion, RISE, SISE and the surrogates stack.

Randomly initialised VGG7 on 512 tiles of 64 px and ShallowCNN1D on 16384 signals of 40 points (``quick``: 32
tiles of 32 px, 1024 signals), all in passes of the given rows, inputs already in channels_last as the
explainers pass them. ``ratio`` is automatic / fixed (below 1: the automatic size is faster).
"""
from __future__ import annotations

import math

import torch

from benchmarks.common import row, timed_rounds
from course_utils.core.batching import auto_rows, fast_layout
from course_utils.models.architectures import VGG7, ShallowCNN1D


def _passes(model, x, rows):
    def fn():
        with torch.no_grad():
            for i in range(0, x.shape[0], rows):
                model(fast_layout(x[i:i + rows]))
    return fn


def run(quick: bool = False) -> list[dict]:
    """One row per (model, fixed size): the automatic rows per pass against that size."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    cases = [("vgg7", VGG7().eval(), torch.rand(32, 3, 32, 32, generator=g) if quick
              else torch.rand(512, 3, 64, 64, generator=g), (16, 64) if quick else (16, 32, 64, 128, 170)),
             ("cnn1d", ShallowCNN1D().eval(), torch.randn(1024 if quick else 16384, 1, 40, generator=g),
              (256, 2048) if quick else (256, 1024, 2048, 8192))]
    results = []
    for name, model, x, sizes in cases:
        auto = auto_rows(x)
        fixed = [s for s in sizes if s != auto]
        seconds = timed_rounds([_passes(model, x, auto), *(_passes(model, x, s) for s in fixed)],
                               repeat=1 if quick else 5)
        for size, theirs in zip(fixed, seconds[1:]):
            results.append(row(f"{name} {x.shape[0]} inputs, auto {auto} per pass", seconds[0], f"{size} per pass",
                               theirs))
    assert all(math.isfinite(r["ratio"]) for r in results)
    return results
