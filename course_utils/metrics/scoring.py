"""Scoring a model for the metrics: target resolution and batched target-class softmax probabilities.

Every metric scores the softmax probability of the explained class (Chattopadhay 2018 Sec. 6.1; Petsiuk 2018
Sec. 4.1). The model is put in eval mode while it is scored and left in the mode it was found in.
"""
from __future__ import annotations

import torch
from torch import nn

from course_utils.core.checks import TargetLike, check_target
from course_utils.core.model_state import model_state_preserved


@torch.no_grad()
def model_outputs(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Softmax probabilities ``(N, K)`` of ``x`` scored in chunks of ``batch_size`` (model in eval mode)."""
    with model_state_preserved(model):
        return torch.cat([model(chunk).softmax(1) for chunk in x.split(batch_size)])


def clean_outputs(model: nn.Module, x: torch.Tensor, batch_size: int, probs: torch.Tensor | None) -> torch.Tensor:
    """The ``(N, K)`` softmax probabilities of ``x``: ``probs`` when the caller has them already (one forward pass
    over the clean inputs then serves several metrics), else :func:`model_outputs`."""
    if probs is None:
        return model_outputs(model, x, batch_size)
    if not isinstance(probs, torch.Tensor) or probs.dim() != 2 or probs.shape[0] != x.shape[0]:
        raise ValueError(f"probs must be the model's (N, K) softmax outputs on x, one row per sample of x "
                         f"(N = {x.shape[0]}); leave it None to compute them.")
    return probs


def resolve_target(probs: torch.Tensor, target: TargetLike) -> torch.Tensor:
    """``(N,)`` long targets for the ``(N, K)`` probabilities ``probs``; None → the predicted class."""
    if target is None:
        return probs.argmax(1)
    return check_target(target, *probs.shape, probs.device)


def gather(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``probs[i, target[i]]`` for each row, ``(N,)``."""
    return probs.gather(1, target[:, None]).squeeze(1)


def target_probability(model: nn.Module, x: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The softmax probability of ``target`` for each sample of ``x``, ``(N,)``."""
    return gather(model_outputs(model, x, batch_size), target)

