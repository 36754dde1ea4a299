"""Timing helpers shared by the ``bench_*.py`` modules."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch


def timed_rounds(fns: Sequence[Callable[[], object]], repeat: int = 5, warmup: int = 1) -> list[list[float]]:
    """Wall-clock seconds of each of ``fns`` in each of ``repeat`` rounds, after ``warmup`` rounds.

    Each round calls every function once, in turn, so that the machine's drifts (clock speed, other processes)
    touch the functions of one round alike; :func:`row` compares them round by round.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    rounds: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for seconds, fn in zip(rounds, fns):
            t0 = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - t0)
    return rounds


def best_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Best wall-clock seconds of ``repeat`` calls of ``fn`` after ``warmup`` calls."""
    return min(timed_rounds([fn], repeat, warmup)[0])


def row(name: str, ours: Sequence[float], baseline: str, theirs: Sequence[float]) -> dict:
    """One result line from two :func:`timed_rounds` series: the best seconds of each and ``ratio``, the median
    over rounds of ours / baseline within a round (below 1 means we are faster; robust to a slow round)."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return {"benchmark": name, "ours_s": min(ours), "baseline": baseline, "baseline_s": min(theirs),
            "ratio": statistics.median(ratios)}


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
