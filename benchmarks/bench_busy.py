"""Every registered explainer on a busy laptop: its time with one busy loop per core over its idle time.

Idle and busy calls alternate within each round (idle, then the same call with ``os.cpu_count()`` processes
spinning ``while True: pass``), so drifts of the machine touch both alike; ``ratio`` is the median over rounds
of busy / idle. Fair sharing of the cores would give about 2; the kit's threading
(``course_utils.core.threads``) aims at ≤ 2.5. Models are randomly initialised VGG7 on 1 tile of 64 px
with each explainer's default options, progress bars off; ``quick`` (a smoke test) runs three fast explainers on
1 tile of 16 px.
"""
from __future__ import annotations

import contextlib
import math
import os
import statistics
import subprocess
import sys
import time

import torch

from course_utils.explainers import available, get
from course_utils.models.architectures import VGG7


QUICK = ("gradcam", "occlusion", "saliency")


@contextlib.contextmanager
def busy_loops(n: int | None = None):
    """``n`` (default: one per core) processes spinning on the CPU for the duration of the block."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n or os.cpu_count() or 1)]
    try:
        time.sleep(0.2)                      # let them start spinning
        yield
    finally:
        for p in loops:
            p.kill()
        for p in loops:
            p.wait()


def run(quick: bool = False) -> list[dict]:
    """One row per explainer: idle seconds, busy seconds and the median busy / idle ratio."""
    torch.manual_seed(0)
    size, n = (16, 1) if quick else (64, 1)
    model = VGG7().eval()
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))
    target = torch.arange(n) % 8
    rounds = 1 if quick else 3
    results = []
    for name in QUICK if quick else available():
        explainer = get(name)(model)
        if hasattr(explainer, "progress"):
            explainer.progress = False
        explainer.attribute(x, target)                                  # warm-up
        idle, busy = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            explainer.attribute(x, target)
            idle.append(time.perf_counter() - t0)
            with busy_loops():
                t0 = time.perf_counter()
                explainer.attribute(x, target)
                busy.append(time.perf_counter() - t0)
        results.append({"benchmark": f"{name} {n} tiles {size} px", "idle_s": statistics.median(idle),
                        "busy_s": statistics.median(busy),
                        "ratio": statistics.median(b / i for b, i in zip(busy, idle))})
    assert all(math.isfinite(r["ratio"]) for r in results)
    return results
