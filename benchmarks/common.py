"""Timing helpers shared by the ``bench_*.py`` modules."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch


def best_times(fns: Sequence[Callable[[], object]], repeat: int = 5, warmup: int = 1) -> list[float]:
    """Best wall-clock seconds of each of ``fns`` over ``repeat`` rounds, after ``warmup`` rounds.

    Each round calls every function once, in turn, so that slow drifts of the machine (clock speed, another
    process) touch all of them alike and their ratios stay comparable; the minimum is the least noisy estimate.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def best_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Best wall-clock seconds of ``repeat`` calls of ``fn`` after ``warmup`` calls."""
    return best_times([fn], repeat, warmup)[0]


def row(name: str, ours_s: float, baseline: str, baseline_s: float) -> dict:
    """One result line: ``ratio`` = ours / baseline (below 1 means we are faster)."""
    return {"benchmark": name, "ours_s": ours_s, "baseline": baseline, "baseline_s": baseline_s,
            "ratio": ours_s / baseline_s}


def forward_backward_floor(model: torch.nn.Module, x: torch.Tensor, passes: int = 1) -> Callable[[], None]:
    """A callable doing ``passes`` forward+backward passes w.r.t. the input: a gradient method's floor."""
    def fn():
        for _ in range(passes):
            xi = x.detach().requires_grad_(True)
            model(xi).max(1).values.sum().backward()
    return fn


def forward_floor(model: torch.nn.Module, x: torch.Tensor, passes: int = 1) -> Callable[[], None]:
    """A callable doing ``passes`` no-grad forward passes of ``x``: a perturbation method's floor."""
    def fn():
        with torch.no_grad():
            for _ in range(passes):
                model(x)
    return fn
