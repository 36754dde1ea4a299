"""Gradient family: Saliency, Gradient × Input, SmoothGrad and Integrated Gradients.

All four differentiate the target logit with respect to the input (``torch.autograd.grad``, parameters frozen,
so only the input gradient is computed). SmoothGrad and Integrated Gradients evaluate many copies of each
input; they stack the copies of all images and run them in passes of ``batch_size`` rows (see
:func:`rows_per_pass` for the automatic choice).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from course_utils.core.checks import check_positive_int, check_seed
from course_utils.explainers.base import Explainer, TargetLike, model_state_preserved, progress_bar, register

_AUTO_ELEMENTS = 2**14
"""With ``batch_size=None``, a pass stacks copies until it holds this many input elements (at least the whole
batch): on CPU, passes much larger than that ran slower per row in ``benchmarks/bench_gradient_cam.py``."""


def target_gradient(explainer: Explainer, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """∂y_c/∂x for each sample: one forward and one backward pass (samples are independent in eval mode)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(explainer.logits(x, target).sum(), x)
    return grad


def rows_per_pass(x: torch.Tensor, batch_size: int | None) -> int:
    """Rows of stacked copies per forward/backward pass: ``batch_size``, or automatic (see ``_AUTO_ELEMENTS``)."""
    return batch_size or max(x.shape[0], _AUTO_ELEMENTS // x[0].numel())


def _passes(n_copies: int, x: torch.Tensor, batch_size: int | None) -> Iterator[tuple[slice, slice]]:
    """Blocks ``(copies, samples)`` of the ``n_copies × N`` stacked inputs, each at most ``rows_per_pass`` rows.

    Whole copies of the batch go together when they fit (``k`` copies × ``N`` samples per pass); otherwise one
    copy is split over samples.
    """
    n, rows = x.shape[0], rows_per_pass(x, batch_size)
    copies_per_pass, samples_per_pass = max(1, rows // n), min(n, rows)
    for c0 in range(0, n_copies, copies_per_pass):
        for i0 in range(0, n, samples_per_pass):
            yield slice(c0, min(c0 + copies_per_pass, n_copies)), slice(i0, min(i0 + samples_per_pass, n))


def _n_passes(n_copies: int, x: torch.Tensor, batch_size: int | None) -> int:
    return sum(1 for _ in _passes(n_copies, x, batch_size))


@register("saliency")
class Saliency(Explainer):
    """Vanilla gradient ∂y_c/∂x of the target logit (Simonyan et al. 2014, Eq. 1–3, Sec. 3.1).

    ``attribute`` returns the raw (signed) gradient, or ``|∂y_c/∂x|`` with ``abs=True``; ``explain`` takes the
    maximum of ``|·|`` over channels, as in the paper's saliency maps.
    """

    reduction = "abs_max"

    def __init__(self, model, abs: bool = False, seed: int | None = None, progress: bool = False):
        super().__init__(model, seed=seed, progress=progress)
        self.abs = bool(abs)

    def _attribute(self, x, target):
        grad = target_gradient(self, x, target)
        return grad.abs() if self.abs else grad


@register("gradient_x_input")
class GradientXInput(Explainer):
    """Gradient × input, ``x ⊙ ∂y_c/∂x`` (Shrikumar et al. 2017); ``explain`` sums over channels."""

    reduction = "sum"

    def _attribute(self, x, target):
        return x * target_gradient(self, x, target)


@register("smoothgrad")
class SmoothGrad(Explainer):
    """Mean gradient over noisy copies of the input (Smilkov et al. 2017, Eq. 2; SmoothGrad-Squared, Eq. 3).

    ``M̂_c(x) = 1/n Σ_i ∂y_c/∂x (x + ε_i)`` with ``ε_i ~ N(0, σ²)`` and ``σ = noise_level · (max x − min x)``
    per sample (the paper's 10–20 % of the input range). ``squared=True`` averages the squared gradients.
    The noise is drawn as ``σ · randn((n_samples, *x.shape))`` from a local generator seeded with ``seed``
    (``None`` = a fresh random seed), so the result does not depend on ``batch_size`` (rows per pass,
    ``None`` = automatic). With ``noise_level=0`` this is :class:`Saliency`.
    """

    reduction = "abs_max"
    stochastic = True

    def __init__(self, model, n_samples: int = 50, noise_level: float = 0.15, squared: bool = False,
                 batch_size: int | None = None, seed: int | None = 0, progress: bool = True):
        check_seed(seed, allow_none=True, none_means="a fresh random seed")
        super().__init__(model, seed=seed, progress=progress)
        check_positive_int("n_samples", n_samples)
        if not (isinstance(noise_level, (int, float)) and 0 <= noise_level < float("inf")):
            raise ValueError(f"noise_level must be a finite number ≥ 0 (a fraction of the input range, e.g. "
                             f"0.15), not {noise_level!r}.")
        self.n_samples, self.noise_level, self.squared = n_samples, float(noise_level), bool(squared)
        self.batch_size = check_positive_int("batch_size", batch_size, allow_none=True, none_means="automatic")

    def _attribute(self, x, target):
        generator = torch.Generator(device=x.device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        spread = x.flatten(1).amax(1) - x.flatten(1).amin(1)
        sigma = (self.noise_level * spread).view(1, -1, *[1] * (x.dim() - 1))
        noisy = x + sigma * torch.randn((self.n_samples, *x.shape), generator=generator, device=x.device,
                                        dtype=x.dtype)
        total = torch.zeros_like(x)
        blocks = _passes(self.n_samples, x, self.batch_size)
        for copies, samples in progress_bar(blocks, enabled=self.progress, desc="SmoothGrad",
                                            total=_n_passes(self.n_samples, x, self.batch_size)):
            rows = noisy[copies, samples]
            grad = target_gradient(self, rows.flatten(0, 1), target[samples].repeat(rows.shape[0]))
            grad = grad.view(rows.shape)
            total[samples] += (grad * grad if self.squared else grad).sum(0)
        return total / self.n_samples


_METHODS = ("riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


def riemann_rule(method: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alphas, step_sizes)`` of a Riemann rule on [0, 1], with captum's conventions.

    left/right/middle: ``n_steps`` points ``k/n``, ``(k+1)/n``, ``(k+½)/n`` (k = 0..n−1), each weighted ``1/n``
    (right is Sundararajan's Eq. 3). trapezoid: ``n_steps`` points ``linspace(0, 1, n)`` weighted ``1/n`` with
    both ends halved, as captum does (the weights sum to ``1 − 1/n``, so completeness holds only as n grows).
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, not {method!r}.")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 2:
        raise ValueError(f"n_steps must be an int ≥ 2, not {n_steps!r}.")
    n = n_steps
    step_sizes = torch.full((n,), 1 / n, dtype=torch.float64)
    if method == "riemann_trapezoid":
        step_sizes[[0, -1]] /= 2
        alphas = torch.linspace(0, 1, n)
    elif method == "riemann_left":
        alphas = torch.linspace(0, 1 - 1 / n, n)
    elif method == "riemann_right":
        alphas = torch.linspace(1 / n, 1, n)
    else:
        alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    return alphas, step_sizes.float()


@register("integrated_gradients")
class IntegratedGradients(Explainer):
    """Integrated Gradients (Sundararajan et al. 2017, Eq. 1, Riemann approximation Eq. 3).

    ``IG(x) = (x − x') ⊙ Σ_k w_k ∂y_c/∂x (x' + α_k (x − x'))`` with the rule ``method`` (see
    :func:`riemann_rule`; default ``riemann_right``, the paper's Eq. 3) and the baseline ``x'`` (default
    zeros = black; a number or a tensor broadcastable to ``x``). All steps of all images are stacked and run
    ``internal_batch_size`` rows per pass (``None`` = automatic). ``attribute(x, target, return_gap=True)``
    also returns the completeness gap ``Σ IG − (y_c(x) − y_c(x'))`` per sample (Sec. 3, Prop. 1).
    """

    reduction = "sum"

    def __init__(self, model, baseline: float | torch.Tensor | None = None, n_steps: int = 50,
                 method: str = "riemann_right", internal_batch_size: int | None = None, seed: int | None = None,
                 progress: bool = True):
        super().__init__(model, seed=seed, progress=progress)
        self.alphas, self.step_sizes = riemann_rule(method, n_steps)
        if baseline is not None and not isinstance(baseline, (int, float, torch.Tensor)):
            raise ValueError(f"baseline must be None (zeros), a number or a tensor, not {type(baseline).__name__}.")
        self.baseline, self.method, self.n_steps = baseline, method, n_steps
        self.internal_batch_size = check_positive_int("internal_batch_size", internal_batch_size, allow_none=True,
                                                      none_means="automatic")

    def attribute(self, x: torch.Tensor, target: TargetLike = None, return_gap: bool = False):
        """Attribution shaped like ``x``; with ``return_gap=True`` the pair ``(attribution, gap)``."""
        if not return_gap:
            return super().attribute(x, target)
        x = self.check_input(x)
        with model_state_preserved(self.model):
            target = self.resolve_target(x, target)
            attr = self._attribute(x, target)
            with torch.no_grad():
                ends = self.logits(torch.cat([x, self._baseline_for(x)]), target.repeat(2))
        n = x.shape[0]
        return attr.detach(), attr.flatten(1).sum(1) - (ends[:n] - ends[n:])

    def _baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.baseline is None:
            return torch.zeros_like(x)
        base = torch.as_tensor(self.baseline, dtype=x.dtype, device=x.device)
        try:
            torch.broadcast_shapes(base.shape, x.shape)
        except RuntimeError:
            raise ValueError(f"baseline of shape {tuple(base.shape)} does not broadcast to x of shape "
                             f"{tuple(x.shape)}; pass one shaped like x, like x[0], or a number.") from None
        if not torch.isfinite(base).all():
            raise ValueError("baseline contains NaN or inf; pass a finite baseline.")
        return base.expand_as(x)

    def _attribute(self, x, target):
        baseline = self._baseline_for(x)
        diff = x - baseline
        view = (-1,) + (1,) * x.dim()
        alphas = self.alphas.to(x).view(view)
        step_sizes = self.step_sizes.to(x).view(view)
        total = torch.zeros_like(x)
        blocks = _passes(self.n_steps, x, self.internal_batch_size)
        for steps, samples in progress_bar(blocks, enabled=self.progress, desc="Integrated Gradients",
                                           total=_n_passes(self.n_steps, x, self.internal_batch_size)):
            rows = baseline[samples] + alphas[steps] * diff[samples]
            grad = target_gradient(self, rows.flatten(0, 1), target[samples].repeat(rows.shape[0]))
            total[samples] += (grad.view(rows.shape) * step_sizes[steps]).sum(0)
        return total * diff
