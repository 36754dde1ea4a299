"""Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps", Sec. 3.1).

Starting from the classifier and going down, the weights of one more parameterised layer are re-drawn at each
step, on a deep copy of the model (the user's model is never modified). The explainer's maps on the
randomised copy are compared with those of the trained model by the Spearman rank correlation per sample
(average ranks for ties), and optionally by SSIM (see :mod:`.similarity`). A method that depends on the
model keeps falling towards 0; a method whose map does not change (e.g. an edge detector of the input) stays
at 1 — it fails the check.

Re-drawing: each weight and bias is drawn from PyTorch's default initialisation distribution for conv and
linear layers, ``U(-1/√fan_in, 1/√fan_in)``, from a local generator seeded by ``seed``.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from course_utils.core.checks import TargetLike, check_input, check_model
from course_utils.core.progress import progress_bar
from course_utils.explainers.base import Explainer, get
from course_utils.metrics.scoring import model_outputs, resolve_target
from course_utils.metrics.similarity import min_max, spearman, ssim

ExplainerLike = str | type | Callable[[nn.Module], Explainer]


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of the modules that hold parameters directly, from the top (output) of the model down."""
    names = [name for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    return names[::-1]


def make_explainer(explainer: ExplainerLike, model: nn.Module, options: dict) -> Explainer:
    """An explainer bound to ``model``: from a registry name or class (with ``options``) or a factory."""
    if isinstance(explainer, str):
        return get(explainer)(model, **options)
    if isinstance(explainer, type) and issubclass(explainer, Explainer):
        return explainer(model, **options)
    if callable(explainer) and not isinstance(explainer, Explainer):
        if options:
            raise ValueError("options= only applies to a registry name or an Explainer class; "
                             "bind them inside your factory instead.")
        return explainer(model)
    raise ValueError("explainer must be a registry name, an Explainer class or a function model → explainer "
                     "(an explainer instance is bound to one model and cannot be re-bound).")


@torch.no_grad()
def randomise_layer(module: nn.Module, generator: torch.Generator) -> None:
    """Re-draw ``module``'s own parameters from ``U(-1/√fan_in, 1/√fan_in)`` (PyTorch's default init range)."""
    weight = getattr(module, "weight", None)
    fan_in = weight[0].numel() if weight is not None and weight.dim() > 1 else None
    for p in module.parameters(recurse=False):
        bound = 1 / math.sqrt(fan_in if fan_in else p.numel())
        draw = torch.rand(p.shape, generator=generator, dtype=p.dtype) * 2 * bound - bound
        p.copy_(draw.to(p.device))


def cascading_randomisation(model: nn.Module, explainer: ExplainerLike, x: torch.Tensor,
                            target: TargetLike = None, options: dict | None = None, layers: list[str] | None = None,
                            absolute: bool = False, with_ssim: bool = False, seed: int = 0,
                            progress: bool = True) -> pd.DataFrame:
    """Tidy DataFrame: one row per (step, sample) with ``step`` (0 = trained), ``layer`` (the last layer
    randomised, ``"original"`` at step 0), ``sample`` and ``spearman`` vs the trained model's maps.

    ``target`` is resolved once on the trained model (None = its prediction) and kept for every step, as in
    Adebayo 2018. ``layers``: names to randomise, top first (default :func:`parameter_layers`).
    ``absolute=True`` compares ``|map|`` (Adebayo's "absolute value" variant). ``with_ssim=True`` adds an
    ``ssim`` column (maps min-max normalised to [0, 1] per sample first, as Adebayo 2018 Sec. 3).
    """
    model = check_model(model)
    x = check_input(x)
    options = dict(options or {})
    layers = parameter_layers(model) if layers is None else list(layers)
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown or not layers:
        raise ValueError(f"layers {unknown or layers} are not parameterised modules of the model; "
                         f"choose from {parameter_layers(model)}.")
    generator = torch.Generator().manual_seed(seed)
    work = copy.deepcopy(model)
    reference = make_explainer(explainer, work, options)
    target = resolve_target(model_outputs(work, x, x.shape[0]), target)
    trained = reference.explain(x, target)
    if absolute:
        trained = trained.abs()
    rows = []
    steps = [("original", None), *[(name, name) for name in layers]]
    for step, (label, name) in enumerate(progress_bar(steps, enabled=progress, desc="randomising layers")):
        if name is not None:
            randomise_layer(dict(work.named_modules())[name], generator)
        maps = make_explainer(explainer, work, options).explain(x, target)
        maps = maps.abs() if absolute else maps
        scores = {"spearman": spearman(trained, maps)}
        if with_ssim:
            scores["ssim"] = ssim(min_max(trained), min_max(maps))
        rows += [{"step": step, "layer": label, "sample": i, **{k: v[i] for k, v in scores.items()}}
                 for i in range(x.shape[0])]
    return pd.DataFrame(rows)
