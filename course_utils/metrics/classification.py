"""How well a classifier does per class: the confusion matrix and the accuracy of each true class."""
from __future__ import annotations

import numpy as np
import torch


def _labels(y) -> np.ndarray:
    """Class labels (tensor, array or list) as a flat NumPy int array."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    return np.asarray(y).astype(int).ravel()


def confusion_counts(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts: row = true class, column = predicted class."""
    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels and y_pred {p.size}; pass one prediction per label.")
    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (t, p), 1)
    return counts


def per_class_accuracy(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Accuracy of each true class (NaN for a class without samples)."""
    counts = confusion_counts(y_true, y_pred, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(counts) / counts.sum(1)
