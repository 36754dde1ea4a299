"""Consistent figures for the course: 1-D signal and 2-D image overlays, method grids, confusion matrices, the
comparison table's bar charts and the sanity check's randomisation curves.

One colormap for signed maps (:data:`SIGNED_CMAP`, diverging, centred on 0: red = evidence for the class, blue =
against) and one for non-negative maps (:data:`UNSIGNED_CMAP`, sequential; its greens and yellows stand out on
H&E-stained tissue), everywhere; signal curves get a white halo so they stay readable on any colour. Each map is scaled on
its own (signed: ±max|map|; non-negative: 0..max), since explanation maps have arbitrary units. Every function
returns a ``matplotlib.figure.Figure`` (or draws on the ``ax`` given) and never calls ``plt.show()``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
import torch
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from course_utils.metrics.classification import confusion_counts, per_class_accuracy
from course_utils.metrics.columns import BETTER, LOCALISATION, METRICS

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "viridis"
SIGNAL_COLOR = "black"


def to_numpy(a) -> np.ndarray:
    """A NumPy float array from a tensor (any device, with or without grad), array or list."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().float().numpy()
    return np.asarray(a, dtype=float)


def is_signed(saliency) -> bool:
    """True if the map has negative values (it is then drawn with :data:`SIGNED_CMAP`)."""
    return bool((to_numpy(saliency) < 0).any())


def map_style(saliency, signed: bool | None = None) -> tuple[str, Normalize]:
    """Colormap name and normalisation for one map: symmetric ±max|map| if signed, else 0..max."""
    m = to_numpy(saliency)
    signed = is_signed(m) if signed is None else signed
    top = float(np.abs(m).max()) if m.size else 0.0
    top = top if top > 0 else 1.0
    if signed:
        return SIGNED_CMAP, Normalize(-top, top)
    return UNSIGNED_CMAP, Normalize(0.0, top)


def _new_ax(ax: Axes | None, figsize) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _signal(x) -> np.ndarray:
    s = to_numpy(x)
    if s.ndim == 2 and s.shape[0] == 1:
        s = s[0]
    if s.ndim != 1:
        raise ValueError(f"a signal must be shaped (L,) or (1, L), not {s.shape}; pass one sample, e.g. x[0].")
    return s


def _image(x) -> np.ndarray:
    img = to_numpy(x)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img.transpose(1, 2, 0)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"an image must be shaped (C, H, W), (H, W, C) or (H, W), not {img.shape}.")
    return np.clip(img, 0.0, 1.0)


def plot_signal(x, saliency=None, ax: Axes | None = None, style: str = "background", title: str | None = None,
                signed: bool | None = None, colorbar: bool = False, alpha: float = 0.8) -> Figure:
    """A 1-D signal as a curve, with its saliency (same length, or coarser: it is stretched) behind or below it.

    ``style="background"`` colours the plot background column by column; ``style="strip"`` draws the map as a
    thin colour strip under the curve (an inset axis), leaving the curve on white.
    """
    if style not in ("background", "strip"):
        raise ValueError(f"style={style!r}: choose 'background' or 'strip'.")
    s = _signal(x)
    fig, ax = _new_ax(ax, (4, 2.2))
    ax.plot(np.arange(len(s)), s, color=SIGNAL_COLOR, lw=1.5, zorder=3,
            path_effects=[patheffects.withStroke(linewidth=3.5, foreground="white")])
    ax.set_xlim(-0.5, len(s) - 0.5)
    low, high = float(s.min()), float(s.max())
    pad = 0.1 * (high - low or 1.0)
    ax.set_ylim(low - pad, high + pad)
    if saliency is not None:
        m = to_numpy(saliency).reshape(-1)
        cmap, norm = map_style(m, signed)
        if style == "background":
            image = ax.imshow(m[None, :], cmap=cmap, norm=norm, aspect="auto", alpha=alpha, zorder=1,
                              extent=(-0.5, len(s) - 0.5, low - pad, high + pad), interpolation="nearest")
        else:
            strip = ax.inset_axes((0.0, -0.22, 1.0, 0.12))
            image = strip.imshow(m[None, :], cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
            strip.set_axis_off()
        if colorbar:
            fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    if title:
        ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return fig


def plot_image(x, saliency=None, ax: Axes | None = None, title: str | None = None, signed: bool | None = None,
               alpha: float = 0.55, colorbar: bool = False) -> Figure:
    """An image ((C, H, W) in [0, 1]) with a heatmap (any resolution, stretched with nearest) drawn over it."""
    img = _image(x)
    fig, ax = _new_ax(ax, (2.6, 2.6))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    if saliency is not None:
        m = to_numpy(saliency)
        if m.ndim != 2:
            raise ValueError(f"an image heatmap must be shaped (H, W), not {m.shape}; pass one map, e.g. maps[0].")
        cmap, norm = map_style(m, signed)
        h, w = img.shape[:2]
        image = ax.imshow(m, cmap=cmap, norm=norm, alpha=alpha, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                          interpolation="nearest")
        if colorbar:
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_attribution(x, saliency=None, ax: Axes | None = None, **options) -> Figure:
    """:func:`plot_signal` for a (1, L) / (L,) sample, :func:`plot_image` for a (C, H, W) one."""
    if to_numpy(x).ndim == 3:
        options.pop("style", None)
        return plot_image(x, saliency, ax=ax, **options)
    return plot_signal(x, saliency, ax=ax, **options)


def plot_method_grid(x, maps_by_method: Mapping[str, object], row_titles: Sequence[str] | None = None,
                     signed: bool | None = None, style: str = "background", show_input: bool | None = None,
                     cell_size: tuple[float, float] | None = None) -> Figure:
    """Rows = samples of ``x`` ((N, C, *spatial)), columns = methods (maps ``(N, *spatial)`` each).

    For images the first column shows the input alone (``show_input``; default on for images, off for signals,
    whose curve is drawn in every panel). ``row_titles`` label the rows (e.g. "true 3 / pred 3").
    """
    xs = to_numpy(x)
    if xs.ndim not in (3, 4):
        raise ValueError(f"x must be a batch shaped (N, C, L) or (N, C, H, W), not {xs.shape}; use x[:k].")
    if not maps_by_method:
        raise ValueError("maps_by_method is empty; pass e.g. {'Saliency': maps}.")
    images = xs.ndim == 4
    show_input = images if show_input is None else show_input
    names = list(maps_by_method)
    maps = {name: to_numpy(m) for name, m in maps_by_method.items()}
    for name, m in maps.items():
        if m.shape[0] != xs.shape[0]:
            raise ValueError(f"maps for {name!r} have {m.shape[0]} samples but x has {xs.shape[0]}.")
    n, cols = xs.shape[0], len(names) + int(show_input)
    w, h = cell_size or ((2.0, 2.0) if images else (3.0, 1.7))
    fig, axes = plt.subplots(n, cols, figsize=(w * cols, h * n), squeeze=False, layout="constrained")
    for i in range(n):
        if show_input:
            plot_attribution(xs[i], None, ax=axes[i, 0], title="input" if i == 0 else None)
        for j, name in enumerate(names, int(show_input)):
            plot_attribution(xs[i], maps[name][i], ax=axes[i, j], title=name if i == 0 else None, signed=signed,
                             **({} if images else {"style": style}))
        if row_titles is not None:
            if images:
                axes[i, 0].set_axis_on()
                axes[i, 0].set_xticks([])
                axes[i, 0].set_yticks([])
            axes[i, 0].set_ylabel(row_titles[i], fontsize=8)
    return fig


def plot_signal_grid(signals, titles: Sequence[str] | None = None, maps=None, ncols: int = 5,
                     cell_size: tuple[float, float] = (2.4, 1.6)) -> Figure:
    """Several 1-D signals ((N, 1, L) or (N, L)) as small curves in a grid, e.g. the ten MNIST-1D templates.

    ``maps`` ((N, L), optional): one map per signal, drawn behind its curve (e.g. the template positions).
    """
    s = to_numpy(signals)
    s = s.reshape(s.shape[0], -1)
    if maps is not None and len(maps) != len(s):
        raise ValueError(f"maps has {len(maps)} rows but there are {len(s)} signals; pass one map per signal.")
    rows = -(-len(s) // ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(cell_size[0] * ncols, cell_size[1] * rows), squeeze=False,
                             layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k < len(s):
            plot_signal(s[k], None if maps is None else maps[k], ax=ax,
                        title=None if titles is None else str(titles[k]))
        else:
            ax.set_axis_off()
    return fig


def plot_confusion_matrix(y_true, y_pred, class_names: Sequence[str], normalize: bool = True,
                          ax: Axes | None = None, title: str | None = None) -> Figure:
    """Confusion matrix (rows = true class); ``normalize`` shows each row as fractions of that class."""
    counts = confusion_counts(y_true, y_pred, len(class_names))
    values = counts / np.maximum(counts.sum(1, keepdims=True), 1) if normalize else counts
    size = 0.45 * len(class_names) + 1.5
    fig, ax = _new_ax(ax, (size + 0.8, size))
    sns.heatmap(values, ax=ax, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", vmin=0,
                vmax=1 if normalize else None, xticklabels=class_names, yticklabels=class_names, square=True,
                cbar=False, annot_kws={"fontsize": 7})
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.tick_params(labelsize=8)
    ax.set_title(title or ("confusion matrix (rows sum to 1)" if normalize else "confusion matrix"), fontsize=9)
    return fig


def plot_per_class_accuracy(y_true, y_pred, class_names: Sequence[str], ax: Axes | None = None,
                            title: str | None = None) -> Figure:
    """Bar chart of the accuracy of each class, with the overall accuracy as a dashed line."""
    acc = per_class_accuracy(y_true, y_pred, len(class_names))
    overall = float((to_numpy(y_true) == to_numpy(y_pred)).mean())
    fig, ax = _new_ax(ax, (0.55 * len(class_names) + 1.5, 2.6))
    ax.bar(np.arange(len(acc)), np.nan_to_num(acc), color=sns.color_palette("Blues", 3)[2])
    ax.axhline(overall, color="black", ls="--", lw=1, label=f"overall {overall:.1%}")
    ax.set_xticks(np.arange(len(acc)), class_names, rotation=45 if max(map(len, class_names)) > 3 else 0,
                  ha="right" if max(map(len, class_names)) > 3 else "center", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "accuracy per class", fontsize=9)
    return fig


def plot_evaluation(df: pd.DataFrame, title: str | None = None) -> Figure:
    """A seaborn bar chart per column of :func:`course_utils.evaluate.evaluate`'s table (methods on the y axis)."""
    missing = [c for c in ["method", *METRICS] if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks the columns {missing}; pass the DataFrame returned by evaluate().")
    columns = METRICS + [c for c in LOCALISATION if c in df.columns]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.0 * len(columns), max(2.4, 1.2 + 0.45 * len(df))),
                             sharey=True, squeeze=False)
    for ax, column in zip(axes[0], columns):
        sns.barplot(data=df, y="method", x=column, hue="method", legend=False, ax=ax)
        ax.set_title(f"{column} ({BETTER[column]} is better)", fontsize=9)
        if column == "seconds per sample":
            ax.set_xscale("log")
        ax.set_xlabel("")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_randomisation(df: pd.DataFrame, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Mean ± 95 % CI Spearman correlation per randomisation step (Adebayo 2018 Fig. 2 style) of
    :func:`course_utils.metrics.cascading_randomisation`'s table; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.7 * df["step"].nunique(), 3.2))
    order = df.drop_duplicates("step").sort_values("step")["layer"].tolist()
    sns.pointplot(data=df, x="layer", y="spearman", order=order, errorbar=("ci", 95), seed=0, ax=ax)
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("randomised down to layer (cascading, top first)")
    ax.set_ylabel("Spearman rank correlation")
    ax.tick_params(axis="x", rotation=45)
    if title:
        ax.set_title(title)
    return ax
