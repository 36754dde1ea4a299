"""Local surrogate models on an interpretable binary representation: LIME and KernelSHAP.

Both switch groups of input elements ("features": 1-D segments or 2-D superpixels) on and off, score the
target softmax probability of each perturbed input, and fit a weighted linear model ``g(z) = φ₀ + Σ_j φ_j z_j``
to the scores; every element of the input then gets its feature's coefficient.

* LIME (Ribeiro, Singh & Guestrin 2016, Eq. 1–2): uniformly random coalitions, the paper's exponential kernel
  ``π_x(z) = exp(−D(1, z)² / σ²)`` on the binary vectors (cosine distance, as the LIME package's image
  explainer), weighted ridge regression with an unpenalised intercept (``alpha=1``, the LIME package's Ridge).
  The ``lime`` package weights by ``sqrt(exp(−d² / w²)) = exp(−d² / (2w²))`` with ``w = 0.25`` for images: the
  paper's kernel at ``σ = w√2``. Our default ``σ = 0.25·√2 ≈ 0.354`` therefore gives the package's weights; the
  paper itself fixes no width.
* KernelSHAP (Lundberg & Lee 2017, Theorem 2): Shapley kernel ``π(z) = (M − 1) / (C(M, |z|) |z| (M − |z|))``,
  weighted least squares under the efficiency constraint ``Σ φ_j = f(x) − f(baseline)``. When the budget covers
  all ``2^M − 2`` proper coalitions they are enumerated and the result is the exact Shapley value.

Features: by default a regular grid, ``cells`` per axis (1-D: 10 segments, 4 points each for 40-point signals;
2-D: 8 × 8 square patches, 8 px each for 64-px tiles); ``segments=`` takes an integer label map shared by the
batch (``spatial`` shape) or one per sample (``(N, *spatial)``); samples with fewer labels than the batch
maximum get features without elements (null players, coefficient ≈ 0, never shown). SLIC superpixels are not
offered: scikit-image is not a dependency of the kit; pass its labels through ``segments=``. Switched-off
features take the ``baseline``: a number (default 0 = black), ``"mean"`` (each sample's per-channel mean) or a
tensor broadcastable to the input.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from course_utils.core.batching import auto_rows
from course_utils.core.checks import check_positive_int, check_seed
from course_utils.explainers.base import Explainer, progress_bar, register

DEFAULT_CELLS = {1: 10, 2: 8}
"""Grid cells per axis: 10 segments of 4 points for 40-point signals; 8 × 8 patches (8 px at 64 px)."""

PACKAGE_IMAGE_WIDTH = 0.25 * math.sqrt(2)
"""σ of ``exp(−D²/σ²)`` that gives the ``lime`` package's image-explainer weights ``sqrt(exp(−d²/0.25²))``."""


def grid_segments(size: tuple[int, ...], cells: int) -> torch.Tensor:
    """Integer label map of ``size`` ((L,) or (H, W)): ``cells`` contiguous segments / ``cells²`` patches."""
    ids = [torch.arange(s) * cells // s for s in size]
    if len(size) == 1:
        return ids[0]
    return ids[0][:, None] * cells + ids[1][None, :]


def _blocks(n_rows: int, n: int, rows: int) -> Iterator[tuple[slice, slice]]:
    """Blocks ``(coalitions, samples)`` of the ``n_rows × N`` perturbed inputs, at most ``rows`` per pass."""
    per_pass, samples_per_pass = max(1, rows // n), min(n, rows)
    for c0 in range(0, n_rows, per_pass):
        for i0 in range(0, n, samples_per_pass):
            yield slice(c0, min(c0 + per_pass, n_rows)), slice(i0, min(i0 + samples_per_pass, n))


class _Surrogate(Explainer):
    """Shared machinery: features, perturbed-input scoring, coefficient maps. Subclasses pick coalitions and fit."""

    reduction = "first"
    stochastic = True
    default_samples = 1000

    def __init__(self, model, n_samples: int | None = None, cells: int | None = None,
                 segments: torch.Tensor | None = None, baseline: float | str | torch.Tensor = 0.0,
                 seed: int = 0, batch_size: int | None = None, progress: bool = False):
        super().__init__(model, seed=check_seed(seed), progress=progress)
        check_positive_int("n_samples", n_samples, allow_none=True)
        check_positive_int("cells", cells, allow_none=True)
        check_positive_int("batch_size", batch_size, allow_none=True)
        if segments is not None and (not isinstance(segments, torch.Tensor) or segments.is_floating_point()
                                     or segments.dtype == torch.bool):
            raise ValueError("segments must be an integer tensor (a label map), e.g. torch.as_tensor(labels).long().")
        if isinstance(baseline, str) and baseline != "mean":
            raise ValueError(f"baseline must be a number, 'mean' or a tensor, not {baseline!r}.")
        if not isinstance(baseline, (str, torch.Tensor)) and (isinstance(baseline, bool)
                                                               or not isinstance(baseline, (int, float))):
            raise ValueError(f"baseline must be a number, 'mean' or a tensor, not {baseline!r}.")
        self.n_samples, self.cells, self.segments, self.baseline = n_samples, cells, segments, baseline
        self.batch_size = batch_size

    # -- features ---------------------------------------------------------------------------------------------
    def feature_labels(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """``(N, P)`` feature index of every element (``P`` = spatial size), numbered 0..M_n−1 per sample; and M."""
        n, size = x.shape[0], tuple(x.shape[2:])
        if self.segments is None:
            cells = min(self.cells or DEFAULT_CELLS[len(size)], min(size))
            labels = grid_segments(size, cells).flatten().to(x.device)
            return labels.expand(n, -1), cells ** len(size)
        seg = self.segments.to(x.device).long()
        if tuple(seg.shape) == size:
            seg = seg.expand((n,) + size)
        if tuple(seg.shape) != (n,) + size:
            raise ValueError(f"segments is shaped {tuple(self.segments.shape)}; pass one label map shaped {size} "
                             f"or one per sample shaped {(n,) + size}.")
        seg = seg.reshape(n, -1)
        span = int(seg.max() - seg.min()) + 1
        combined = torch.arange(n, device=x.device)[:, None] * span + (seg - seg.min())
        uniq, inverse = torch.unique(combined, return_inverse=True)
        counts = torch.bincount(uniq // span, minlength=n)
        starts = counts.cumsum(0) - counts
        return inverse - starts[:, None], int(counts.max())

    def baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        """The input each switched-off feature is replaced by, shaped like ``x``."""
        if isinstance(self.baseline, str):
            return x.mean(dim=tuple(range(2, x.dim())), keepdim=True).expand_as(x)
        base = torch.as_tensor(self.baseline, dtype=x.dtype, device=x.device)
        try:
            return base.expand_as(x)
        except RuntimeError:
            raise ValueError(f"baseline shaped {tuple(base.shape)} does not broadcast to the input "
                             f"{tuple(x.shape)}; pass a number or a tensor of a broadcastable shape.") from None

    def coalition_scores(self, x: torch.Tensor, target: torch.Tensor, labels: torch.Tensor,
                         z: torch.Tensor) -> torch.Tensor:
        """``(S, N)`` target probabilities with feature ``j`` of sample ``n`` kept where ``z[s, j] = 1``."""
        n = x.shape[0]
        base = self.baseline_for(x)
        rows = self.batch_size or auto_rows(x)
        scores = torch.empty(z.shape[0], n, device=x.device, dtype=x.dtype)
        z = z.to(device=x.device, dtype=x.dtype)
        spatial = (1,) + tuple(x.shape[2:])
        blocks = list(_blocks(z.shape[0], n, rows))
        with torch.no_grad():
            for cs, ss in progress_bar(blocks, enabled=self.progress, desc=self.name):
                gate = z[cs][:, labels[ss]].unflatten(2, spatial)
                batch = (base[ss] + gate * (x[ss] - base[ss])).flatten(0, 1)
                t = target[ss].repeat(gate.shape[0])
                scores[cs, ss] = self.probs(batch, t).view(gate.shape[0], -1)
        return scores

    def _attribute(self, x, target):
        labels, m = self.feature_labels(x)
        gen = torch.Generator().manual_seed(self.seed)
        coefs = self.fit(x, target, labels, m, gen)
        maps = coefs.to(x.dtype).gather(1, labels).view((x.shape[0], 1) + tuple(x.shape[2:]))
        return maps.expand_as(x).contiguous()

    def fit(self, x, target, labels, m, gen) -> torch.Tensor:
        """``(N, M)`` coefficients of the features; implemented by each method."""
        raise NotImplementedError


@register("lime")
class LIME(_Surrogate):
    """LIME (Ribeiro et al. 2016, Eq. 1–2) with all features kept (no K-LASSO selection).

    Options besides the shared ones (see :mod:`course_utils.explainers.surrogate`): ``n_samples`` (default
    1000, the LIME package's ``num_samples``; the first sample is the unperturbed input, as in the package),
    ``kernel_width`` σ of ``exp(−D² / σ²)`` (default ``0.25·√2``: the package's image explainer, whose width
    0.25 enters as ``sqrt(exp(−d² / 0.25²))``), ``distance`` ("cosine" or "euclidean" between the binary
    vectors and all-ones) and ridge ``alpha`` (default 1; 0 = plain weighted least squares).
    """

    def __init__(self, model, n_samples: int | None = None, kernel_width: float = PACKAGE_IMAGE_WIDTH,
                 distance: str = "cosine", alpha: float = 1.0, **options):
        super().__init__(model, n_samples=n_samples, **options)
        if isinstance(kernel_width, bool) or not isinstance(kernel_width, (int, float)) or kernel_width <= 0:
            raise ValueError(f"kernel_width must be a positive number, not {kernel_width!r}.")
        if distance not in ("cosine", "euclidean"):
            raise ValueError(f"distance must be 'cosine' or 'euclidean', not {distance!r}.")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha < 0:
            raise ValueError(f"alpha (ridge penalty) must be a number ≥ 0, not {alpha!r}.")
        self.kernel_width, self.distance, self.alpha = float(kernel_width), distance, float(alpha)

    def kernel(self, z: torch.Tensor) -> torch.Tensor:
        """``π_x(z) = exp(−D(1, z)² / σ²)`` for binary rows ``z`` (S, M) (Ribeiro et al. 2016, Sec. 3.3)."""
        m = z.shape[1]
        on = z.sum(1).double()
        if self.distance == "cosine":
            d = 1.0 - (on / m).sqrt()
        else:
            d = (m - on).sqrt()
        return torch.exp(-(d ** 2) / self.kernel_width ** 2)

    def samples(self, m: int, gen: torch.Generator) -> torch.Tensor:
        """``(S, M)`` binary samples, each feature on with probability 1/2; the first is all ones (the input)."""
        z = (torch.rand(self.n_samples or self.default_samples, m, generator=gen) < 0.5).float()
        z[0] = 1.0
        return z

    def fit(self, x, target, labels, m, gen):
        z = self.samples(m, gen)
        s = z.shape[0]
        y = self.coalition_scores(x, target, labels, z).double().cpu()
        design = torch.cat([torch.ones(s, 1), z], 1).double()
        root_w = self.kernel(z).sqrt()[:, None]
        penalty = math.sqrt(self.alpha) * torch.eye(m + 1, dtype=torch.float64)[1:]
        a = torch.cat([root_w * design, penalty])
        b = torch.cat([root_w * y, torch.zeros(m, y.shape[1], dtype=torch.float64)])
        coefs = torch.linalg.lstsq(a, b, driver="gelsd").solution
        return coefs[1:].T.to(x.device)


@register("kernelshap")
class KernelSHAP(_Surrogate):
    """KernelSHAP (Lundberg & Lee 2017, Theorem 2) under the efficiency constraint.

    ``n_samples`` (default ``2M + 2048``, the shap package's automatic budget) coalitions besides the empty and
    full ones. With ``n_samples ≥ 2^M − 2`` every proper coalition is used once with its Shapley-kernel weight
    (exact Shapley values); otherwise sizes are drawn in proportion to the kernel's total weight per size,
    members uniformly, each coalition paired with its complement, all with equal weight.
    """

    def coalitions(self, m: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Proper coalitions ``z`` (S, M) and their regression weights (S,)."""
        budget = self.n_samples or 2 * m + 2048
        if budget >= 2 ** m - 2:
            codes = torch.arange(1, 2 ** m - 1)
            z = ((codes[:, None] >> torch.arange(m)) & 1).float()
            k = z.sum(1).double()
            sizes = torch.tensor([math.comb(m, int(i)) for i in range(m + 1)], dtype=torch.float64)
            return z, (m - 1) / (sizes[k.long()] * k * (m - k))
        k = torch.arange(1, m, dtype=torch.float64)
        size_p = (m - 1) / (k * (m - k))
        half = max(1, budget // 2)
        draws = torch.multinomial(size_p / size_p.sum(), half, replacement=True, generator=gen) + 1
        ranks = torch.rand(half, m, generator=gen).argsort(1).argsort(1)
        z = (ranks < draws[:, None]).float()
        z = torch.cat([z, 1.0 - z])
        return z, torch.ones(z.shape[0], dtype=torch.float64)

    def fit(self, x, target, labels, m, gen):
        ends = torch.stack([torch.zeros(m), torch.ones(m)])
        if m == 1:
            y = self.coalition_scores(x, target, labels, ends).double()
            return (y[1] - y[0])[:, None]
        z, w = self.coalitions(m, gen)
        y = self.coalition_scores(x, target, labels, torch.cat([ends, z])).double().cpu()
        f_empty, f_full, y = y[0], y[1], y[2:]
        delta = f_full - f_empty
        z = z.double()
        root_w = w.sqrt()[:, None]
        a = root_w * (z[:, :-1] - z[:, -1:])
        b = root_w * (y - f_empty - z[:, -1:] * delta)
        phi = torch.linalg.lstsq(a, b, driver="gelsd").solution
        phi = torch.cat([phi, (delta - phi.sum(0))[None]])
        return phi.T.to(x.device)
