"""SISE: Semantic Input Sampling for Explanation (Sattarzadeh et al., AAAI 2021).

"Explaining convolutional neural networks through attribution-based input sampling and block-wise feature
aggregation". Four phases (Sec. 3), all batched over images:

1. Feature-map extraction from the last layer of each convolutional block: a layer whose output is followed
   by a smaller spatial size (pooling, strided convolution) or by the head (:func:`block_ends`). VGG7: the
   ReLUs before both max-pools; ShallowCNN1D: the ReLU before the stride-2 convolution and the last ReLU.
2. Feature-map selection by the backpropagated signal: the average gradient ``α_k`` of the target softmax
   probability over map ``k``; maps with ``α_k > 0`` and ``α_k > μ · max_k α_k`` are kept
   (:func:`select_feature_maps`; ``μ = 0`` keeps every positive one).
3. Attribution-mask scoring: each kept map, upsampled to the input size (bilinear; linear in 1-D) and min-max
   normalised to [0, 1], is a mask ``M``; its score is the target probability of ``x ⊙ M``. The layer's
   visualisation map is ``Σ score · M / ΣM`` (masks normalised by their mass, as in the authors' reference
   code), min-max normalised.
4. Block-wise fusion (:func:`fuse`): cascaded from the shallowest map to the deepest, each block adds the next
   (deeper) map to the running result and multiplies point-wise by that deeper map binarised with Otsu's
   threshold, so deeper layers decide *where* and shallower ones add the detail. The result is min-max
   normalised to [0, 1].

The method has no randomness; ``layers=`` overrides the automatic layer choice (modules or dotted names).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from course_utils.core.batching import auto_rows
from course_utils.core.checks import check_positive_int
from course_utils.explainers.base import Explainer, find_layer, hooks_removed, progress_bar, register, upsample

POOLING = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
           nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.LPPool1d, nn.LPPool2d)
_CONVS = (nn.Conv1d, nn.Conv2d)


def block_ends(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    """The last layer of each convolutional block of ``model`` for inputs like ``x`` (SISE phase 1).

    Leaf modules run after the first convolution are traced on one sample; a non-pooling layer is a block's
    last layer when the next layer's output is spatially smaller (pooling, strided convolution) or has no
    spatial axes (the head).
    """
    trace: list[tuple[nn.Module, tuple[int, ...] | None]] = []

    def record(module, _inputs, output):
        trace.append((module, tuple(output.shape) if isinstance(output, torch.Tensor) else None))

    with hooks_removed([]) as handles, torch.no_grad():
        for m in model.modules():
            if not any(True for _ in m.children()):
                handles.append(m.register_forward_hook(record))
        model(x[:1])
    ends: list[nn.Module] = []
    started = False
    for i, (module, shape) in enumerate(trace):
        started = started or isinstance(module, _CONVS)
        if not started or isinstance(module, POOLING) or shape is None or len(shape) != x.dim():
            continue
        nxt = trace[i + 1][1] if i + 1 < len(trace) else None
        if (nxt is None or len(nxt) != x.dim() or math.prod(nxt[2:]) < math.prod(shape[2:])) \
                and not any(module is e for e in ends):
            ends.append(module)
    if not ends:
        raise ValueError("found no convolutional block in the model; pass layers= explicitly.")
    return ends


def select_feature_maps(avg_grad: torch.Tensor, mu: float = 0.0) -> torch.Tensor:
    """``(N, K)`` bool: maps with a positive average gradient above ``μ`` × the largest one (SISE phase 2)."""
    return (avg_grad > 0) & (avg_grad > mu * avg_grad.amax(1, keepdim=True))


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each row of ``(N, P)`` to [0, 1]; a constant row becomes 0."""
    low, high = maps.amin(1, keepdim=True), maps.amax(1, keepdim=True)
    span = high - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny), 0.0)


def otsu_gate(maps: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """``(N, P)`` bool: each row of maps in [0, 1] above its Otsu threshold (Otsu 1979, on a ``bins`` histogram).

    The threshold maximises the between-class variance ``(μ_T ω(t) − μ(t))² / (ω(t)(1 − ω(t)))``. A constant
    row carries no location information and gates nothing out (all True).
    """
    idx = (maps * bins).long().clamp(0, bins - 1)
    hist = torch.zeros(maps.shape[0], bins, dtype=torch.float64, device=maps.device)
    hist.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
    prob = hist / maps.shape[1]
    omega = prob.cumsum(1)
    centers = (torch.arange(bins, dtype=torch.float64, device=maps.device) + 0.5) / bins
    mu = (prob * centers).cumsum(1)
    denom = omega * (1.0 - omega)
    between = torch.where(denom > 1e-12, (mu[:, -1:] * omega - mu) ** 2 / denom.clamp_min(1e-12), 0.0)
    threshold = between.argmax(1, keepdim=True)
    constant = maps.amax(1, keepdim=True) == maps.amin(1, keepdim=True)
    return (idx > threshold) | constant


def fuse(layer_maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Cascaded fusion of ``(N, P)`` visualisation maps ordered shallow → deep (SISE phase 4), in [0, 1].

    ``F ← (F + V_l) ⊙ otsu_gate(V_l)`` for each deeper map ``V_l``, starting from the shallowest map.
    """
    fused = layer_maps[0]
    for deeper in layer_maps[1:]:
        fused = (fused + deeper) * otsu_gate(deeper)
    return normalize(fused)


@register("sise")
class SISE(Explainer):
    """SISE (Sattarzadeh et al. 2021) of the target softmax probability, broadcast over channels.

    Options: ``layers`` (None = :func:`block_ends`), ``mu`` (selection threshold μ ∈ [0, 1), default 0),
    ``batch_size`` (masked inputs per model pass; None = by input size), ``progress``.
    """

    reduction = "first"

    def __init__(self, model, layers: Sequence[nn.Module | str] | None = None, mu: float = 0.0,
                 batch_size: int | None = None, seed: int | None = None, progress: bool = False):
        super().__init__(model, seed=seed, progress=progress)
        if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not 0.0 <= mu < 1.0:
            raise ValueError(f"mu must be a number in [0, 1), not {mu!r}.")
        check_positive_int("batch_size", batch_size, allow_none=True, none_means="automatic")
        if layers is not None:
            if isinstance(layers, (str, nn.Module)) or len(layers) == 0:
                raise ValueError("layers must be a non-empty list of modules or dotted names, shallow to deep.")
            layers = [find_layer(model, layer) for layer in layers]
            if len({id(layer) for layer in layers}) != len(layers):
                raise ValueError("layers lists the same module twice; list each block's last layer once.")
        self.layers, self.mu, self.batch_size = layers, float(mu), batch_size

    def feature_maps(self, x: torch.Tensor, target: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (shallow → deep): its ``(N, K, *s)`` feature maps and ``(N, K)`` average gradients."""
        layers = self.layers or block_ends(self.model, x)
        acts: list[torch.Tensor] = []
        with hooks_removed([]) as handles:
            for layer in layers:
                handles.append(layer.register_forward_hook(lambda _m, _i, out: acts.append(out)))
            with torch.enable_grad():
                probs = self.probs(x.detach().requires_grad_(True), target)
                if len(acts) != len(layers):
                    raise ValueError("each layer in layers= must run exactly once per forward pass.")
                grads = torch.autograd.grad(probs.sum(), acts)
        return [(a.detach(), g.flatten(2).mean(2)) for a, g in zip(acts, grads)]

    def layer_map(self, x: torch.Tensor, target: torch.Tensor, fmaps: torch.Tensor,
                  keep: torch.Tensor) -> torch.Tensor:
        """``(N, P)`` visualisation map of one layer from its kept maps (SISE phase 3), min-max normalised."""
        n, size = x.shape[0], tuple(x.shape[2:])
        keep = keep & (fmaps.flatten(2).amax(2) > fmaps.flatten(2).amin(2))
        samples, channels = keep.nonzero(as_tuple=True)
        vis = torch.zeros(n, math.prod(size), device=x.device, dtype=x.dtype)
        rows = self.batch_size or auto_rows(x)
        chunks = range(0, samples.numel(), rows)
        with torch.no_grad():
            for c0 in progress_bar(chunks, enabled=self.progress, desc="SISE"):
                s, k = samples[c0:c0 + rows], channels[c0:c0 + rows]
                masks = normalize(upsample(fmaps[s, k].unsqueeze(1), size).flatten(1))
                scores = self.probs(x[s] * masks.view((-1, 1) + size), target[s])
                vis.index_add_(0, s, scores[:, None] * masks / masks.sum(1, keepdim=True).clamp_min(1e-12))
        return normalize(vis)

    def _attribute(self, x, target):
        maps = [self.layer_map(x, target, a, select_feature_maps(g, self.mu))
                for a, g in self.feature_maps(x, target)]
        fused = fuse(maps).view((x.shape[0], 1) + tuple(x.shape[2:]))
        return fused.expand_as(x).contiguous()
