"""Excitation backprop (Zhang, Lin, Brandt, Shen & Sclaroff, "Top-down Neural Attention by Excitation Backprop",
ECCV 2016; IJCV 2018), and its contrastive variant.

Marginal winning probabilities (MWP, Sec. 3.1–3.2). Top-down, a neuron ``a_i`` passes its winning probability to
its children ``a_j`` in proportion to their excitatory input, with ``â_j ≥ 0`` the child's response and
``w_ji`` the connection weight:

    P(a_j | a_i) = Z_i â_j w_ji  if w_ji ≥ 0, else 0;    Z_i = 1 / Σ_{j: w_ji ≥ 0} â_j w_ji
    P(a_j) = Σ_i P(a_j | a_i) P(a_i)

starting from a one-hot prior on the target class. For a convolution or linear layer with ``W⁺ = max(W, 0)``
(biases are not children and take no part) this is ``P_in = â ⊙ W⁺ᵀ (P_out / (W⁺ â))`` with ``0/0 = 0``. The
probabilities of a layer sum to one.

Contrastive MWP (c-MWP, Sec. 3.3): the target's output unit gets a dual unit whose input weights are the negated
ones; the map of the dual is subtracted from the target's. Excitation backprop is linear in the probabilities
once the forward pass is fixed, so the difference is taken at the top layer (the model's last ``nn.Linear``,
``â ⊙ (W⁺ᵀ e_c / z⁺ − (−W)⁺ᵀ e_c / z⁻)``) and sent down as one signed signal. As in the authors' code (and
TorchRay), the map keeps the positive part of the difference, summed over the read layer's channels: where the
evidence is for the target rather than for "not the target"; elsewhere it is 0.

How the kit's models are treated (our decisions; the paper's networks are VGG16 / GoogLeNet / AlexNet):

- Convolution and linear layers follow the rule above. Average pooling, including the global average pooling
  both kit models end with, is a layer with positive weights ``1 / k`` and follows it too (the probability is
  shared in proportion to the pooled responses). Max pooling passes the probability to the winning unit (its
  gradient). A ReLU keeps a neuron's probability (a unit with response 0 got none). Other modules with
  parameters (e.g. batch normalisation) are refused with a ``ValueError``.
- The MWP is defined for non-negative responses, and the input of the kit's models is normalised inside
  ``forward`` (signed). So, like the authors, who read the maps at an inner layer, we stop below the input: at
  the output of ``layer`` (default: the first ``nn.ReLU`` module, i.e. the first convolution block, which has
  the input's resolution in both ``ShallowCNN1D`` and ``VGG7``) and sum the probabilities over its channels. The
  map is then a probability distribution over input positions (it sums to 1; linearly / bilinearly upsampled if
  ``layer`` is coarser than the input), broadcast over the input's channels.

Implementation: as in the peers (TorchRay, zennit), the rule is a custom backward: a forward hook hands each
layer's output to a ``torch.autograd.Function`` that is the identity in forward and, in backward, computes the
normaliser ``W⁺ â`` and the transposed product, so the forward pass costs what the model's does and the top-down
pass one extra product per layer. The hooks are removed after each call, and the model is restored as found.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.core.batching import fast_layout
from course_utils.explainers.base import Explainer, find_layer, hooks_removed, register, upsample

_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Linear)
_AVERAGE = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)


def _positive_part_layer(module: nn.Module, negate: bool = False):
    """``a ↦ W⁺ a`` (no bias) for a convolution / linear module, ``(−W)⁺ a`` with ``negate``; the pooling itself
    for an average pool (its weights are already positive)."""
    if isinstance(module, _AVERAGE):
        return module.forward
    weight = (-module.weight if negate else module.weight).detach().clamp(min=0)
    if isinstance(module, nn.Linear):
        return lambda a: F.linear(a, weight)
    return lambda a: module._conv_forward(a, weight, None)


def _winning_probabilities(layer, a: torch.Tensor, p_out: torch.Tensor) -> torch.Tensor:
    """``P_in = â ⊙ W⁺ᵀ (P_out / (W⁺ â))`` with ``0/0 = 0``: one ``W⁺`` product for the normaliser and its
    transpose (autograd's vector-Jacobian product of that same product)."""
    a, p_out = fast_layout(a), fast_layout(p_out)   # faster products; same values
    with torch.enable_grad():
        a = a.detach().requires_grad_(True)
        z = layer(a)
        (transposed,) = torch.autograd.grad(z, a, torch.where(z > 0, p_out / z, torch.zeros_like(z)))
    return a.detach() * transposed


class _ExcitationStep(torch.autograd.Function):
    """Identity on a layer's (detached) output in forward; in backward, the excitation rule from the layer's
    input ``a`` (the target's unit minus its dual's at the contrastive top layer). The normaliser and the
    transposed product are computed only here, as the pass goes down."""

    @staticmethod
    def forward(ctx, output, a, layers):
        ctx.save_for_backward(a)
        ctx.layers = layers
        ctx.mark_dirty(output)   # returned as the layer's output: later in-place modules may write to it
        return output

    @staticmethod
    def backward(ctx, p_out):
        (a,) = ctx.saved_tensors
        positive, *dual = ctx.layers
        p_in = _winning_probabilities(positive, a, p_out)
        if dual:
            p_in = p_in - _winning_probabilities(dual[0], a, p_out)
        return None, p_in, None


@register("excitation_backprop")
class ExcitationBackprop(Explainer):
    """Excitation backprop (Zhang et al. 2016, Sec. 3.2): the marginal winning probability of the target,
    read at ``layer`` (default: the first ``nn.ReLU``), summed over its channels, broadcast over the input's.

    Options: ``layer`` (a module, its dotted name, or None), ``contrastive`` (c-MWP, Sec. 3.3). See the module
    docstring for how normalisation and pooling layers are treated.
    """

    reduction = "first"
    contrastive_default = False

    def __init__(self, model, layer: nn.Module | str | None = None, contrastive: bool | None = None,
                 seed: int | None = None, progress: bool = False):
        super().__init__(model, seed=seed, progress=progress)
        if contrastive is None:
            contrastive = self.contrastive_default
        if not isinstance(contrastive, bool):
            raise ValueError(f"contrastive must be True or False, not {contrastive!r}.")
        for name, module in model.named_modules():
            if not isinstance(module, _LINEAR) and any(True for _ in module.parameters(recurse=False)):
                raise ValueError(f"excitation backprop supports convolution, linear, pooling and ReLU layers; "
                                 f"module {name!r} ({type(module).__name__}) has parameters it cannot treat.")
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        if layer is None and not relus:
            raise ValueError("the model has no nn.ReLU module to read the probabilities at; pass layer=.")
        self.layer = relus[0] if layer is None else find_layer(model, layer)
        self.contrastive = contrastive
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if contrastive and not linears:
            raise ValueError("contrastive excitation backprop builds the dual unit on the model's last nn.Linear; "
                             "this model has none.")
        self.top = linears[-1] if linears else None

    def _attribute(self, x, target):
        state = {"reached": False, "read": None}

        def read(module, args, output):
            if state["reached"]:
                raise ValueError("the layer= module is called more than once in forward; pass a layer used once.")
            state["reached"] = True
            state["read"] = output.detach().requires_grad_(True)
            return state["read"]

        def excite(module, args, output):
            if not state["reached"]:   # below the read layer: nothing to propagate
                return None
            layers = [_positive_part_layer(module)]
            if self.contrastive and module is self.top:
                layers.append(_positive_part_layer(module, negate=True))
            return _ExcitationStep.apply(output.detach(), args[0], layers)

        with hooks_removed([]) as handles:
            handles.append(self.layer.register_forward_hook(read))
            handles.extend(m.register_forward_hook(excite) for m in self.model.modules()
                           if isinstance(m, _LINEAR + _AVERAGE))
            out = self.model(x)
        prior = F.one_hot(target, out.shape[1]).to(out.dtype)
        (probability,) = torch.autograd.grad(out, state["read"], grad_outputs=prior)
        maps = probability.sum(1, keepdim=True)
        if self.contrastive:
            maps = maps.clamp(min=0)
        if maps.shape[2:] != x.shape[2:]:
            maps = upsample(maps, x.shape[2:])
        return maps.expand_as(x).clone()


@register("contrastive_excitation_backprop")
class ContrastiveExcitationBackprop(ExcitationBackprop):
    """Contrastive excitation backprop (c-MWP, Zhang et al. 2016, Sec. 3.3): :class:`ExcitationBackprop` with
    ``contrastive=True``: the positive part of the target's map minus its dual unit's (negated top-layer
    weights)."""

    contrastive_default = True
