"""Ours against the library a user would pick instead, same model, inputs and budget, interleaved rounds.

Models are randomly initialised (timings depend only on shapes): VGG7 on 64-px tiles, ShallowCNN1D on
MNIST-1D-shaped signals (1 × 40). Peers (pyproject's ``bench`` extra):

- LIME: the ``lime`` package's ``LimeImageExplainer`` on the same 8 × 8 grid segments (its ``segmentation_fn``),
  samples, black baseline (``hide_color=0``) and rows per pass; it explains one image per call, so it loops.
- KernelSHAP: ``shap.KernelExplainer`` on the 10 segments of each signal, background all-off, same samples.
- Grad-CAM++: torchcam's ``GradCAMpp`` on VGG7's last convolution block.
- Excitation backprop: zennit's ``ExcitationBackprop`` composite with its ``Gradient`` attributor (it installs
  from pip and runs on current torch; TorchRay's excitation backprop is not run here).
- Occlusion: captum's ``Occlusion`` with our window, stride and window positions per pass.
- RISE: TorchRay's ``rise`` with our number of masks, 8 cells and rows per pass (row left out where TorchRay
  is not installed).

``ratio`` is ours / peer, the median over rounds (below 1 = we are faster).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from benchmarks.bench_gradient_cam import _frozen
from benchmarks.common import row, timed_rounds
from course_utils.core.batching import auto_rows
from course_utils.explainers.cam import GradCAMPlusPlus
from course_utils.explainers.excitation_backprop import ExcitationBackprop
from course_utils.explainers.occlusion import Occlusion
from course_utils.explainers.rise import RISE
from course_utils.explainers.surrogate import LIME, KernelSHAP, grid_segments
from course_utils.models.architectures import VGG7, ShallowCNN1D


def _lime_peer(model, x, target, n_samples, rows):
    from lime.lime_image import LimeImageExplainer

    segments = grid_segments(tuple(x.shape[2:]), 8).numpy()
    peer = LimeImageExplainer(kernel_width=0.25, random_state=0)

    def classify(images):
        with torch.no_grad():
            batch = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
            return model(batch).softmax(1).numpy()

    def fn():
        for image, t in zip(x, target.tolist()):
            peer.explain_instance(image.permute(1, 2, 0).double().numpy(), classify, labels=(t,), top_labels=None,
                                  hide_color=0, num_features=64, num_samples=n_samples, batch_size=rows,
                                  segmentation_fn=lambda _: segments, random_seed=0)
    return fn


def _shap_peer(model, x, target, n_samples):
    import shap

    segments = grid_segments(tuple(x.shape[2:]), 10)
    onehot = torch.nn.functional.one_hot(segments, 10).T.to(x.dtype)       # (10, L)

    def fn():
        for signal, t in zip(x, target.tolist()):
            def scores(z, signal=signal, t=t):
                with torch.no_grad():
                    keep = torch.from_numpy(z).to(x.dtype) @ onehot           # (S, L)
                    return model(signal[None] * keep[:, None]).softmax(1)[:, t].numpy()
            peer = shap.KernelExplainer(scores, np.zeros((1, 10)))
            peer.shap_values(np.ones((1, 10)), nsamples=n_samples, silent=True)
    return fn


def _zennit_peer(model, x, target):
    from zennit.attribution import Gradient
    from zennit.composites import ExcitationBackprop as ZennitEB

    def fn():
        with Gradient(model=model, composite=ZennitEB()) as attributor:
            attributor(x, torch.nn.functional.one_hot(target, 8).to(x.dtype))
    return fn


def run(quick: bool = False) -> list[dict]:
    """One row per peer: ours vs the peer on the same workload."""
    from captum.attr import Occlusion as CaptumOcclusion
    from torchcam.methods import GradCAMpp

    warnings.filterwarnings("ignore", category=UserWarning)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    vgg, cnn = VGG7().eval(), ShallowCNN1D().eval()
    tiles = torch.rand(2 if quick else 32, 3, 64 if not quick else 32, 64 if not quick else 32, generator=g)
    signals = torch.randn(4 if quick else 16, 1, 40, generator=g)
    repeat = 1 if quick else 5
    n_small = 2 if quick else 8
    few, few_t = tiles[:n_small], torch.arange(n_small) % 8
    all_t = torch.arange(tiles.shape[0]) % 8
    sig_t = torch.arange(signals.shape[0]) % 10
    results = []

    def add(name, ours_fn, peer_name, peer_fn, rounds=repeat):
        ours, theirs = timed_rounds([ours_fn, peer_fn], repeat=rounds)
        results.append(row(name, ours, peer_name, theirs))

    n_samples = 50 if quick else 500
    rows = auto_rows(few)
    lime = LIME(vgg, n_samples=n_samples, cells=8)
    add(f"lime {n_samples} samples x {n_small} tiles", lambda: lime.attribute(few, few_t),
        "lime LimeImageExplainer", _lime_peer(vgg, few, few_t, n_samples, rows))

    shap_samples = 50 if quick else 200
    kernelshap = KernelSHAP(cnn, n_samples=shap_samples)
    add(f"kernelshap {shap_samples} samples x {signals.shape[0]} signals", lambda: kernelshap.attribute(signals, sig_t),
        "shap KernelExplainer", _shap_peer(cnn, signals, sig_t, shap_samples))

    ours_cam = GradCAMPlusPlus(vgg)
    peer_cam = GradCAMpp(vgg, target_layer=ours_cam.layer)

    def torchcam_call():
        scores = vgg(tiles)
        peer_cam(all_t.tolist(), scores)
    add(f"gradcam++ {tiles.shape[0]} tiles", lambda: ours_cam.attribute(tiles, all_t), "torchcam GradCAMpp",
        torchcam_call)
    peer_cam.remove_hooks()

    eb = ExcitationBackprop(vgg)
    with _frozen(vgg):
        add(f"excitation_backprop {tiles.shape[0]} tiles", lambda: eb.attribute(tiles, all_t),
            "zennit ExcitationBackprop", _zennit_peer(vgg, tiles, all_t))

    occlusion = Occlusion(vgg, score="logit", progress=False)
    window, stride = occlusion.windows(few.shape[2:])
    per_pass = max(1, auto_rows(few) // n_small)
    captum = CaptumOcclusion(vgg)
    add(f"occlusion {n_small} tiles", lambda: occlusion.attribute(few, few_t), "captum Occlusion",
        lambda: captum.attribute(few, sliding_window_shapes=(3, *window), strides=(1, *stride), baselines=0.0,
                                 target=few_t, perturbations_per_eval=per_pass), rounds=max(1, repeat // 2))

    try:
        from torchray.attribution.rise import rise as torchray_rise
    except ImportError:          # optional: see the bench extra in pyproject.toml
        return results
    n_masks = 100 if quick else 2000
    rise = RISE(vgg, n_masks=n_masks, cells=8)
    add(f"rise {n_masks} masks x {n_small} tiles", lambda: rise.attribute(few, few_t), "TorchRay rise",
        lambda: torchray_rise(vgg, few, num_masks=n_masks, num_cells=8, batch_size=auto_rows(few)),
        rounds=max(1, repeat // 2))
    assert all(math.isfinite(r["ratio"]) for r in results)
    return results
