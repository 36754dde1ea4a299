"""FGVis' comparison methods (guided backprop, excitation backprop and its contrastive variant, occlusion)
against their floor and against captum where captum has the method.

Models are randomly initialised (timings depend only on shapes): ShallowCNN1D on 256 signals and VGG7 on 32
tiles at 64 px, as in ``bench_gradient_cam``; ``quick=True`` shrinks the batches. Floors: one forward+backward
pass w.r.t. the input for guided backprop and excitation backprop (parameters frozen); for occlusion the
no-grad forward passes of every occluded copy, stacked in the same rows per pass as ours. Captum's
``GuidedBackprop`` and ``Occlusion`` (logit score, the same window, stride and rows per pass) on the same model,
batch and targets; 6 rounds. Occlusion on tiles runs on the first 4 tiles only, and the occlusion rows take 3 rounds
(225 windows × 32 tiles would be 7200 forward passes of VGG7 per call).
"""
from __future__ import annotations

import math
import warnings

import torch

from benchmarks.bench_gradient_cam import _cases, _frozen_call
from benchmarks.common import forward_backward_floor, row, timed_rounds
from course_utils.core.batching import auto_rows
from course_utils.explainers.excitation_backprop import ContrastiveExcitationBackprop, ExcitationBackprop
from course_utils.explainers.guided_backprop import GuidedBackprop
from course_utils.explainers.occlusion import Occlusion, window_masks


def run(quick: bool = False) -> list[dict]:
    """Rows per model: each method vs its floor, and vs captum where captum has it."""
    from captum.attr import GuidedBackprop as CaptumGuidedBackprop
    from captum.attr import Occlusion as CaptumOcclusion

    repeat = 1 if quick else 6
    warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations")
    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    results = []
    for kind, model, x in _cases(quick):
        n = x.shape[0]
        target = torch.arange(n) % 8
        tag = f"{kind} N={n}"

        def add(name, ours_fn, floor_name, floor_fn, peers=(), rounds=repeat):
            ours, floor_s, *peer_s = timed_rounds([ours_fn, floor_fn, *(fn for _, fn in peers)], repeat=rounds)
            results.append(row(f"{name} {tag}", ours, floor_name, floor_s))
            for (peer_name, _), seconds in zip(peers, peer_s):
                results.append(row(f"{name} {tag}", ours, peer_name, seconds))

        one_pass = _frozen_call(forward_backward_floor(model, x), model)
        guided = GuidedBackprop(model)
        add("guided_backprop", lambda: guided.attribute(x, target), "floor (1 pass)", one_pass,
            [("captum GuidedBackprop", lambda: CaptumGuidedBackprop(model).attribute(x, target))])
        eb, ceb = ExcitationBackprop(model), ContrastiveExcitationBackprop(model)
        add("excitation_backprop", lambda: eb.attribute(x, target), "floor (1 pass)", one_pass)
        add("contrastive_excitation_backprop", lambda: ceb.attribute(x, target), "floor (1 pass)", one_pass)

        x, target = (x[:4], target[:4]) if x.dim() == 4 else (x, target)
        n, tag = x.shape[0], f"{kind} N={x.shape[0]}"
        occlusion = Occlusion(model, score="logit", progress=False)
        window, stride = occlusion.windows(x.shape[2:])
        masks = window_masks(x.shape[2:], window, stride)
        per_pass = max(1, auto_rows(x) // n)                            # window positions per pass, as ours

        def occlusion_floor():
            with torch.no_grad():
                for p0 in range(0, masks.shape[0], per_pass):
                    keep = (1 - masks[p0:p0 + per_pass])[:, None, None]
                    model((x[None] * keep).flatten(0, 1))

        captum = CaptumOcclusion(model)
        add(f"occlusion {masks.shape[0]} windows", lambda: occlusion.attribute(x, target),
            f"floor ({masks.shape[0]} forward passes of N)", occlusion_floor,
            [("captum Occlusion", lambda: captum.attribute(
                x, sliding_window_shapes=(x.shape[1], *window), strides=(1, *stride), baselines=0.0,
                target=target, perturbations_per_eval=per_pass))], rounds=max(1, repeat // 2))
    assert all(math.isfinite(r["ratio"]) for r in results)
    return results


if __name__ == "__main__":
    for r in run():
        print(f"{r['benchmark']:<48} ours {r['ours_s']:.4f}s  {r['baseline']:<34} {r['baseline_s']:.4f}s  "
              f"ratio {r['ratio']:.2f}")
