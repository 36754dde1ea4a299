"""FGVis: fine-grained explanations by per-pixel masks with a defense against adversarial evidence.

Wagner, Köhler, Gindele, Hetzel, Wiedemer & Behnke, "Interpretable and Fine-Grained Visual Explanations for
Convolutional Neural Networks", CVPR 2019.

Sec. 3.1: a mask ``m`` shaped like the input (one value per pixel *and channel*), initialised at one, blends the
image with a reference ``x_r = 0``: ``e = m ⊙ x + (1 − m) ⊙ x_r``. With ``S_c`` the target's softmax score,

    preservation game:  m* = argmin_m  λ ‖m‖₁     − S_c(e)     (the smallest part of x that keeps the score)
    deletion game:      m* = argmin_m  λ ‖1 − m‖₁ + S_c(e)     (the smallest part of x whose removal kills it)

solved by gradient descent, ``m`` clipped to [0, 1] after every step.

Sec. 3.3, defense against adversarial evidence: the optimiser must not *create* evidence. During the
backward pass, the error signal through every nonlinearity ``h`` is zeroed where the perturbed activation
``h(e)`` leaves the range of the original one, ``[min(0, h(x)), max(0, h(x))]``. For a ReLU this range is
``[0, h(x)]``: units that the perturbation switched on, or drove above their original value, pass no gradient.
What this guarantees is exactly that (no descent direction is computed through an out-of-range unit); it is not
a projection, so an update can still push some activations out of range, where their gradient is then cut.

Defended nonlinearities: ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.PReLU`` (their forward calls the functional op)
and the functional ``F.relu``, ``torch.relu``, ``Tensor.relu``, ``F.leaky_relu``, ``F.prelu`` / ``torch.prelu``
with their in-place variants, found on the clean pass by a :class:`torch.overrides.TorchFunctionMode` (so ReLUs
called inside a custom ``forward`` are covered too); the perturbed passes are filtered by forward hooks when all
of them are nonlinearity modules, by the same interception otherwise. Other nonlinearities (ReLU6, GELU, SiLU,
ELU, tanh, sigmoid, max pooling) pass unfiltered.

Scaling (our inputs are 40-point signals and 64 px tiles, not 224 px ImageNet images): the sparsity is the
*mean* of ``|m|`` over the mask, so ``λ`` does not depend on the input size (``λ_paper = λ / D`` for ``D``
mask elements per sample), and SGD runs on ``D`` times the per-sample objective, so that ``lr`` is the step a
mask element takes under a unit per-element gradient whatever ``D`` is. Defaults: SGD with momentum 0.9,
``lr = 0.05``, ``λ = 0.2`` (keep the score while removing 80 % of the mask costs less than a 0.16 score drop),
300 iterations. The method has no randomness (no ``seed``).

Batches: each sample has its own mask, its own loss term (summed, so gradients and momenta are per sample) and
its own activation ranges (taken from its own clean forward pass).
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode

from course_utils.core.checks import check_non_negative, check_positive_int
from course_utils.explainers.base import Explainer, progress_bar, register
from course_utils.explainers.mask_updates import SGD

_GAMES = ("preservation", "deletion")

_OUT_OF_PLACE = {
    F.relu: F.relu, torch.relu: torch.relu, torch.Tensor.relu: torch.Tensor.relu,
    torch.relu_: torch.relu, torch.Tensor.relu_: torch.Tensor.relu,
    F.leaky_relu: F.leaky_relu, F.leaky_relu_: F.leaky_relu,
    torch.prelu: torch.prelu,
}
_IN_PLACE = {torch.relu_, torch.Tensor.relu_, F.leaky_relu_}
_NON_NEGATIVE = {F.relu, torch.relu, torch.Tensor.relu, torch.relu_, torch.Tensor.relu_}
_DEFENDED_MODULES = (nn.ReLU, nn.LeakyReLU, nn.PReLU)


class ActivationRangeDefense(TorchFunctionMode):
    """Record each nonlinearity's output on the clean input, then cut the gradient outside its range.

    Use ``with defense.recording(): model(x)`` once, then ``with defense.filtering(): model(e)`` for each
    perturbed pass. The k-th nonlinearity call of a perturbed pass is compared with the k-th call of the
    clean pass, element by element: where ``h(e) ∉ [min(0, h(x)), max(0, h(x))]`` a gradient hook on the output
    zeroes the error signal, so no gradient flows through it (Wagner et al. 2019, Sec. 3.3). The model's forward
    must call the same nonlinearities in the same order on same-shaped inputs every time (true of any
    feed-forward CNN).

    The clean pass intercepts every torch function. When each defended call it saw was the one call of an
    ``nn.ReLU`` / ``nn.LeakyReLU`` / ``nn.PReLU`` module's forward (as in ``nn.Sequential`` CNNs), the perturbed
    passes are filtered by forward hooks on those modules (``hooked_modules``), which costs no Python call per
    torch function; otherwise (functional ReLUs in a custom ``forward``) by the same interception.
    """

    def __init__(self):
        super().__init__()
        self.bounds: list[tuple[torch.Tensor | None, torch.Tensor]] = []
        self.calls = 0
        self.recording_pass = False
        self.hooked_modules: list[nn.Module] = []
        self._handles: list = []
        self._intercepting = False
        # recording: which defended module (or None) made each defended call; [module, its calls] while one runs
        self._owners: list[nn.Module | None] = []
        self._running: list[list] = []
        self._single_calls = True

    def recording(self) -> ActivationRangeDefense:
        self.bounds, self.calls, self.recording_pass, self.hooked_modules = [], 0, True, []
        return self

    def filtering(self) -> ActivationRangeDefense:
        if not self.bounds:
            raise ValueError("no activation ranges recorded: run the clean input under defense.recording() first.")
        self.calls, self.recording_pass = 0, False
        return self

    def __enter__(self):
        if self.recording_pass:   # intercept every torch function; note which module made each defended call
            self._owners, self._running, self._single_calls = [], [], True
            self._handles = [register_module_forward_pre_hook(self._module_starts),
                             register_module_forward_hook(self._module_ends)]
        elif self.hooked_modules:
            self._handles = [m.register_forward_hook(self._module_output) for m in self.hooked_modules]
            return self
        self._intercepting = True
        return super().__enter__()

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        out = None
        if self._intercepting:
            self._intercepting = False
            out = super().__exit__(*exc)
        if exc[0] is not None:
            return out
        if self.recording_pass and self._single_calls and all(self._owners):
            self.hooked_modules = list(dict.fromkeys(self._owners))
        if not self.recording_pass and self.calls != len(self.bounds):
            raise ValueError(f"the perturbed forward pass called {self.calls} defended nonlinearities, the clean "
                             f"one {len(self.bounds)}; the model's forward must be the same for every input.")
        return out

    def _module_starts(self, module, args):
        if isinstance(module, _DEFENDED_MODULES):
            self._running.append([module, 0])

    def _module_ends(self, module, args, output):
        if isinstance(module, _DEFENDED_MODULES):
            self._single_calls &= self._running.pop()[1] == 1

    def _module_output(self, module, args, output):
        return self._filter(output, isinstance(module, nn.ReLU))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func not in _OUT_OF_PLACE:   # every other call of the forward pass: straight through
            return func(*args, **(kwargs or {}))
        kwargs = dict(kwargs or {})
        in_place = func in _IN_PLACE or kwargs.pop("inplace", False)
        target = args[0]
        if in_place:   # compute on a copy: the input is overwritten below and may be needed by the backward
            args = (args[0].clone(), *args[1:])
        out = _OUT_OF_PLACE[func](*args, **kwargs)
        out = self._record(out) if self.recording_pass else self._filter(out, func in _NON_NEGATIVE)
        return target.copy_(out) if in_place else out

    def _record(self, out: torch.Tensor) -> torch.Tensor:
        owner = self._running[-1] if self._running else None
        if owner is not None:
            owner[1] += 1
        self._owners.append(None if owner is None else owner[0])
        clean = out.detach()
        low = clean.clamp(max=0)
        self.bounds.append((low if low.any() else None, clean.clamp(min=0)))   # None: the range starts at 0
        return out

    def _filter(self, out: torch.Tensor, non_negative: bool) -> torch.Tensor:
        if self.calls >= len(self.bounds):
            raise ValueError("the perturbed forward pass calls more defended nonlinearities than the clean one; "
                             "the model's forward must be the same for every input.")
        low, high = self.bounds[self.calls]
        self.calls += 1
        if high.shape != out.shape:
            raise ValueError(f"nonlinearity call {self.calls} has shape {tuple(out.shape)} on the perturbed input "
                             f"but {tuple(high.shape)} on the clean one; the model's forward must not depend on "
                             "the input values.")
        if out.requires_grad:
            inside = torch.empty_like(out)   # a 0/1 float mask: grad × a bool mask is several times slower
            if low is None and non_negative:   # a ReLU's output is ≥ 0 = low: one comparison decides
                torch.le(out, high, out=inside)
            else:
                torch.logical_and(out >= (0 if low is None else low), out <= high, out=inside)
            out.register_hook(lambda grad: grad * inside)
        return out


@register("fgvis")
class FGVis(Explainer):
    """Wagner et al. (2019) per-pixel, per-channel mask with the activation-range defense (Sec. 3.1–3.3).

    ``attribute`` returns, shaped like ``x``, the evidence map: the mask ``m`` for the preservation game (the
    pixels and colours that must stay), ``1 − m`` for the deletion game (those whose removal kills the score),
    so that in both games high = evidence for the target. ``explain`` averages over channels. The explanation
    image itself is ``x * m`` (``x * (1 − attribution)`` for deletion).

    Options: ``game``, ``sparsity`` (λ on the mean of ``|m|``), ``iterations``, ``lr`` and ``momentum`` (SGD),
    ``defense`` (True = Sec. 3.3; False shows the adversarial evidence it prevents), ``progress``.
    """

    reduction = "mean"

    def __init__(self, model, game: str = "preservation", sparsity: float = 0.2, iterations: int = 300,
                 lr: float = 0.05, momentum: float = 0.9, defense: bool = True, seed: int | None = None,
                 progress: bool = True):
        super().__init__(model, seed=seed, progress=progress)
        if game not in _GAMES:
            raise ValueError(f"game must be one of {_GAMES}, not {game!r}.")
        check_positive_int("iterations", iterations)
        for name, value in (("sparsity", sparsity), ("lr", lr), ("momentum", momentum)):
            check_non_negative(name, value)
        if lr == 0 or momentum >= 1:
            raise ValueError(f"need lr > 0 and momentum < 1, not lr={lr!r}, momentum={momentum!r}.")
        if not isinstance(defense, bool):
            raise ValueError(f"defense must be True or False, not {defense!r}.")
        self.game, self.sparsity, self.iterations = game, float(sparsity), iterations
        self.lr, self.momentum, self.defense = float(lr), float(momentum), defense

    def objective(self, mask: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """Per-sample objective ``(N,)``: ``λ mean|m| − S_c`` (preservation) or ``λ mean|1 − m| + S_c``.

        The optimisation follows ``D`` times its gradient (``D`` = mask elements per sample): the score's by
        autograd w.r.t. ``e = m ⊙ x``, times ``x``; the sparsity term's written out (:meth:`sparsity_gradient`).
        """
        area = mask if self.game == "preservation" else 1 - mask
        sparsity = self.sparsity * area.abs().flatten(1).mean(1)
        return sparsity - score if self.game == "preservation" else sparsity + score

    def sparsity_gradient(self, mask: torch.Tensor) -> torch.Tensor:
        """``D ∂(λ mean|area|)/∂m``: ``λ sign(m)`` (preservation) or ``−λ sign(1 − m)`` (deletion)."""
        if self.game == "preservation":
            return mask.sign().mul_(self.sparsity)
        return (1 - mask).sign_().mul_(-self.sparsity)

    def _attribute(self, x, target):
        mask = torch.ones_like(x)
        optimiser = SGD(mask, lr=self.lr, momentum=self.momentum)
        defense = ActivationRangeDefense() if self.defense else None
        if defense is not None:
            with torch.no_grad(), defense.recording():
                self.model(x)
        elements = float(x[0].numel())   # the score's weight in D × the objective
        score_weights = torch.full((x.shape[0],), -elements if self.game == "preservation" else elements,
                                   dtype=x.dtype, device=x.device)
        for _ in progress_bar(range(self.iterations), enabled=self.progress, desc="FGVis"):
            # autograd runs through the model only; e = m ⊙ x, so ∂/∂m = x ⊙ ∂/∂e
            explanation = (mask * x).requires_grad_(True)
            with defense.filtering() if defense is not None else contextlib.nullcontext():
                score = self.probs(explanation, target)
            (grad,) = torch.autograd.grad(score, explanation, grad_outputs=score_weights)
            optimiser.step(grad.mul_(x).add_(self.sparsity_gradient(mask)))
            mask.clamp_(0, 1)
        return mask if self.game == "preservation" else 1 - mask
