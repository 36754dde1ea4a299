"""Guided backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller, "Striving for Simplicity: The All
Convolutional Net", ICLR workshop 2015).

The gradient of the target logit with respect to the input, except that at every ReLU the backward signal is
masked twice: by the forward pass (only where the ReLU's input was positive, as in the plain gradient) and by the
backward pass (only where the signal arriving from above is positive, as in the "deconvnet"):

    R_i = (f_i > 0) · (R_{i+1} > 0) · R_{i+1}

Implementation: a forward hook on every ``nn.ReLU`` module puts a gradient hook on its output that clamps the
arriving signal at zero; the ReLU's own backward then applies the forward mask. ReLUs called as functions
(``F.relu`` inside a custom ``forward``) are not reached; a model without ``nn.ReLU`` modules is refused with a
``ValueError``. The hooks are removed after each call and in-place ReLUs are made out-of-place during it
(:func:`~course_utils.explainers.base.model_state_preserved`), so the model is left as it was found.

Adebayo et al. (2018) show that these maps barely change when the model's weights are randomised
(notebook 08's sanity check measures it): guided backprop behaves much like an edge detector of the input.
"""
from __future__ import annotations

import torch
from torch import nn

from course_utils.explainers.base import Explainer, hooks_removed, register


def _clamp_arriving_signal(module, args, output):
    if output.requires_grad:
        output.register_hook(lambda grad: grad.clamp(min=0))


@register("guided_backprop")
class GuidedBackprop(Explainer):
    """Guided backpropagation of the target logit (Springenberg et al. 2015); ``attribute`` returns
    the signed input map, ``explain`` the maximum of ``|·|`` over channels (as for saliency)."""

    reduction = "abs_max"

    def _attribute(self, x, target):
        relus = [m for m in self.model.modules() if isinstance(m, nn.ReLU)]
        if not relus:
            raise ValueError("guided backprop needs the model's ReLUs as nn.ReLU modules (it found none); "
                             "replace F.relu calls in forward by nn.ReLU modules.")
        with hooks_removed([]) as handles:
            handles.extend(m.register_forward_hook(_clamp_arriving_signal) for m in relus)
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.logits(x, target).sum(), x)
        return grad
