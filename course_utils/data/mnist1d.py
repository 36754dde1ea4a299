"""MNIST-1D: ten 1-D digit templates turned into 40-point signals.

Greydanus 2020, "Scaling down deep learning", arXiv:2011.14439.

:func:`make_mnist1d` re-implements the official generator (github.com/greydanus/mnist1d, ``make_dataset``):
each 12-point template is padded with zeros, dilated, scaled, translated, given correlated background noise
and iid noise, sheared and resampled to 40 points; the batch is shuffled and standardised. It draws its random
numbers from a local ``np.random.RandomState(seed)`` in the official order, so with the default arguments it
reproduces the official frozen ``mnist1d_data.pkl`` (4000 train / 1000 test) and never touches global RNG state.

Beyond the official keys it returns ground-truth ``positions``, (N, 40) bool. The template is tracked with the
generator's own mask: after padding, dilation, scaling and translation the template points are exactly the
non-zero ones (the only points the correlated background noise does not overwrite); the iid noise and the
shear ramp change every point and move nothing; output point j is a position when the final linear resampling
gives it a non-zero weight from a template point. That is the support of the signal generated with all noise
switched off. The positions use no random numbers, so the data stay identical to the official ones.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch.utils.data import Dataset

from course_utils.core.files import write_atomic
from course_utils.core.paths import data_home

DEFAULT_ARGS = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": (36, 60),
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}
MNIST1D_CLASSES = [str(digit) for digit in range(10)]
OFFICIAL_NAME = "mnist1d_data.pkl"
"""The official frozen set's file name (greydanus/mnist1d): read as it is when the data home holds it."""
CACHE_NAME = "mnist1d_course_utils.pkl"
"""The kit's own cache: the generated set with its template positions."""
_WRITTEN_BY = "course_utils.data.mnist1d"
_NEEDED = ("x", "y", "positions", "x_test", "y_test", "positions_test")
_SPLITS = ("train", "test")
_TEMPLATE_OFFSET = 1e-8   # added to every template point so that only the padding is exactly zero
_CORR_NOISE_SIGMA = 2.0   # width (in dilated samples) of the Gaussian filter that correlates the background noise

# The ten hand-drawn digit templates of the paper and the official generator, 12 points each, unstandardised.
_RAW_TEMPLATES = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])


def digit_templates() -> dict:
    """The ten templates as the official ``get_templates``: ``x`` (10, 12), ``t`` (12,), ``y`` (10,).

    Each row is standardised, shifted to start (and end) at 0 and divided by 6; ``t`` spans [-5/6, 5/6].
    """
    x = _RAW_TEMPLATES.copy()
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return {"x": x / 6.0, "t": np.linspace(-5, 5, x.shape[1]) / 6.0, "y": np.arange(10)}


def _resample(signals: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of each row onto ``length`` evenly spaced points spanning the same interval."""
    rows = np.atleast_2d(signals)
    old_grid, new_grid = np.linspace(0, 1, rows.shape[-1]), np.linspace(0, 1, length)
    resampled = np.stack([np.interp(new_grid, old_grid, row) for row in rows])
    return resampled.reshape(*signals.shape[:-1], length)


def _draw(rng: np.random.RandomState, count: int, args: dict) -> dict:
    """The random numbers of ``count`` signals, drawn in the official order (all of one signal, then the next).

    Per signal: padding length, scale factor, translation, correlated noise, iid noise, shear coefficient.
    """
    low, high = args["padding"]
    length = args["template_len"] + high
    names = ("padding", "scale", "shift", "corr_noise", "iid_noise", "shear")
    draws = {name: [] for name in names}
    for _ in range(count):
        draws["padding"].append(low + int(rng.rand() * (high - low + 1)))
        draws["scale"].append(1 + args["scale_coeff"] * (rng.rand() - 0.5))
        draws["shift"].append(rng.choice(args["max_translation"]))
        draws["corr_noise"].append(args["corr_noise_scale"] * rng.randn(length))
        draws["iid_noise"].append(args["iid_noise_scale"] * rng.randn(length))
        draws["shear"].append(args["shear_scale"] * (rng.rand() - 0.5))
    return {name: np.asarray(values) for name, values in draws.items()}


def _transform(templates: np.ndarray, labels: np.ndarray, draws: dict, args: dict) -> tuple[np.ndarray, np.ndarray]:
    """The signals (N, L) and their template positions (N, L) bool (Greydanus 2020).

    Each template is padded with zeros, dilated to ``template_len + padding[1]`` points, scaled and translated
    (circularly; with the default arguments the template never wraps round). The template mask is the
    generator's own: the template is then the only non-zero part (thanks to ``_TEMPLATE_OFFSET``) and the
    correlated noise fills everything else. The iid noise and the shear ramp are added everywhere and do not
    move the template. The final resampling to L points makes an output point a position when it takes a
    non-zero interpolation weight from the template.
    """
    low, high = args["padding"]
    length = args["template_len"] + high
    dilated = np.stack([_resample(np.pad(templates + _TEMPLATE_OFFSET, ((0, 0), (0, padding))), length)
                        for padding in range(low, high + 1)])
    signals = dilated[draws["padding"] - low, labels] * draws["scale"][:, None]
    signals = np.take_along_axis(signals, (np.arange(length) - draws["shift"][:, None]) % length, axis=1)
    on_template = signals != 0
    background = gaussian_filter1d(draws["corr_noise"], _CORR_NOISE_SIGMA, axis=-1)
    signals = np.where(on_template, signals, background) + draws["iid_noise"]
    signals = signals - draws["shear"][:, None] * np.linspace(-0.5, 0.5, length)
    positions = _resample(on_template.astype(float), args["final_seq_length"]) > 0
    return _resample(signals, args["final_seq_length"]), positions


def make_mnist1d(**overrides) -> dict:
    """Generate MNIST-1D (Greydanus 2020) with the official defaults ``DEFAULT_ARGS``, updated by ``overrides``.

    Returns the official keys ``x`` (N_train, L), ``y``, ``x_test``, ``y_test``, ``t`` (L,), ``templates``, plus
    ``positions`` and ``positions_test``: (N, L) bool masks, True where the output point takes any weight
    from the digit template rather than from the noise background (the support of the noise-free signal;
    see :func:`_transform`). L = ``final_seq_length`` (40). With ``shuffle_seq`` the positions are permuted
    with the signal.
    """
    unknown = sorted(set(overrides) - set(DEFAULT_ARGS))
    if unknown:
        raise ValueError(f"unknown MNIST-1D argument(s) {unknown}; valid ones: {sorted(DEFAULT_ARGS)}")
    args = {**DEFAULT_ARGS, **overrides}
    if args["num_samples"] < 10:
        raise ValueError(f"num_samples must be at least 10 (one signal per digit), got {args['num_samples']}")
    rng = np.random.RandomState(args["seed"])
    templates = digit_templates()
    labels = np.repeat(templates["y"], args["num_samples"] // len(templates["y"]))
    xs, positions = _transform(templates["x"], labels, _draw(rng, len(labels), args), args)

    order = rng.permutation(len(labels))
    xs, ys, positions = xs[order], labels[order], positions[order]
    if args["shuffle_seq"]:
        seq_order = rng.permutation(args["final_seq_length"])
        xs, positions = xs[..., seq_order], positions[..., seq_order]

    t = _resample(_resample(templates["t"], args["template_len"] + args["padding"][1]), args["final_seq_length"])
    t = t / xs.std()
    xs = (xs - xs.mean()) / xs.std()
    split = int(len(ys) * args["train_split"])
    return {"x": xs[:split], "x_test": xs[split:], "y": ys[:split], "y_test": ys[split:], "t": t,
            "templates": templates, "positions": positions[:split], "positions_test": positions[split:]}


class MNIST1DDataset(Dataset):
    """MNIST-1D signals as tensors: ``x`` (N, 1, L) float32, ``y`` (N,) int64, ``positions`` (N, L) bool."""

    classes = MNIST1D_CLASSES

    def __init__(self, x, y, positions):
        self.x = torch.as_tensor(np.asarray(x), dtype=torch.float32).reshape(len(x), 1, -1)
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
        self.positions = torch.as_tensor(np.asarray(positions), dtype=torch.bool)
        if not (len(self.x) == len(self.y) == len(self.positions)) or self.positions.shape != self.x[:, 0].shape:
            raise ValueError(f"x {tuple(self.x.shape)}, y {tuple(self.y.shape)} and positions "
                             f"{tuple(self.positions.shape)} must describe the same N signals of the same length")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


def _load_ours(path: Path) -> dict | None:
    """The dataset in ``path`` if it is a cache the kit wrote, else None."""
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
    except Exception:  # noqa: BLE001 -- whatever it is, it is not a cache the kit wrote
        return None
    ours = isinstance(data, dict) and data.get("written_by") == _WRITTEN_BY and all(k in data for k in _NEEDED)
    return data if ours else None


def _read_cache(path: Path) -> dict | None:
    """The kit's cached dataset, or None when there is none; a file the kit did not write raises."""
    if not path.exists():
        return None
    data = _load_ours(path)
    if data is None:
        raise ValueError(f"{path} is not an MNIST-1D cache written by course_utils (unreadable or other content), so "
                         f"it is left as it is. Delete it to have the kit regenerate it, or pass another root.")
    return data


def _kit_cache(folder: Path) -> dict:
    """The generated set with its positions from ``folder/CACHE_NAME``, generated and written once if missing."""
    path = folder / CACHE_NAME
    data = _read_cache(path)
    if data is None:
        data = {**make_mnist1d(), "written_by": _WRITTEN_BY}
        write_atomic(path, lambda handle: pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL),
                     ours=lambda existing: _load_ours(existing) is not None, what="MNIST-1D cache")
    return data


def _official(path: Path, generated: dict) -> dict:
    """The official frozen set read from ``path`` as it is, with the template positions of the generated set.

    The positions belong to these signals only if the file holds the default MNIST-1D set (same labels, signals
    equal to within 1e-6); anything else raises rather than pairing signals with positions of other signals.
    """
    fix = f"Move {path} out of the data folder (or pass another root) to use the kit's generated set."
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
        same = all(np.array_equal(data[key], generated[key]) for key in ("y", "y_test")) and all(
            np.asarray(data[key]).shape == generated[key].shape
            and np.allclose(data[key], generated[key], rtol=0, atol=1e-6) for key in ("x", "x_test"))
    except Exception as err:  # noqa: BLE001 -- any unreadable file gets the same advice
        raise ValueError(f"{path} could not be read as the official MNIST-1D set ({type(err).__name__}: {err}). "
                         f"{fix}") from None
    if not same:
        raise ValueError(f"{path} is not the official frozen MNIST-1D set (default arguments, seed 42): its "
                         f"signals differ from the generator's, so the template positions are unknown. {fix}")
    return {**data, "positions": generated["positions"], "positions_test": generated["positions_test"]}


def mnist1d(split: str = "train", root: str | os.PathLike | None = None) -> MNIST1DDataset:
    """The official MNIST-1D split (``"train"``: 4000 signals, ``"test"``: 1000) with template positions.

    ``root``: the data folder (default: the data home, :func:`course_utils.core.paths.data_home`). The set is
    generated once by :func:`make_mnist1d` and cached in ``root/mnist1d_course_utils.pkl`` (positions included).
    When ``root`` holds the official frozen ``mnist1d_data.pkl``, its signals are read from it as they are and
    nothing is written in ``root`` (it may be a shared, read-only folder): the positions come from the kit's cache
    in the data home.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    folder = data_home(root)
    if (folder / OFFICIAL_NAME).is_file():
        data = _official(folder / OFFICIAL_NAME, _kit_cache(data_home()))
    else:
        data = _kit_cache(folder)
    suffix = "" if split == "train" else "_test"
    return MNIST1DDataset(data["x" + suffix], data["y" + suffix], data["positions" + suffix])


@dataclass
class TwoDigitComposites:
    """Signals holding two digit templates: ``x`` (N, 1, L); ``y`` (N, 2), the left and the right digit's
    class; ``positions`` (N, 2, L) bool, where each template lies."""

    x: torch.Tensor
    y: torch.Tensor
    positions: torch.Tensor


def two_digit_composites(dataset: MNIST1DDataset, n: int, seed: int = 0, margin: int = 1) -> TwoDigitComposites:
    """``n`` composite signals for class discrimination (Wagner et al. 2019, Sec. 4): two signals of different
    classes, drawn with ``seed``, are rolled so that the first one's template starts ``margin`` points from the
    left end and the second one's ends ``margin`` points from the right end; the second template's points are
    then written over the first signal (whose background stays). Pairs whose templates would touch are
    skipped (with the default MNIST-1D settings a template spans 7–11 of 40 points, so few are).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, not {n!r}.")
    length = dataset.x.shape[-1]
    spans = [torch.nonzero(p).flatten() for p in dataset.positions]
    generator = torch.Generator().manual_seed(seed)
    xs, ys, positions = [], [], []
    for _ in range(100 * n):
        if len(xs) == n:
            break
        i, j = torch.randint(len(dataset), (2,), generator=generator).tolist()
        if dataset.y[i] == dataset.y[j] or len(spans[i]) == 0 or len(spans[j]) == 0:
            continue
        left = torch.roll(dataset.x[i, 0], margin - int(spans[i][0]))
        left_at = torch.roll(dataset.positions[i], margin - int(spans[i][0]))
        shift_right = length - 1 - margin - int(spans[j][-1])
        right = torch.roll(dataset.x[j, 0], shift_right)
        right_at = torch.roll(dataset.positions[j], shift_right)
        left_end = margin + int(spans[i][-1] - spans[i][0])
        right_start = length - 1 - margin - int(spans[j][-1] - spans[j][0])
        if right_start <= left_end + 1:   # the templates would touch
            continue
        xs.append(torch.where(right_at, right, left)[None])
        ys.append(torch.stack([dataset.y[i], dataset.y[j]]))
        positions.append(torch.stack([left_at, right_at]))
    if len(xs) < n:
        raise ValueError(f"found only {len(xs)} pairs with separate templates; ask for fewer than {n}.")
    return TwoDigitComposites(torch.stack(xs), torch.stack(ys), torch.stack(positions))
