"""Perturbation explainers: RISE against its forward floor; KernelSHAP and LIME against captum on one batch.

The model is a randomly initialised ShallowCNN1D and the batch 32 random MNIST-1D-shaped signals (1 × 40):
timings depend only on the shapes. RISE's floor is the same number of forward passes (masks × signals rows)
in the same batch sizes, with inputs already in memory; its masks are generated once per size and seed and
cached, so the timed calls (after a warm-up call) measure masking, scoring and the weighted sum. captum's
KernelShap / Lime get the same model, batch, features (10 segments of 4 points), baseline 0, target and number
of samples, with ``perturbations_per_eval`` set to the same rows per pass.
"""
from __future__ import annotations

import math
import warnings

import torch

from benchmarks.common import forward_floor, row, timed_rounds
from course_utils.explainers.rise import RISE
from course_utils.explainers.surrogate import LIME, KernelSHAP, grid_segments
from course_utils.models.architectures import ShallowCNN1D


def _rise_floor(model: torch.nn.Module, x: torch.Tensor, n_masks: int, rows: int):
    """Forward passes over ``n_masks × N`` rows in RISE's blocks of ``rows // N`` whole masks."""
    n = x.shape[0]
    per_pass = max(1, rows // n)
    full, rest = divmod(n_masks, per_pass)
    big = forward_floor(model, x.repeat(per_pass, 1, 1), passes=full)
    small = forward_floor(model, x.repeat(rest, 1, 1), passes=1) if rest else (lambda: None)

    def fn():
        big()
        small()
    return fn


def run(quick: bool = False) -> list[dict]:
    """Rows: RISE vs forward floor; KernelSHAP vs captum KernelShap; LIME vs captum Lime."""
    from captum.attr import KernelShap as CaptumKernelShap
    from captum.attr import Lime as CaptumLime

    torch.manual_seed(0)
    model = ShallowCNN1D().eval()
    n, n_masks, n_samples, rows = (4, 100, 50, 512) if quick else (32, 4000, 200, 2048)
    repeat = 1 if quick else 3
    x = torch.randn(n, 1, 40, generator=torch.Generator().manual_seed(1))
    target = torch.arange(n) % 10
    results = []

    rise = RISE(model, n_masks=n_masks, batch_size=rows)
    ours, floor = timed_rounds([lambda: rise.attribute(x, target), _rise_floor(model, x, n_masks, rows)], repeat)
    results.append(row(f"rise {n_masks} masks x {n} signals", ours, "forward floor", floor))

    mask = grid_segments((40,), 10).view(1, 1, 40)
    def probs(inp):
        return model(inp).softmax(1)

    per_eval = max(1, rows // n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # captum warns that it loops over the batch
        for name, ours_cls, peer_cls in (("kernelshap", KernelSHAP, CaptumKernelShap), ("lime", LIME, CaptumLime)):
            explainer = ours_cls(model, n_samples=n_samples, batch_size=rows)
            peer = peer_cls(probs)
            ours, theirs = timed_rounds([
                lambda: explainer.attribute(x, target),
                lambda: peer.attribute(x, target=target, baselines=0.0, feature_mask=mask, n_samples=n_samples,
                                       perturbations_per_eval=per_eval)], repeat)
            results.append(row(f"{name} {n_samples} samples x {n} signals", ours, f"captum {peer_cls.__name__}",
                               theirs))
    assert all(math.isfinite(r["ratio"]) for r in results)
    return results


if __name__ == "__main__":
    for r in run():
        print(f"{r['benchmark']:<36} ours {r['ours_s']:.3f}s  {r['baseline']:<22} {r['baseline_s']:.3f}s  "
              f"ratio {r['ratio']:.2f}")
