"""Adversarial evidence and colour bias, the two FGVis experiments (Wagner et al. 2019, CVPR, Sec. 3.3 and 4).

(a) Adversarial evidence. FGVis optimises a mask ``m`` so that the explanation ``e = x ⊙ m`` (irrelevant
values set to 0, black) keeps the class score; without a defense the optimiser can *create* evidence, driving
ReLU units above anything the original input produces. Its defense filters the gradients so that each ReLU
output of ``e`` stays within the one of ``x``. :func:`adversarial_evidence` measures, with and without the
defense, the fraction of ReLU units per sample with ``h(e) > max(0, h(x)) + tol`` (``h``: the output of every
``nn.ReLU`` of the model) and the target-class softmax score of ``e``.

(b) Colour bias on HMT (FGVis poster): the accuracy of a model when the RGB channels of its input are permuted
(all 6 orders, per class; :func:`channel_permutation_accuracy`), the share of correct classifications each
order maintains (:func:`maintained_classification_ratio`; both at once: :func:`colour_bias`), and the mean FGVis
mask per channel and class (:func:`mean_channel_mask`) as a first indication of which colours a class relies on.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import nn

from course_utils.core.checks import TargetLike, check_batch_size, check_input, check_model
from course_utils.core.model_state import hooks_removed, model_state_preserved
from course_utils.core.progress import progress_bar
from course_utils.explainers.base import Explainer, get
from course_utils.metrics.scoring import gather, model_outputs, resolve_target

CHANNELS = "RGB"


def _make_fgvis(explainer: str | Callable[..., Explainer], model: nn.Module, defense: bool, options: dict):
    if isinstance(explainer, str):
        return get(explainer)(model, defense=defense, **options)
    if callable(explainer) and not isinstance(explainer, Explainer):
        return explainer(model, defense=defense, **options)
    raise ValueError("explainer must be a registry name (default 'fgvis') or a class/factory called as "
                     "explainer(model, defense=..., **options).")


@torch.no_grad()
def relu_outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The outputs of every ``nn.ReLU`` of ``model`` on ``x``, flattened and concatenated: ``(N, units)``."""
    found = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not found:
        raise ValueError("the model has no nn.ReLU module; adversarial evidence is measured on ReLU outputs.")
    outputs = []
    with model_state_preserved(model), hooks_removed([]) as handles:
        for m in found:
            handles.append(m.register_forward_hook(lambda _m, _i, out: outputs.append(out.flatten(1))))
        model(x)
    return torch.cat(outputs, 1)


def excited_fraction(model: nn.Module, x: torch.Tensor, e: torch.Tensor, tol: float = 1e-6) -> torch.Tensor:
    """``(N,)`` fraction of ReLU units with ``h(e) > max(0, h(x)) + tol``."""
    hx, he = relu_outputs(model, x), relu_outputs(model, e)
    return (he > hx.clamp(min=0) + tol).float().mean(1)


def adversarial_evidence(model: nn.Module, x: torch.Tensor, target: TargetLike = None,
                         explainer: str | Callable[..., Explainer] = "fgvis", options: dict | None = None,
                         tol: float = 1e-6, batch_size: int = 256) -> pd.DataFrame:
    """Tidy DataFrame, one row per (defense, sample): ``excited_fraction``, ``score_original`` and
    ``score_explanation`` (target softmax probability of ``x`` and of ``e = x ⊙ mask``).

    ``explainer``: registry name (default ``"fgvis"``) or a class/factory called as
    ``explainer(model, defense=True|False, **options)`` whose ``attribute`` returns the FGVis evidence map
    shaped like x: the mask ``m`` itself, or ``1 − m`` when the explainer's ``game`` is ``"deletion"``.
    """
    model = check_model(model)
    x = check_input(x)
    batch_size = check_batch_size(batch_size)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0:
        raise ValueError(f"tol must be a non-negative number, not {tol!r}.")
    probs = model_outputs(model, x, batch_size)
    target = resolve_target(probs, target)
    rows = []
    for defense in (False, True):
        method = _make_fgvis(explainer, model, defense, dict(options or {}))
        evidence = method.attribute(x, target)
        if evidence.shape != x.shape:
            raise ValueError(f"the explainer returned a map shaped {tuple(evidence.shape)} for x "
                             f"{tuple(x.shape)}; it must return the FGVis mask shaped like x.")
        mask = 1 - evidence if getattr(method, "game", "preservation") == "deletion" else evidence
        e = x * mask
        fraction = excited_fraction(model, x, e, tol)
        score = gather(model_outputs(model, e, batch_size), target)
        rows += [{"defense": defense, "sample": i, "excited_fraction": f, "score_original": y, "score_explanation": s}
                 for i, (f, y, s) in enumerate(zip(fraction.tolist(), gather(probs, target).tolist(),
                                                   score.tolist()))]
    return pd.DataFrame(rows)


def _check_labelled(x: torch.Tensor, y, class_names: Sequence[str] | None) -> tuple[torch.Tensor, list[str]]:
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0] or y.is_floating_point():
        raise ValueError(f"y must be an integer tensor of {x.shape[0]} labels, one per sample of x.")
    if class_names is None:
        class_names = [str(c) for c in range(int(y.max()) + 1)]
    if int(y.min()) < 0 or int(y.max()) >= len(class_names):
        raise ValueError(f"labels run outside 0..{len(class_names) - 1}; pass class_names for every class.")
    return y.to(x.device).long(), list(class_names)


def _labelled_rgb(model, x, y, class_names, batch_size):
    """The checked arguments of the colour-bias measures: RGB images ``(N, 3, H, W)`` with one label each."""
    model, x, batch_size = check_model(model), check_input(x), check_batch_size(batch_size)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be RGB images shaped (N, 3, H, W), not {tuple(x.shape)}.")
    y, class_names = _check_labelled(x, y, class_names)
    return model, x, y, class_names, batch_size


def _correct_per_order(model, x, y, batch_size, progress) -> dict[str, torch.Tensor]:
    """Whether each sample is classified as its label with its channels in each of the 6 orders, by order."""
    orders = list(itertools.permutations(range(3)))
    return {"".join(CHANNELS[i] for i in order): model_outputs(model, x[:, list(order)], batch_size).argmax(1) == y
            for order in progress_bar(orders, enabled=progress, desc="channel orders")}


def _share(hit: torch.Tensor, where: torch.Tensor) -> float:
    """Percentage of the samples in ``where`` that are ``hit`` (NaN if ``where`` is empty)."""
    return 100 * (hit & where).sum().item() / where.sum().item() if where.any() else float("nan")


def _per_class(correct: dict[str, torch.Tensor], y: torch.Tensor, class_names, among: torch.Tensor) -> pd.DataFrame:
    """Per channel order (rows) and class (columns, then ``all``): the share of the samples in ``among`` that the
    order classifies correctly."""
    rates = {order: {**{name: _share(hit, among & (y == c)) for c, name in enumerate(class_names)},
                     "all": _share(hit, among)}
             for order, hit in correct.items()}
    return pd.DataFrame.from_dict(rates, orient="index", columns=[*class_names, "all"]).rename_axis("channel order")


def _accuracy(correct: dict[str, torch.Tensor], y: torch.Tensor, class_names) -> pd.DataFrame:
    return _per_class(correct, y, class_names, among=torch.ones_like(y, dtype=torch.bool))


def _maintained(correct: dict[str, torch.Tensor], y: torch.Tensor, class_names) -> pd.DataFrame:
    return _per_class(correct, y, class_names, among=correct["RGB"])


def channel_permutation_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                 class_names: Sequence[str] | None = None, batch_size: int = 256,
                                 progress: bool = False) -> pd.DataFrame:
    """Accuracy (%) per class and overall for the 6 orders of the RGB channels of ``x`` (``(N, 3, H, W)``).

    Rows are named by the order fed to the model: ``"BGR"`` puts the original blue channel into the red input.
    ``"RGB"`` is the unpermuted accuracy.
    """
    model, x, y, class_names, batch_size = _labelled_rgb(model, x, y, class_names, batch_size)
    return _accuracy(_correct_per_order(model, x, y, batch_size, progress), y, class_names)


def maintained_classification_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                    class_names: Sequence[str] | None = None,
                                    batch_size: int = 256, progress: bool = False) -> pd.DataFrame:
    """Per class and channel order: the share (%) of the tiles classified correctly with the original ``RGB``
    order that are still classified correctly with the channels permuted (Wagner et al. 2019, colour-bias
    experiment). Rows as :func:`channel_permutation_accuracy` (``RGB`` is 100 by definition); a class with no
    correctly classified tile gets NaN; the column ``all`` pools the classes."""
    model, x, y, class_names, batch_size = _labelled_rgb(model, x, y, class_names, batch_size)
    return _maintained(_correct_per_order(model, x, y, batch_size, progress), y, class_names)


def colour_bias(model: nn.Module, x: torch.Tensor, y: torch.Tensor, class_names: Sequence[str] | None = None,
                batch_size: int = 256, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`channel_permutation_accuracy` and :func:`maintained_classification_ratio` from one pass over
    ``x`` per channel order."""
    model, x, y, class_names, batch_size = _labelled_rgb(model, x, y, class_names, batch_size)
    correct = _correct_per_order(model, x, y, batch_size, progress)
    return _accuracy(correct, y, class_names), _maintained(correct, y, class_names)


def mean_channel_mask(masks: torch.Tensor, y: torch.Tensor, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean mask value per class (rows) and RGB channel (columns) of FGVis masks ``(N, 3, H, W)``."""
    if not isinstance(masks, torch.Tensor) or masks.dim() != 4 or masks.shape[1] != 3:
        raise ValueError("masks must be per-channel FGVis masks shaped (N, 3, H, W): use explainer.attribute(x).")
    y, class_names = _check_labelled(masks, y, class_names)
    per_sample = masks.detach().float().mean((2, 3))
    rows = {name: per_sample[y == c].mean(0).tolist() for c, name in enumerate(class_names) if (y == c).any()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(CHANNELS)).rename_axis("class")
