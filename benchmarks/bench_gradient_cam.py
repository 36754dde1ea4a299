"""Gradient and CAM explainers against their forward/backward floor and against captum / pytorch-grad-cam.

Models are randomly initialised (timings depend only on shapes): ShallowCNN1D on a batch of 256 signals
(1 × 40) and VGG7 on a batch of 32 images (3 × 64 × 64); ``quick=True`` shrinks batches, samples and steps.
A method's floor is the number of forward+backward passes it must do (``forward_backward_floor``; a forward
pass for CAM) on the same batch, with the parameters frozen so that the floor computes only the input
gradient. SmoothGrad and Integrated Gradients must do one pass per sample / step; they stack the copies of
all images in passes of their automatic ``rows_per_pass`` rows, and their captum peers get the same rows per
pass (``nt_samples_batch_size`` / ``internal_batch_size``). Our explainers are built once and called repeatedly,
as in an evaluation loop. Peers see the model as a user has it (parameters
trainable). Grad-CAM is compared with captum's ``LayerGradCam`` + ``LayerAttribution.interpolate`` and, in
2-D, with pytorch-grad-cam's ``GradCAM`` (its output is min–max normalised, so ours runs with
``normalize=True`` there); Grad-CAM++ with pytorch-grad-cam's ``GradCAMPlusPlus``. Targets are given, as the
peers need them.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import torch
from torch import nn

from benchmarks.common import forward_backward_floor, forward_floor, row, timed_rounds
from course_utils.explainers.cam import CAM, GradCAM, GradCAMPlusPlus
from course_utils.explainers.gradient import (GradientXInput, IntegratedGradients, Saliency, SmoothGrad,
                                              rows_per_pass)
from course_utils.models.architectures import VGG7, ShallowCNN1D


@contextlib.contextmanager
def _frozen(model: nn.Module):
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def _frozen_call(fn, model: nn.Module):
    """``fn`` run with the model's parameters frozen, as a floor must be (only the input gradient)."""
    def call():
        with _frozen(model):
            fn()
    return call


def _cases(quick: bool):
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    if quick:
        yield "1d", ShallowCNN1D().eval(), torch.randn(16, 1, 40, generator=g)
        yield "2d", VGG7().eval(), torch.rand(2, 3, 32, 32, generator=g)
    else:
        yield "1d", ShallowCNN1D().eval(), torch.randn(256, 1, 40, generator=g)
        yield "2d", VGG7().eval(), torch.rand(32, 3, 64, 64, generator=g)


def run(quick: bool = False) -> list[dict]:
    """Rows per model: each method vs its floor, and vs captum / pytorch-grad-cam where they have it."""
    from captum.attr import InputXGradient as CaptumInputXGradient
    from captum.attr import IntegratedGradients as CaptumIntegratedGradients
    from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel
    from captum.attr import Saliency as CaptumSaliency
    from pytorch_grad_cam import GradCAM as PgcGradCAM
    from pytorch_grad_cam import GradCAMPlusPlus as PgcGradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    n_copies, repeat, heavy_repeat = (4, 1, 1) if quick else (50, 10, 5)
    results = []
    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    for kind, model, x in _cases(quick):
        n = x.shape[0]
        target = torch.arange(n) % 8
        tag = f"{kind} N={n}"
        rows = rows_per_pass(x, None) // n * n

        def add(name, ours_fn, passes, peers=(), floor=None):
            floor_fn = _frozen_call(floor or forward_backward_floor(model, x, passes=passes), model)
            peers = list(peers)
            ours, floor_s, *peer_s = timed_rounds([ours_fn, floor_fn, *(fn for _, fn in peers)],
                                                  repeat=repeat if passes == 1 else heavy_repeat)
            results.append(row(f"{name} {tag}", ours, f"floor ({passes} passes)", floor_s))
            for (peer_name, _), seconds in zip(peers, peer_s):
                results.append(row(f"{name} {tag}", ours, peer_name, seconds))

        saliency, gxi, cam = Saliency(model), GradientXInput(model), CAM(model)
        add("saliency", lambda: saliency.attribute(x, target), 1,
            [("captum Saliency", lambda: CaptumSaliency(model).attribute(x, target, abs=False))])
        add("gradient_x_input", lambda: gxi.attribute(x, target), 1,
            [("captum InputXGradient", lambda: CaptumInputXGradient(model).attribute(x, target))])

        smooth = SmoothGrad(model, n_samples=n_copies, progress=False)
        sigma = 0.15 * (x.max() - x.min()).item()
        tunnel = NoiseTunnel(CaptumSaliency(model))
        add(f"smoothgrad {n_copies} samples", lambda: smooth.attribute(x, target), n_copies,
            [("captum NoiseTunnel(Saliency)", lambda: tunnel.attribute(
                x, target=target, nt_type="smoothgrad", nt_samples=n_copies, stdevs=sigma, abs=False,
                nt_samples_batch_size=max(1, rows // n)))])

        ig = IntegratedGradients(model, n_steps=n_copies, progress=False)
        add(f"integrated_gradients {n_copies} steps", lambda: ig.attribute(x, target), n_copies,
            [("captum IntegratedGradients", lambda: CaptumIntegratedGradients(model).attribute(
                x, target=target, n_steps=n_copies, method="riemann_right", internal_batch_size=rows))])

        add("cam", lambda: cam.attribute(x, target), 1, floor=forward_floor(model, x, passes=1))

        last_conv = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))][-1]
        mode = "linear" if x.dim() == 3 else "bilinear"

        def captum_gradcam():
            maps = LayerGradCam(model, last_conv).attribute(x, target, relu_attributions=True)
            return LayerAttribution.interpolate(maps, tuple(x.shape[2:]), mode)

        gradcam = GradCAM(model)
        add("gradcam", lambda: gradcam.attribute(x, target), 1,
            [("captum LayerGradCam+interpolate", captum_gradcam)])
        if x.dim() == 4:
            pgc_targets = [ClassifierOutputTarget(int(c)) for c in target]

            def pgc(cls):
                def fn():
                    with cls(model, [last_conv]) as cam:
                        return cam(x, pgc_targets)
                return fn

            gradcam_n = GradCAM(model, normalize=True)
            add("gradcam normalize", lambda: gradcam_n.attribute(x, target), 1,
                [("pytorch-grad-cam GradCAM", pgc(PgcGradCAM))])
            gradcampp_n = GradCAMPlusPlus(model, normalize=True)
            add("gradcam++ normalize", lambda: gradcampp_n.attribute(x, target), 1,
                [("pytorch-grad-cam GradCAMPlusPlus", pgc(PgcGradCAMPlusPlus))])
        else:
            gradcampp = GradCAMPlusPlus(model)
            add("gradcam++", lambda: gradcampp.attribute(x, target), 1)
    assert all(math.isfinite(r["ratio"]) for r in results)
    return results


if __name__ == "__main__":
    import sys

    for r in run(quick="--quick" in sys.argv):
        print(f"{r['benchmark']:<44} ours {r['ours_s']:.4f}s  {r['baseline']:<34} {r['baseline_s']:.4f}s  "
              f"ratio {r['ratio']:.2f}")
