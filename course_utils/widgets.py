"""An interactive explanation explorer: pick a sample, a method, a target class and a layer; see the map.

In a notebook with a live front end, :func:`explore` shows ipywidgets controls and redraws on every change.
Without one (plain Python, or a headless run with ``COURSE_HEADLESS=1`` — nbval, ``make course``), it draws one
static figure instead: every method on the chosen sample.

The interactive view is an ``ipywidgets.Image`` whose value (PNG bytes) the control callbacks replace; it never
captures display output in an ``ipywidgets.Output``. Under papermill/nbclient an Output widget that receives
output makes the client answer with comm messages on the kernel's shell socket while it waits on that same
socket for the cell's reply, and now and then the reply's wake-up is lost: the kernel is idle and the run waits
for ever (or, with a per-cell timeout, for the whole timeout; jupyter/nbclient#312). A widget whose state the
kernel sets directly needs no such round trip (``tests/test_no_hang.py`` runs the explorer notebooks 20 times).
"""
from __future__ import annotations

import inspect
import io
import os
from collections.abc import Mapping, Sequence

import torch
from matplotlib.figure import Figure
from torch import nn

from course_utils.explainers import build, get
from course_utils.plotting import plot_attribution, plot_method_grid

HEADLESS_ENV = "COURSE_HEADLESS"
PREDICTED = "predicted class"
PNG_DPI = 100


def has_frontend() -> bool:
    """True inside a Jupyter kernel (ZMQ shell with comms) that is not a headless run (``COURSE_HEADLESS=1``)."""
    if os.environ.get(HEADLESS_ENV, "0") == "1":
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return type(shell).__name__ == "ZMQInteractiveShell" and getattr(shell, "kernel", None) is not None


def uses_layer(method: str) -> bool:
    """Whether the registered explainer ``method`` explains a chosen layer (takes ``layer=``)."""
    return "layer" in inspect.signature(get(method).__init__).parameters


def png_bytes(fig: Figure) -> bytes:
    """``fig`` rendered as PNG at ``PNG_DPI`` (its width in pixels: ``fig.get_figwidth() * PNG_DPI``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI)
    return buffer.getvalue()


def conv_layer_names(model: nn.Module) -> list[str]:
    """Dotted names of the model's convolution layers, first to last."""
    return [name for name, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]


def explanation(model: nn.Module, method: str, x: torch.Tensor, target=None, layer: str | None = None,
                options: Mapping[str, Mapping] | None = None) -> torch.Tensor:
    """``build(method, model, ...).explain(x, target)`` with ``layer`` (for layer-based methods) and ``options``."""
    kwargs = {"progress": False, **(options or {}).get(method, {})}
    if layer is not None and uses_layer(method):
        kwargs.setdefault("layer", layer)
    return build(method, model, **kwargs).explain(x, target)


class Explorer:
    """State and drawing of the explorer; :func:`explore` builds one and shows it."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, methods: Sequence[str],
                 class_names: Sequence[str], options: Mapping[str, Mapping] | None = None):
        if x.dim() not in (3, 4):
            raise ValueError(f"x must be a batch shaped (N, C, L) or (N, C, H, W), not {tuple(x.shape)}.")
        if not methods:
            raise ValueError("methods is empty; pass e.g. methods=['saliency', 'gradcam'].")
        for method in methods:
            get(method)
        self.model, self.x, self.y = model, x, y
        self.methods, self.class_names, self.options = list(methods), list(class_names), options or {}
        self.layers = conv_layer_names(model)
        with torch.no_grad():
            self.predicted = model(x).argmax(1)

    def title(self, index: int) -> str:
        truth = "" if self.y is None else f"true {self.class_names[int(self.y[index])]}, "
        return f"sample {index}: {truth}predicted {self.class_names[int(self.predicted[index])]}"

    def method_label(self, method: str, layer: str | None) -> str:
        """``method``, with the layer it explains for layer-based methods (``gradcam @ features.4``)."""
        if not uses_layer(method):
            return method
        return f"{method} @ {layer or self.layers[-1]}"

    def figure(self, index: int, method: str, target: int | None, layer: str | None) -> Figure:
        """One panel: ``method``'s map for sample ``index`` and class ``target`` (None = predicted).

        A bare :class:`~matplotlib.figure.Figure`, not registered with pyplot: nothing shows it by itself.
        """
        x = self.x[index:index + 1]
        target = int(self.predicted[index]) if target is None else target
        saliency = explanation(self.model, method, x, target, layer, self.options)
        fig = Figure(figsize=(4.6, 2.4) if x.dim() == 3 else (3.6, 3.2), layout="constrained")
        plot_attribution(x[0], saliency[0], ax=fig.add_subplot(), colorbar=True,
                         title=f"{self.method_label(method, layer)} for class {self.class_names[target]}\n"
                               f"{self.title(index)}")
        return fig

    def static_figure(self, index: int, layer: str | None):
        """Every method for sample ``index`` and its predicted class, side by side."""
        x = self.x[index:index + 1]
        maps = {self.method_label(m, layer): explanation(self.model, m, x, None, layer, self.options)
                for m in self.methods}
        fig = plot_method_grid(x, maps, row_titles=[self.title(index)])
        fig.suptitle("static view (open the notebook in Jupyter for the interactive explorer)", fontsize=9)
        return fig


def explore(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, methods: Sequence[str] = (
        "saliency", "gradient_x_input", "integrated_gradients", "cam", "gradcam", "gradcam++"),
            class_names: Sequence[str] | None = None, options: Mapping[str, Mapping] | None = None,
            index: int = 0, layer: str | None = None, interactive: bool | None = None):
    """Explore ``methods`` on the samples ``x`` (a small batch) of ``model``.

    ``options``: constructor options per method, e.g. ``{"smoothgrad": {"n_samples": 20}}``. ``layer``: the
    initial layer of layer-based methods (Grad-CAM; None = last convolution). ``interactive``: None = widgets
    when a front end is attached (:func:`has_frontend`), else the static figure. Returns the widget box (shown)
    or the static ``Figure``; end the cell with ``;``.
    """
    with torch.no_grad():
        n_classes = model(x[:1]).shape[1]
    class_names = list(class_names) if class_names is not None else [str(k) for k in range(n_classes)]
    if len(class_names) != n_classes:
        raise ValueError(f"class_names has {len(class_names)} names but the model has {n_classes} classes.")
    if not 0 <= index < len(x):
        raise ValueError(f"index={index} is outside the batch of {len(x)} samples.")
    state = Explorer(model, x, y, methods, class_names, options)
    if layer is not None and layer not in state.layers:
        raise ValueError(f"layer={layer!r} is not a convolution of the model; choose one of {state.layers}.")
    if not (has_frontend() if interactive is None else interactive):
        return state.static_figure(index, layer)
    return _widget(state, index, layer)


def _widget(state: Explorer, index: int, layer: str | None):
    """Controls, a status line and an ``Image`` that each change of a control redraws (see the module notes)."""
    import ipywidgets as w
    from IPython.display import display

    sample = w.IntSlider(value=index, min=0, max=len(state.x) - 1, description="sample")
    method = w.Dropdown(options=state.methods, value=state.methods[0], description="method")
    target = w.Dropdown(options=[(PREDICTED, -1)] + [(name, k) for k, name in enumerate(state.class_names)],
                        value=-1, description="target")
    layer_box = w.Dropdown(options=state.layers, value=layer or state.layers[-1], description="layer")
    status = w.Label(value="")
    image = w.Image(format="png")
    controls = (sample, method, target, layer_box)

    def redraw(_=None):
        layer_box.disabled = not uses_layer(method.value)
        status.value = f"computing {method.value} …"
        for control in controls:
            control.disabled = True
        try:
            fig = state.figure(sample.value, method.value, None if target.value < 0 else target.value,
                               layer_box.value)
            image.width = str(round(fig.get_figwidth() * PNG_DPI))  # pixel for pixel, not stretched
            image.value = png_bytes(fig)
            status.value = ""
        except Exception as error:  # show it where the student looks, then let the kernel report it
            status.value = f"{method.value} failed: {type(error).__name__}: {error}"
            raise
        finally:
            for control in (sample, method, target):
                control.disabled = False
            layer_box.disabled = not uses_layer(method.value)

    for control in controls:
        control.observe(redraw, names="value")
    box = w.VBox([w.HBox([sample, method]), w.HBox([target, layer_box]), status, image])
    redraw()
    display(box)
    return box
