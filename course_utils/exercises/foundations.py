"""Exercises of notebooks 00–02: convolution arithmetic and confusion counts (nothing here needs a model)."""
from __future__ import annotations

import torch

from course_utils.exercises.cases import randint
from course_utils.exercises.spec import Case, Exercise, close


def conv_output_length(length, kernel_size, stride, padding):
    """Output length of ``Conv1d(kernel_size, stride, padding)``: ⌊(L + 2p − k) / s⌋ + 1."""
    return (length + 2 * padding - kernel_size) // stride + 1


def conv_output_length_cases(g):
    def draw(strided: bool, padded: bool, uneven: bool):
        while True:
            length, kernel = randint(g, 20, 90), randint(g, 2, 7)
            stride, padding = (randint(g, 2, 4) if strided else 1), (randint(g, 1, 3) if padded else 0)
            out = conv_output_length(length, kernel, stride, padding)
            if ((length + 2 * padding - kernel) % stride != 0) == uneven and out not in (0, 1, length):
                return length, kernel, stride, padding

    return [Case(draw(False, False, False), "stride 1, no padding"),
            Case(draw(True, True, True), "stride > 1 that does not divide evenly, with padding"),
            Case(draw(True, False, True), "stride > 1 that does not divide evenly, no padding"),
            Case(draw(True, True, False), "stride > 1 that divides evenly, with padding")]


CONV_OUTPUT_LENGTH = Exercise(
    "conv_output_length", 1, conv_output_length_cases, conv_output_length, check=close(what="your length"),
    description="⌊(L + 2p − k) / s⌋ + 1, as an int", forbidden=("torch.nn",))


def receptive_field(kernel_sizes, strides):
    """Receptive field of stacked 1-D convolutions: r = 1 + Σ_l (k_l − 1) Π_{j<l} s_j."""
    field, jump = 1, 1
    for k, s in zip(kernel_sizes, strides):
        field += (k - 1) * jump
        jump *= s
    return field


def receptive_field_cases(g):
    def stack(n, first_stride):
        kernels = [randint(g, 2, 7) for _ in range(n)]
        strides = [first_stride] + [randint(g, 1, 3) for _ in range(n - 1)]
        return kernels, strides

    return [Case(([5, 5, 5], [1, 2, 1]), "the ShallowCNN1D stack (5, 5, 5 with strides 1, 2, 1)"),
            Case(stack(2, 1), "two layers, stride 1 first"),
            Case(stack(3, 2), "three layers, stride 2 first"),
            Case(stack(4, 3), "four layers, stride 3 first")]


RECEPTIVE_FIELD = Exercise(
    "receptive_field", 1, receptive_field_cases, receptive_field, check=close(what="your receptive field"),
    description="1 + Σ_l (k_l − 1) · (product of the strides before layer l)",
    forbidden=("torch.nn", "torch.autograd"))


def confusion_counts(y_true, y_pred, n_classes):
    """``(n_classes, n_classes)`` int64 counts, row = true class, column = predicted class."""
    flat = torch.bincount(y_true.long() * n_classes + y_pred.long(), minlength=n_classes * n_classes)
    return flat.view(n_classes, n_classes)


def confusion_counts_cases(g):
    y = torch.randint(0, 8, (60,), generator=g)
    confused = torch.where(torch.rand(60, generator=g) < 0.3, (y + 1) % 8, y)
    rare = torch.randint(0, 3, (20,), generator=g)
    return [Case((y, torch.randint(0, 8, (60,), generator=g), 8), "random labels, 8 classes"),
            Case((y, confused, 8), "a classifier confusing each class with the next one (not symmetric)"),
            Case((rare, torch.randint(0, 3, (20,), generator=g), 5), "5 classes, of which only 0–2 occur")]


CONFUSION_COUNTS = Exercise(
    "confusion_counts", 1, confusion_counts_cases, confusion_counts,
    check=close(what="your counts", terms="(n_classes, n_classes)"),
    description="row = true class, column = predicted class, integer counts",
    forbidden=("course_utils.plotting", "course_utils.metrics", "sklearn"))
