"""CAM family: CAM, Grad-CAM and Grad-CAM++ (one base class; each method supplies its channel weights).

``map_c = ReLU(Σ_k w_k^c A_k)`` over the feature maps ``A_k`` of one layer, upsampled (linear in 1-D, bilinear
in 2-D) to the input size and broadcast over the input channels. The layer's output is captured by a forward
hook that swaps it for a fresh leaf tensor, so the backward pass starts at the logits and stops at that layer.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from course_utils.explainers.base import Explainer, find_layer, hooks_removed, register, upsample


class _CAMBase(Explainer):
    """Capture one layer's activations (and ∂y_c/∂A), weight its channels, sum, ReLU, upsample.

    Subclasses implement :meth:`_channel_weights`. Options: ``relu`` (clip the weighted sum at 0, as the
    papers do), ``normalize`` (min–max each sample's map to [0, 1], for plotting).
    """

    reduction = "first"
    needs_gradients: ClassVar[bool] = True
    captures_input: ClassVar[bool] = False

    def __init__(self, model: nn.Module, layer: nn.Module | str | None = None, relu: bool = True,
                 normalize: bool = False, seed: int | None = None, progress: bool = False):
        super().__init__(model, seed=seed, progress=progress)
        self.layer = find_layer(model, layer)
        self.relu, self.normalize = bool(relu), bool(normalize)

    def _channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None,
                         target: torch.Tensor) -> torch.Tensor:
        """``(N, K)`` weights of the ``K`` channels of ``activations`` ``(N, K, *s)``."""
        raise NotImplementedError

    def _attribute(self, x, target):
        activations, gradients = self._activations_and_gradients(x, target)
        weights = self._channel_weights(activations, gradients, target)
        maps = torch.einsum("nk,nk...->n...", weights, activations).unsqueeze(1)
        if self.relu:
            maps = maps.clamp_min(0)
        if maps.shape[2:] != x.shape[2:]:
            maps = upsample(maps, x.shape[2:])
        if self.normalize:
            flat = maps.flatten(1)
            low, high = flat.amin(1), flat.amax(1)
            span = torch.where(high > low, high - low, torch.ones_like(high))
            maps = ((flat - low[:, None]) / span[:, None]).view(maps.shape)
        return maps.expand_as(x).contiguous()

    def _activations_and_gradients(self, x: torch.Tensor, target: torch.Tensor):
        """The layer's activations ``A`` and, if needed, ``∂y_c/∂A`` (one forward, one partial backward)."""
        captured: list[torch.Tensor] = []

        def swap(tensor):
            if not isinstance(tensor, torch.Tensor) or tensor.dim() != x.dim():
                raise ValueError(f"the layer {type(self.layer).__name__} does not carry an (N, K, *spatial) "
                                 "tensor; pick a convolutional layer with layer=.")
            leaf = tensor.detach().requires_grad_(self.needs_gradients)
            captured.append(leaf)
            return leaf.clone() if self.needs_gradients else leaf

        with hooks_removed([]) as handles:
            if self.captures_input:
                handles.append(self.layer.register_forward_pre_hook(
                    lambda module, args: (swap(args[0]), *args[1:])))
            else:
                handles.append(self.layer.register_forward_hook(lambda module, args, out: swap(out)))
            with torch.set_grad_enabled(self.needs_gradients):
                logits = self.logits(x, target)
        if len(captured) != 1:
            raise ValueError(f"the chosen layer ran {len(captured)} times in one forward pass; pick a layer "
                             "that runs exactly once (layer=).")
        activations = captured[0]
        if not self.needs_gradients:
            return activations, None
        (gradients,) = torch.autograd.grad(logits.sum(), activations)
        return activations.detach(), gradients


def gap_linear_head(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The global average pool and the last ``nn.Linear`` of a GAP + linear classifier head (Zhou 2016)."""
    pools = [m for m in model.modules() if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d))]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    pool = pools[-1] if pools else None
    size = getattr(pool, "output_size", None)
    if pool is None or not linears or not all(s == 1 for s in (size if isinstance(size, tuple) else (size,))):
        raise ValueError("CAM needs a global-average-pool + linear head (nn.AdaptiveAvgPool1d/2d(1) then "
                         "nn.Linear); this model has none, use GradCAM instead.")
    return pool, linears[-1]


@register("cam")
class CAM(_CAMBase):
    """Class Activation Mapping (Zhou et al. 2016, Eq. 2): ``M_c = Σ_k w_k^c f_k``.

    ``f_k`` are the feature maps entering the global average pool and ``w^c`` the classifier row of class
    ``c`` (bias left out). Needs no gradient. Only for GAP + linear heads; other models raise ``ValueError``.
    """

    needs_gradients = False
    captures_input = True

    def __init__(self, model: nn.Module, relu: bool = True, normalize: bool = False, seed: int | None = None,
                 progress: bool = False):
        pool, self.head = gap_linear_head(model)
        super().__init__(model, layer=pool, relu=relu, normalize=normalize, seed=seed, progress=progress)

    def _channel_weights(self, activations, gradients, target):
        if activations.shape[1] != self.head.in_features:
            raise ValueError(f"the pooled features have {activations.shape[1]} channels but the last linear "
                             f"layer takes {self.head.in_features}; CAM does not apply, use GradCAM.")
        return self.head.weight[target].to(activations.dtype)


@register("gradcam")
class GradCAM(_CAMBase):
    """Grad-CAM (Selvaraju et al. 2017, Eq. 1–2): ``α_k^c = mean_ij ∂y_c/∂A_k^ij``, ``ReLU(Σ_k α_k^c A_k)``.

    ``layer``: a module of the model, its dotted name, or None for the last convolution.
    """

    def _channel_weights(self, activations, gradients, target):
        return gradients.flatten(2).mean(2)


@register("gradcam++")
class GradCAMPlusPlus(_CAMBase):
    """Grad-CAM++ (Chattopadhay et al. 2018, weights of Eq. 7 with the closed-form α of Eq. 19).

    With ``Y_c = exp(S_c)`` and a piecewise-linear network, the pixel weights are
    ``α_k^ij = g² / (2 g² + Σ_ab A_k^ab · g³)`` with ``g = ∂S_c/∂A_k^ij`` (Eq. 19; ``α = 0`` where the
    denominator is 0, e.g. where ``g = 0``), and ``w_k^c = Σ_ij α_k^ij ReLU(g)`` (Eq. 7; the positive factor
    ``exp(S_c)`` is dropped, it only rescales the map). Unlike pytorch-grad-cam, no ε is added to the denominator.
    """

    def _channel_weights(self, activations, gradients, target):
        g2 = gradients * gradients
        sums = activations.flatten(2).sum(2).view(*activations.shape[:2], *[1] * (activations.dim() - 2))
        denominator = 2 * g2 + sums * g2 * gradients
        defined = denominator != 0
        alphas = torch.where(defined, g2 / torch.where(defined, denominator, torch.ones_like(denominator)), 0)
        return (alphas * gradients.clamp_min(0)).flatten(2).sum(2)
