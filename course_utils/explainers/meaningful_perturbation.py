"""Meaningful perturbation: a learned deletion or preservation mask (Fong & Vedaldi, ICCV 2017, Sec. 3–4).

A low-resolution mask ``m ∈ [0, 1]`` (1 = keep) is upsampled to the input (bilinear in 2-D, linear in 1-D) and
blends the input with a reference ``x̃`` where information is removed (Sec. 4.1, meaningful image perturbations):

    Φ(x; m) = m ⊙ x + (1 − m) ⊙ x̃,   x̃ = blurred x (σ_max = 10 px at 224 px), a constant, or noisy x.

(The paper writes the blur as a spatially varying Gaussian ``g_{σ₀ m(u)}``; blending with one image blurred at
``σ₀`` is the common implementation and keeps the rule "m = 1 keeps the pixel" for all three references.)
The mask minimises, with ``f_c`` the target's softmax probability (Eq. 3–5, deletion and preservation games):

    deletion:      λ1 ‖1 − m‖₁ + λ2 TV_β(m) + E_τ[f_c(Φ(x(· − τ); m))]
    preservation:  λ1 ‖m‖₁     + λ2 TV_β(m) − E_τ[f_c(Φ(x(· − τ); m))]

with ``TV_β(m) = Σ_u Σ_axes |m(u + e_axis) − m(u)|^β`` (β = 3, Eq. 4) and stochastic jitter (Sec. 4.3, the
paper's defence against artefacts): at every step the *input* is shifted by a random ``τ`` under the *fixed*
mask, ``Φ(x(· − τ); m) = m ⊙ x(· − τ) + (1 − m) ⊙ x̃(· − τ)`` (as the authors' ``optimize_mask.m`` crops a
jittered window of the padded image and of its blurred copy and blends it with the unshifted mask). A mask that
works only at one alignment of the input, e.g. one that paints a fine pattern onto it, fails at the other
shifts; shifting the perturbed input as a whole (mask included) would not regularise, since a CNN with global
pooling barely notices a shift of its whole input. Shifts repeat the border samples. Adam, lr 0.1,
300 iterations, m projected back to [0, 1] after every step, starting from m = 1 (nothing deleted).

``f_c`` is the target's softmax probability, as in the paper. ``score="logit"`` (or ``"log_probability"``) is
our deviation, offered for saturated models: where the softmax is ≈ 1 its gradient vanishes, the L1 prior wins
and the deletion mask never leaves 1 (a flat map). The logit keeps its gradient there. The log-probability
does not help: its gradient with respect to the logits, ``e_c − softmax``, vanishes too as ``f_c → 1``. On 100
MNIST-1D test signals (deletion game, mask_scale 2) the logit brought Drop% from 40.3 to 22.1 and deletion AUC
from 0.261 to 0.123, and the log-probability made them worse (49.4, 0.269); notebook 06 measures it.

Scaling of the paper's ImageNet defaults (224 px, 28 × 28 mask) to the kit's inputs:

- mask resolution = input size / ``mask_scale``. Images: 8, as 224 → 28, so 64 px tiles get 8 × 8 cells.
  Signals: 2, so 40-point signals get 20 cells of 2 points. The paper's ratio would give 5 cells of 8 points,
  coarser than a digit template (7–11 points); on 100 MNIST-1D test signals (deletion game, 300 iterations)
  mask_scale 1 / 2 / 4 / 8 gave Drop% 43.0 / 40.3 / 39.2 / 42.4, insertion AUC 0.702 / 0.699 / 0.696 / 0.669,
  deletion AUC 0.245 / 0.261 / 0.286 / 0.330, pointing game 0.53 / 0.47 / 0.40 / 0.28 and top-k IoU with the
  template 0.37 / 0.39 / 0.37 / 0.32. 2 is the coarsest mask that localises about as well as one cell per
  point while keeping the coarse mask the paper uses against artefacts (notebook 06 shows the sweep);
- λ1, λ2 keep the paper's values; the sums run over the low-resolution mask and are rescaled so that a shape
  costs what it costs on the paper's 28 × 28 grid: L1 × ``784 / cells`` (deleting everything costs
  ``784 λ1`` as in the paper), TV × ``(28 / cells per axis)^(d − 1)`` (a sharp boundary costs λ2 per
  boundary cell of the paper's grid; 1 for 1-D signals, 3.5 for 64 px tiles);
- blur σ and the maximal jitter are the paper's 10 px and 4 px times ``input size / 224`` (jitter at least
  1 sample or pixel).

Batches: every sample has its own mask, its own loss term (the batch loss is their sum, so each mask's
gradient and Adam state are its own) and its own blur and statistics. The random draws (jitter shift, noise)
are drawn once per step for the whole batch from a local generator seeded with ``seed``, so image ``i`` of a
batch sees exactly the random sequence it sees alone with the same seed: a batch gives each image's
single-image result.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from course_utils.core.checks import check_non_negative, check_positive_int, check_seed
from course_utils.core.filters import gaussian_blur
from course_utils.explainers.base import Explainer, progress_bar, register, upsample
from course_utils.explainers.mask_updates import Adam

_PAPER_SIZE = 224
_PAPER_SIDE = 28
_PAPER_CELLS = _PAPER_SIDE * _PAPER_SIDE
_PAPER_BLUR_SIGMA = 10.0
_PAPER_JITTER = 4
_GAMES = ("deletion", "preservation")
_REFERENCES = ("blur", "zero", "mean", "noise")
_SCORES = ("probability", "log_probability", "logit")
DEFAULT_MASK_SCALE = {1: 2, 2: 8}
"""``mask_scale=None``: input size / mask size per number of spatial axes (see the module docstring)."""


def total_variation(mask: torch.Tensor, beta: float = 3.0) -> torch.Tensor:
    """``TV_β(m) = Σ_u Σ_axes |m(u + e_axis) − m(u)|^β`` per sample (Fong & Vedaldi 2017, Eq. 4), ``(N,)``."""
    total = mask.new_zeros(mask.shape[0])
    for axis in range(2, mask.dim()):
        total = total + mask.diff(dim=axis).abs().pow(beta).flatten(1).sum(1)
    return total


def total_variation_gradient(mask: torch.Tensor, beta: float = 3.0) -> torch.Tensor:
    """``∂TV_β/∂m`` (Eq. 4), shaped like ``mask``: each difference ``d = m(u + e) − m(u)`` adds
    ``β |d|^(β−1) sign(d)`` at ``u + e`` and subtracts it at ``u`` (autograd's rule at ``d = 0``: zero)."""
    grad = torch.zeros_like(mask)
    for axis in range(2, mask.dim()):
        d = mask.diff(dim=axis)
        # |d|^(β−1) sign(d); copysign keeps 0 at d = 0 when β > 1, sign(d) is the β = 1 case
        step = d.sign_() if beta == 1 else d.abs().pow_(beta - 1).copysign_(d)
        n = mask.shape[axis]
        grad.narrow(axis, 1, n - 1).add_(step, alpha=beta)
        grad.narrow(axis, 0, n - 1).sub_(step, alpha=beta)
    return grad


def shift(x: torch.Tensor, offsets: Sequence[int]) -> torch.Tensor:
    """Translate ``x`` by ``offsets`` (one int per spatial axis), repeating the border samples (no wrap-around)."""
    margin = max(abs(o) for o in offsets)
    return window(pad_border(x, margin), offsets, margin) if margin else x


def pad_border(x: torch.Tensor, margin: int) -> torch.Tensor:
    """``x`` with ``margin`` copies of its border samples added on both sides of every spatial axis."""
    return nn.functional.pad(x, [margin] * (2 * (x.dim() - 2)), mode="replicate")


def window(padded: torch.Tensor, offsets: Sequence[int], margin: int) -> torch.Tensor:
    """The view of ``pad_border(x, margin)`` that is ``x`` translated by ``offsets`` (each ``|o| ≤ margin``):
    pad once, then every jitter step is a slice."""
    index = [slice(None), slice(None)]
    for axis, o in enumerate(offsets):
        size = padded.shape[2 + axis] - 2 * margin
        index.append(slice(margin - o, margin - o + size))
    return padded[tuple(index)]


class MaskUpsampling:
    """``m ↦ upsample(m)`` for low-resolution masks ``(N, 1, *cells)``, as one matrix per axis.

    Linear (bilinear) upsampling with ``align_corners=False`` acts on each axis separately and linearly, so along
    an axis it is a ``(cells, size)`` matrix whose row ``i`` is the upsampled unit mask ``e_i``. One (two in 2-D)
    small matrix product per step replaces the interpolation, in the forward pass and in the backward pass
    (:meth:`adjoint`). The matrices are built on first use for a dtype and device.
    """

    def __init__(self, cells: Sequence[int], size: Sequence[int]):
        self.cells, self.size = tuple(cells), tuple(size)
        self._matrices: dict[tuple, list[torch.Tensor]] = {}

    def matrices(self, like: torch.Tensor) -> list[torch.Tensor]:
        """One ``(cells, size)`` matrix per axis, in ``like``'s dtype and device."""
        key = (like.dtype, like.device)
        if key not in self._matrices:
            self._matrices[key] = [upsample(torch.eye(c, dtype=like.dtype, device=like.device)[:, None], (s,))[:, 0]
                                   for c, s in zip(self.cells, self.size)]
        return self._matrices[key]

    def __call__(self, mask: torch.Tensor) -> torch.Tensor:
        *rows, columns = self.matrices(mask)
        out = mask @ columns                          # along the last axis
        return rows[0].T @ out if rows else out       # and along the first one in 2-D

    def adjoint(self, grad: torch.Tensor) -> torch.Tensor:
        """The transposed map, summed over channels: the gradient w.r.t. the mask ``(N, 1, *cells)`` of
        ``⟨grad, self(mask)⟩`` for ``grad`` shaped ``(N, C, *size)`` (the mask is shared by channels)."""
        *rows, columns = self.matrices(grad)
        out = grad @ columns.T
        if rows:
            out = rows[0] @ out
        return out.sum(1, keepdim=True) if out.shape[1] > 1 else out


@register("meaningful_perturbation")
class MeaningfulPerturbation(Explainer):
    """Fong & Vedaldi (2017) mask optimisation (Eq. 3–5); ``attribute`` returns the saliency, broadcast over
    channels: ``1 − m`` for the deletion game (what had to be deleted), ``m`` for the preservation game (what
    had to be kept).

    Options: ``game`` ("deletion" | "preservation"), ``reference`` ("blur" | "zero" | "mean" = per-sample,
    per-channel mean | "noise" = x + N(0, (noise_level · std x)²), redrawn each step), ``iterations``, ``lr``
    (Adam), ``l1``/``tv`` (λ1, λ2 at the paper's 28 × 28 scale, see the module docstring), ``beta``, ``mask_scale``
    (None = 2 for signals, 8 for images),
    ``blur_sigma``/``jitter`` (None = the paper's values scaled to the input size), ``score``
    ("probability" = the paper's f_c | "log_probability" | "logit", see the module docstring), ``seed``,
    ``progress``.
    """

    reduction = "first"
    stochastic = True

    def __init__(self, model, game: str = "deletion", reference: str = "blur", iterations: int = 300,
                 lr: float = 0.1, l1: float = 1e-4, tv: float = 1e-2, beta: float = 3.0, mask_scale: int | None = None,
                 blur_sigma: float | None = None, jitter: int | None = None, noise_level: float = 0.5,
                 score: str = "probability", seed: int = 0, progress: bool = True):
        super().__init__(model, seed=check_seed(seed), progress=progress)
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, not {score!r}.")
        if game not in _GAMES:
            raise ValueError(f"game must be one of {_GAMES}, not {game!r}.")
        if reference not in _REFERENCES:
            raise ValueError(f"reference must be one of {_REFERENCES}, not {reference!r}.")
        if jitter is not None and (isinstance(jitter, bool) or not isinstance(jitter, int) or jitter < 0):
            raise ValueError(f"jitter must be None (scaled paper value) or an int ≥ 0, not {jitter!r}.")
        self.game, self.reference, self.score = game, reference, score
        self.iterations = check_positive_int("iterations", iterations)
        self.mask_scale = None if mask_scale is None else check_positive_int("mask_scale", mask_scale)
        self.lr = check_non_negative("lr", lr)
        self.l1, self.tv = check_non_negative("l1", l1), check_non_negative("tv", tv)
        if self.lr == 0:
            raise ValueError("lr must be > 0, e.g. the paper's 0.1.")
        self.beta = check_non_negative("beta", beta)
        if self.beta < 1:
            raise ValueError(f"beta must be ≥ 1 (the paper uses 3), not {beta!r}.")
        self.blur_sigma = None if blur_sigma is None else check_non_negative("blur_sigma", blur_sigma)
        self.jitter, self.noise_level = jitter, check_non_negative("noise_level", noise_level)

    # -- the paper's defaults scaled to the input -------------------------------------------------------------
    def mask_size(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """Low-resolution mask size: ``ceil(size / mask_scale)`` per axis (28 for 224 px, 8 for 64 px, 20 for
        40-point signals with the defaults)."""
        scale = self.mask_scale or DEFAULT_MASK_SCALE[len(spatial)]
        return tuple(max(1, math.ceil(s / scale)) for s in spatial)

    def scaled_blur_sigma(self, spatial: Sequence[int]) -> float:
        """``blur_sigma``, or the paper's σ = 10 px at 224 px times ``mean(size) / 224``."""
        if self.blur_sigma is not None:
            return self.blur_sigma
        return _PAPER_BLUR_SIGMA * (sum(spatial) / len(spatial)) / _PAPER_SIZE

    def scaled_jitter(self, spatial: Sequence[int]) -> int:
        """``jitter``, or the paper's 4 px at 224 px times ``mean(size) / 224`` (at least 1)."""
        if self.jitter is not None:
            return self.jitter
        return max(1, round(_PAPER_JITTER * (sum(spatial) / len(spatial)) / _PAPER_SIZE))

    @staticmethod
    def penalty_scales(mask_shape: Sequence[int]) -> tuple[float, float]:
        """Factors on λ1 and λ2 that make the penalties of a mask of ``mask_shape`` cells match the paper's.

        L1 measures the deleted (kept) area: ``784 / cells``, so deleting everything costs ``784 λ1`` at any
        resolution. TV of a sharp edge costs 1 per boundary cell and a boundary has ``(cells per axis)^(d−1)``
        cells: ``(28 / cells per axis)^(d−1)`` (1 for signals, 28/8 for 64 px tiles).
        """
        cells = math.prod(mask_shape)
        dims = len(mask_shape)
        return _PAPER_CELLS / cells, (_PAPER_SIDE / cells ** (1 / dims)) ** (dims - 1)

    def reference_for(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The perturbation target ``x̃`` (Sec. 4.1): blur, zero, per-sample channel mean, or noisy ``x``."""
        if self.reference == "blur":
            sigma = self.scaled_blur_sigma(x.shape[2:])
            return gaussian_blur(x, sigma, padding="reflect") if sigma > 0 else x
        if self.reference == "zero":
            return torch.zeros_like(x)
        if self.reference == "mean":
            return x.mean(dim=tuple(range(2, x.dim())), keepdim=True).expand_as(x)
        std = x.flatten(1).std(1).view(-1, *[1] * (x.dim() - 1))
        noise = torch.randn((1, *x.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)
        return x + self.noise_level * std * noise

    def objective(self, mask: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
        """Per-sample loss ``(N,)`` of Eq. 3–5 for the low-resolution ``mask`` and the target's score ``prob``
        (the probability, or the log-probability / logit with the ``score`` option).

        The optimisation follows its gradient: the score's by autograd through the model and
        :meth:`MaskUpsampling.adjoint` back to the mask, the penalties' written out (:meth:`penalty_gradient`).
        """
        l1_scale, tv_scale = self.penalty_scales(mask.shape[2:])
        area = (1 - mask) if self.game == "deletion" else mask
        l1 = area.flatten(1).sum(1)
        tv = total_variation(mask, self.beta)
        score = prob if self.game == "deletion" else -prob
        return l1_scale * self.l1 * l1 + tv_scale * self.tv * tv + score

    def penalty_gradient(self, mask: torch.Tensor) -> torch.Tensor:
        """Gradient of the L1 and TV terms of :meth:`objective` w.r.t. ``mask``: ``∓λ1`` per cell (the L1 area
        is ``1 − m`` or ``m``) plus λ2 times :func:`total_variation_gradient`, both at the paper's scale."""
        l1_scale, tv_scale = self.penalty_scales(mask.shape[2:])
        l1 = -self.l1 * l1_scale if self.game == "deletion" else self.l1 * l1_scale
        return total_variation_gradient(mask, self.beta).mul_(tv_scale * self.tv).add_(l1)

    def target_score(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The score ``f_c`` the games play on, ``(N,)``: softmax probability (the paper), log-probability or
        logit (``score=``, our deviation for saturated models)."""
        if self.score == "probability":
            return self.probs(x, target)
        out = self.model(x)
        if self.score == "log_probability":
            out = out.log_softmax(1)
        return out.gather(1, target[:, None]).squeeze(1)

    def _attribute(self, x, target):
        generator = torch.Generator(device=x.device).manual_seed(self.seed)
        spatial = x.shape[2:]
        jitter = self.scaled_jitter(spatial)
        mask = torch.ones((x.shape[0], 1, *self.mask_size(spatial)), dtype=x.dtype, device=x.device)
        optimiser = Adam(mask, lr=self.lr)
        upsampling = MaskUpsampling(mask.shape[2:], spatial)
        score_sign = torch.full((x.shape[0],), 1.0 if self.game == "deletion" else -1.0, dtype=x.dtype,
                                device=x.device)

        def padded_terms(reference):   # x̃ and x − x̃, padded once for all jitter shifts
            return pad_border(reference, jitter), pad_border(x - reference, jitter)

        fixed_terms = None if self.reference == "noise" else padded_terms(self.reference_for(x, generator))
        for _ in progress_bar(range(self.iterations), enabled=self.progress, desc="meaningful perturbation"):
            terms = padded_terms(self.reference_for(x, generator)) if fixed_terms is None else fixed_terms
            offsets = torch.randint(-jitter, jitter + 1, (len(spatial),), generator=generator,
                                    device=x.device).tolist()
            # Φ(x(· − τ); m) = x̃(· − τ) + upsample(m) ⊙ (x − x̃)(· − τ): the input and its reference shift, the
            # mask stays. Linear in the mask: autograd runs through the model only, the chain rule back to the
            # mask is the upsampling's adjoint
            shifted_reference, shifted_difference = (window(t, offsets, jitter) for t in terms)
            perturbed = torch.addcmul(shifted_reference, upsampling(mask), shifted_difference)
            perturbed.requires_grad_(True)
            (grad,) = torch.autograd.grad(self.target_score(perturbed, target), perturbed, grad_outputs=score_sign)
            grad = upsampling.adjoint(grad.mul_(shifted_difference))
            optimiser.step(grad.add_(self.penalty_gradient(mask)))
            mask.clamp_(0, 1)
        kept = upsample(mask, spatial)
        saliency = 1 - kept if self.game == "deletion" else kept
        return saliency.expand_as(x).clone()
