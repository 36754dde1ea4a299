"""Optimisation-based explainers (meaningful perturbation, FGVis) batched vs one input at a time, and vs their
forward/backward floor.

Two workloads, models with random weights (timings depend only on shapes): VGG7 on 16 HMT-sized tiles
(3 × 64 × 64) and ShallowCNN1D on 16 MNIST-1D signals (1 × 40); ``quick=True`` uses 4 inputs, small tiles and
3 iterations. Each method optimises one mask per input for ``iterations`` steps, one forward+backward pass of the
batch per step, so its floor is ``iterations`` forward+backward passes of the batch (``forward_backward_floor``,
parameters frozen so that only the input gradient is computed). The one-at-a-time baseline runs the same
explainer on each input separately; the first row of each workload gives what batching can gain at best on this
machine: the same floor for the batch vs for the N inputs one by one. Neither captum nor pytorch-grad-cam
implements these methods, so there is no peer-library row.
"""
from __future__ import annotations

import torch

from benchmarks.common import forward_backward_floor, row, timed_rounds
from course_utils.explainers.fgvis import FGVis
from course_utils.explainers.meaningful_perturbation import MeaningfulPerturbation
from course_utils.models.architectures import VGG7, ShallowCNN1D


def _workloads(quick: bool):
    """(label, model, inputs, iterations, repeat) for the 2-D tiles and the 1-D signals."""
    n, size, iterations, repeat = (4, 32, 3, 1) if quick else (16, 64, 50, 5)
    tiles = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))
    signals = torch.randn(n, 1, 40, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    yield f"N={n} {size}px", VGG7(), tiles, iterations, repeat
    # a round on signals takes seconds, not a minute: more rounds for the same steadiness
    yield f"N={n} 40-point signals", ShallowCNN1D(), signals, iterations, repeat * 3


def run(quick: bool = False) -> list[dict]:
    """Rows: each method batched vs N single-input runs and vs ``iterations`` forward+backward passes; and the
    bound on batching: the floor of N single inputs vs the floor of the batch."""
    results = []
    for label, model, x, iterations, repeat in _workloads(quick):
        model.eval().requires_grad_(False)
        n = len(x)
        target = torch.arange(n) % (8 if x.dim() == 4 else 10)
        methods = {
            "meaningful_perturbation": MeaningfulPerturbation(model, iterations=iterations, progress=False),
            "fgvis (defense)": FGVis(model, iterations=iterations, progress=False),
            "fgvis (no defense)": FGVis(model, iterations=iterations, defense=False, progress=False),
        }
        floor = forward_backward_floor(model, x, passes=iterations)
        single_floors = [forward_backward_floor(model, x[i:i + 1], passes=iterations) for i in range(n)]
        fns = [floor, lambda: [f() for f in single_floors]]
        for explainer in methods.values():
            fns += [lambda e=explainer: e.attribute(x, target),
                    lambda e=explainer: [e.attribute(x[i:i + 1], target[i:i + 1]) for i in range(n)]]
        floor_s, single_floors_s, *method_s = timed_rounds(fns, repeat=repeat)
        results.append(row(f"floor {label} {iterations} it", floor_s, f"{n} single-input floors", single_floors_s))
        for (name, _), batched, one_by_one in zip(methods.items(), method_s[::2], method_s[1::2]):
            tag = f"{name} {label} {iterations} it"
            results.append(row(tag, batched, f"{n} single-input runs", one_by_one))
            results.append(row(tag, batched, f"floor ({iterations} fwd+bwd passes)", floor_s))
    return results


if __name__ == "__main__":
    for r in run():
        print(f"{r['benchmark']:<60} {r['ours_s']:8.3f}s  vs {r['baseline']:<28} {r['baseline_s']:8.3f}s  "
              f"ratio {r['ratio']:.2f}")
