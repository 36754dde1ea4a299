"""The project's comparison table: every explainer scored by the same faithfulness metrics on a test set.

Columns: Drop % and Increase % (Chattopadhay 2018 Sec. 6.1, project definition in
:mod:`course_utils.metrics.drop_increase`), insertion and deletion AUC (Petsiuk 2018 Sec. 4.1) and the
explainer's seconds per sample; for a dataset with ground-truth ``positions`` (MNIST-1D) also the localisation
scores of :mod:`course_utils.metrics.localisation`. Every method explains the class the model predicts on the
original input. The ``random`` explainer (uniform random maps) is the baseline a method must beat.

Command line (writes ``<out>/<dataset>_evaluation.csv`` and ``.png``)::

    python -m course_utils.evaluate mnist1d --methods saliency gradcam --out results/ [--n N] [--keep K]
    python -m course_utils.evaluate hmt --out results/ --cluster local:4      # or --scheduler tcp://host:8786

Without ``--n``, fast methods run on the full test set (MNIST-1D 1000 signals, HMT 496 tiles) and the
optimisation methods (:data:`OPTIMISATION_METHODS`) on the first :data:`OPTIMISATION_SUBSET` samples of the
same seeded order, so the CPU run stays within minutes; the ``n`` column of the table says how many each used.
With ``--scheduler``/``--cluster`` the work is split into (method × ``--batch-size`` samples) Dask tasks
(:mod:`course_utils.cluster`); the table is the same, bit for bit on the CPU, except the seconds.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import pkgutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from course_utils.core.checks import check_batch_size, check_input, check_model
from course_utils.core.progress import progress_bar
from course_utils.explainers import base
from course_utils.explainers.base import Explainer
from course_utils.metrics.bootstrap import bootstrap_interval
from course_utils.metrics.columns import LOCALISATION, METRICS
from course_utils.metrics.drop_increase import check_keep, default_keep, drop_increase
from course_utils.metrics.insertion_deletion import deletion, insertion
from course_utils.metrics.localisation import energy_inside, iou_top_k, pointing_game
from course_utils.metrics.scoring import clean_outputs, model_outputs
from course_utils.plotting import plot_evaluation

OPTIMISATION_METHODS = ("meaningful_perturbation", "fgvis", "iterative_saliency")
OPTIMISATION_SUBSET = {"mnist1d": 100, "hmt": 32}
"""Samples used for the optimisation methods by the command line when ``--n`` is not given (CPU budget)."""

MethodLike = str | tuple[str, Explainer] | tuple[str, torch.Tensor]


def load_explainers() -> list[str]:
    """Import every module of :mod:`course_utils.explainers` (each registers its methods); the names."""
    import course_utils.explainers as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return base.available()


def build_explainer(name: str, model: nn.Module, seed: int) -> Explainer:
    """The registered explainer ``name`` on ``model``, seeded with ``seed``, without progress bars."""
    if name not in base.available():
        load_explainers()
    return base.build(name, model, seed=seed, progress=False)


def _methods(methods, model: nn.Module, seed: int) -> list[tuple[str, Explainer | torch.Tensor]]:
    if isinstance(methods, (str, tuple)) or not isinstance(methods, Sequence) or not methods:
        raise ValueError("methods must be a non-empty list of registry names, (name, explainer) or (name, maps) "
                         "pairs, e.g. ['saliency', 'gradcam'].")
    out = []
    for method in methods:
        if isinstance(method, str):
            out.append((method, build_explainer(method, model, seed)))
        elif (isinstance(method, tuple) and len(method) == 2 and isinstance(method[0], str)
              and isinstance(method[1], (Explainer, torch.Tensor))):
            out.append(method)
        else:
            raise ValueError(f"method {method!r} is neither a registry name nor a (name, explainer) or "
                             "(name, maps) pair.")
    return out


def subset_indices(total: int, n: int | None, seed: int) -> torch.Tensor:
    """All indices (``n`` None or ≥ total), else the first ``n`` of a permutation drawn from ``seed``, sorted."""
    if n is None or n >= total:
        return torch.arange(total)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (or None for the whole dataset), not {n!r}.")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:n].sort().values


def _inputs(dataset) -> torch.Tensor:
    x = dataset if isinstance(dataset, torch.Tensor) else getattr(dataset, "x", None)
    if x is None:
        raise ValueError("dataset must be a tensor of inputs or have an .x tensor (course_utils.data.mnist1d/hmt).")
    return check_input(x)


def _truth(dataset, x: torch.Tensor) -> torch.Tensor | None:
    """The dataset's ground-truth ``positions`` (N, *spatial) bool, or None when it has none."""
    truth = getattr(dataset, "positions", None)
    if truth is None:
        return None
    if not isinstance(truth, torch.Tensor) or truth.dtype != torch.bool or truth.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"dataset.positions must be a bool tensor shaped {(x.shape[0], *x.shape[2:])} (one "
                         "ground-truth mask per sample), as course_utils.data.mnist1d gives it.")
    return truth


def _explain(explainer: Explainer, x: torch.Tensor, target: torch.Tensor, batch_size: int, progress: bool,
             name: str) -> tuple[torch.Tensor, float]:
    chunks = list(zip(x.split(batch_size), target.split(batch_size)))
    start = time.perf_counter()
    maps = [explainer.explain(xb, tb) for xb, tb in progress_bar(chunks, enabled=progress, desc=name)]
    return torch.cat(maps), time.perf_counter() - start


def per_sample_scores(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: torch.Tensor,
                      keep: float | None = None, step: int | None = None, batch_size: int = 64,
                      truth: torch.Tensor | None = None, probs: torch.Tensor | None = None,
                      progress: bool = False) -> dict[str, torch.Tensor]:
    """``{column: (N,) scores}`` behind a table row, in the table's units: Drop% and Increase% (0 or 100) per
    sample, each sample's insertion and deletion AUC and, with ground truth ``truth``, the :data:`LOCALISATION`
    scores; each column's mean is the table's entry.

    ``probs``: the model's softmax outputs on ``x`` when already computed (:func:`evaluate` computes them once for
    all its rows). Every computation runs in batches of ``batch_size`` samples or sample by sample, so a slice of
    samples that starts at a multiple of ``batch_size`` gets exactly the values it gets inside the whole set: the
    cluster path (:func:`_chunk_task`) relies on it.
    """
    keep = default_keep(x) if keep is None else check_keep(keep)
    probs = clean_outputs(model, x, batch_size, probs)
    scores = drop_increase(model, x, maps, target, keep=keep, batch_size=batch_size, probs=probs)
    curves = {name: curve(model, x, maps, target, step=step, batch_size=batch_size, progress=progress, probs=probs)
              for name, curve in (("insertion AUC", insertion), ("deletion AUC", deletion))}
    out = {"Drop%": 100.0 * scores.drop_per_sample.double(), "Increase%": 100.0 * scores.increased.double(),
           **{name: c.auc for name, c in curves.items()}}
    if truth is not None:
        out.update({"pointing game": pointing_game(maps, truth).double(), "energy inside": energy_inside(maps, truth),
                    "IoU top-k": iou_top_k(maps, truth)})
    return out


def _score(p: _Prepared, name: str, method: Explainer | torch.Tensor, rows: slice,
           progress: bool) -> tuple[dict[str, torch.Tensor], float]:
    """One method's per-sample scores on samples ``rows`` of ``p`` and its explaining seconds (NaN for maps
    passed in)."""
    x, target = p.x[rows], p.target[rows]
    if isinstance(method, Explainer):
        maps, seconds = _explain(method, x, target, p.batch_size, progress, name)
    elif method.shape[0] != p.total:
        raise ValueError(f"the maps of {name!r} are {tuple(method.shape)}: pass one map per sample of the dataset "
                         f"({p.total} samples, before any subset n).")
    else:
        maps, seconds = method[p.subset][rows].to(x.device), float("nan")
    truth = None if p.truth is None else p.truth[rows]
    return per_sample_scores(p.model, x, maps, target, p.keep, p.step, p.batch_size, truth, p.probs[rows],
                             progress), seconds


def _row(name: str, parts: Sequence[tuple[dict, float]]) -> tuple[dict, dict[str, torch.Tensor]]:
    """The table row of one method, and its per-sample scores, from its (scores, seconds) parts (one, or one per
    chunk in sample order)."""
    scores = {column: torch.cat([p[column] for p, _ in parts]) for column in parts[0][0]}
    n = scores["Drop%"].shape[0]
    row = {"method": name, "n": n, **{column: values.mean().item() for column, values in scores.items()},
           "seconds per sample": sum(seconds for _, seconds in parts) / n}
    return row, scores


@dataclass(frozen=True)
class _Prepared:
    """What every method of one evaluate() call shares: the model, the subset's inputs, targets and truth."""

    model: nn.Module
    total: int
    subset: torch.Tensor
    x: torch.Tensor
    probs: torch.Tensor
    target: torch.Tensor
    truth: torch.Tensor | None
    keep: float
    step: int | None
    batch_size: int
    seed: int


def _prepare(model, dataset, keep, n, batch_size, seed, step) -> _Prepared:
    model = check_model(model)
    batch_size = check_batch_size(batch_size)
    x = _inputs(dataset)
    total = x.shape[0]
    keep = default_keep(x) if keep is None else check_keep(keep)
    device = next(iter([*model.parameters(), *model.buffers()]), x).device
    subset = subset_indices(total, n, seed)
    truth = _truth(dataset, x)
    x = x[subset].to(device)
    truth = None if truth is None else truth[subset].to(device)
    probs = model_outputs(model, x, batch_size)
    return _Prepared(model, total, subset, x, probs, probs.argmax(1), truth, keep, step, batch_size, seed)


def _chunk_task(job: tuple[int, str, int, int], prepared: Sequence[_Prepared]) -> tuple[dict, float]:
    """Cluster task: method ``name`` on samples ``start:stop`` of evaluation ``which`` (its own model copy, so
    that tasks sharing a worker never share hooks or modes)."""
    which, name, start, stop = job
    p = dataclasses.replace(prepared[which], model=copy.deepcopy(prepared[which].model))
    return _score(p, name, build_explainer(name, p.model, p.seed), slice(start, stop), progress=False)


def _table(rows: list[tuple[dict, dict]], located: bool,
           with_scores: bool) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, dict[str, torch.Tensor]]]:
    columns = ["method", "n", *METRICS, *(LOCALISATION if located else [])]
    table = pd.DataFrame([row for row, _ in rows], columns=columns)
    return (table, {row["method"]: scores for row, scores in rows}) if with_scores else table


def _evaluate_on_cluster(client, runs: Sequence[tuple[_Prepared, Sequence[str]]], progress: bool,
                         with_scores: bool = False) -> list:
    """Tables of several evaluations, their (method × chunk of ``batch_size`` samples) tasks all on ``client``."""
    from course_utils.cluster import run_tasks

    jobs = [(which, name, start, min(start + p.batch_size, p.x.shape[0]))
            for which, (p, names) in enumerate(runs) for name in names
            for start in range(0, p.x.shape[0], p.batch_size)]
    parts = run_tasks(client, _chunk_task, jobs, shared={"prepared": [p for p, _ in runs]}, progress=progress,
                      desc="evaluation tasks")
    tables = []
    for which, (p, names) in enumerate(runs):
        rows = [_row(name, [part for job, part in zip(jobs, parts) if job[:2] == (which, name)])
                for name in names]
        tables.append(_table(rows, p.truth is not None, with_scores))
    return tables


def _names(methods) -> list[str]:
    if isinstance(methods, (str, tuple)) or not isinstance(methods, Sequence) or not methods:
        raise ValueError("methods must be a non-empty list of registry names, e.g. ['saliency', 'gradcam'].")
    bad = [m for m in methods if not isinstance(m, str)]
    if bad:
        raise ValueError(f"on a cluster, methods must be registry names (each worker builds its own explainer), "
                         f"not {bad[0]!r}.")
    for name in methods:
        if name not in base.available():
            load_explainers()
        base.get(name)
    return list(methods)


def evaluate(model: nn.Module, dataset, methods: Sequence[MethodLike], keep: float | None = None,
             n: int | None = None, batch_size: int = 64, seed: int = 0, progress: bool = True,
             out: str | Path | None = None, step: int | None = None, client=None, return_scores: bool = False):
    """One row per method: ``method``, ``n``, :data:`METRICS` (and :data:`LOCALISATION` when ``dataset`` has
    ``.positions``); written to the CSV file ``out`` if given. With ``return_scores``, the pair ``(table,
    {method: {column: (N,) per-sample scores}})`` (:func:`per_sample_scores`, e.g. for :func:`interval_table`).

    ``methods``: registry names, ``(name, explainer)`` pairs, or ``(name, maps)`` pairs of maps already computed,
    ``(len(dataset), *spatial)`` for the class the model predicts (their ``seconds per sample`` is NaN).
    ``dataset``: an object with ``.x`` (e.g. ``course_utils.data.mnist1d("test")``) or an input tensor.
    ``keep``: Drop/Increase keep fraction (None = 0.3 for 1-D signals, 0.9 for images). ``n``: a seeded random
    subset of that many samples (None = all). ``batch_size``: samples per explainer call and per scoring
    chunk. ``step``: positions per insertion/deletion step (None = 1 for 1-D, one image row for images).
    ``seed`` picks the subset and is passed to seeded methods. ``client``: a ``dask.distributed`` client
    (:func:`course_utils.cluster.connect`) to run (method × ``batch_size`` samples) tasks on its cluster;
    ``methods`` are then registry names, and the table equals the one computed here except for the seconds.
    """
    prepared = _prepare(model, dataset, keep, n, batch_size, seed, step)
    if client is not None:
        result = _evaluate_on_cluster(client, [(prepared, _names(methods))], progress, return_scores)[0]
    else:
        everything = slice(None)
        rows = [_row(name, [_score(prepared, name, method, everything, progress)])
                for name, method in progress_bar(_methods(methods, prepared.model, seed), enabled=progress,
                                                 desc="methods")]
        result = _table(rows, prepared.truth is not None, return_scores)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        (result[0] if return_scores else result).to_csv(out, index=False)
    return result


def interval_table(scores_by_method, confidence: float = 0.95, n_resamples: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """Each method's mean and percentile bootstrap interval per metric, from ``{label: {metric: (N,) scores}}``.

    The columns are a two-level index, ``(metric, "mean" | "low" | "high")``; every column is resampled with the
    same ``seed`` (:func:`course_utils.metrics.bootstrap_interval`).
    """
    rows = {label: {(metric, part): value for metric, values in scores.items()
                    for part, value in bootstrap_interval(values, confidence, n_resamples, seed)._asdict().items()}
            for label, scores in scores_by_method.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def metric_intervals(model: nn.Module, x: torch.Tensor, maps_by_method, target: torch.Tensor,
                     keep: float | None = None, step: int | None = None, confidence: float = 0.95,
                     n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """:func:`interval_table` of :func:`per_sample_scores` for ``{label: maps}`` (or ``{label: (maps, ...)}``)."""
    scores = {label: per_sample_scores(model, x, maps[0] if isinstance(maps, tuple) else maps, target, keep, step)
              for label, maps in maps_by_method.items()}
    return interval_table(scores, confidence, n_resamples, seed)


def _load_dataset(name: str, data_root: str | None, image_size: int):
    from course_utils import data

    if name == "mnist1d":
        return data.mnist1d("test") if data_root is None else data.mnist1d("test", root=data_root)
    return data.hmt(root=data_root, split="test", image_size=image_size)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Command line entry: evaluate the shipped model of a dataset; writes CSV + PNG into ``--out``."""
    import matplotlib.pyplot as plt

    from course_utils.cluster import connect, local_workers
    from course_utils.models import load_pretrained

    parser = argparse.ArgumentParser(prog="python -m course_utils.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["mnist1d", "hmt"])
    parser.add_argument("--methods", nargs="+", default=None, help="registry names (default: all registered)")
    parser.add_argument("--out", default="results", help="folder for <dataset>_evaluation.csv and .png")
    parser.add_argument("--n", type=int, default=None, help="samples per method (default: see module doc)")
    parser.add_argument("--keep", type=float, default=None, help="Drop/Increase keep fraction (0.3 / 0.9)")
    parser.add_argument("--step", type=int, default=None, help="positions per insertion/deletion step")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--image-size", type=int, default=64, help="HMT tile size the model was trained on")
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-progress", action="store_true")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run (method × batch) tasks on a running dask.distributed cluster")
    where.add_argument("--cluster", metavar="local:N", help="run them on a Dask cluster of N local worker processes")
    args = parser.parse_args(argv)
    if args.cluster is not None:
        local_workers(args.cluster)

    methods = args.methods or load_explainers()
    model = load_pretrained(args.dataset, device=args.device)
    dataset = _load_dataset(args.dataset, args.data_root, args.image_size)
    groups = [([m for m in methods if m not in OPTIMISATION_METHODS], args.n),
              ([m for m in methods if m in OPTIMISATION_METHODS],
               args.n if args.n is not None else OPTIMISATION_SUBSET[args.dataset])]
    groups = [(group, n) for group, n in groups if group]
    with connect(args.scheduler, args.cluster) as client:
        if client is None:
            tables = [evaluate(model, dataset, group, keep=args.keep, n=n, batch_size=args.batch_size,
                               seed=args.seed, progress=not args.no_progress, step=args.step) for group, n in groups]
        else:
            runs = [(_prepare(model, dataset, args.keep, n, args.batch_size, args.seed, args.step), _names(group))
                    for group, n in groups]
            tables = _evaluate_on_cluster(client, runs, progress=not args.no_progress)
    table = pd.concat(tables, ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{args.dataset}_evaluation.csv", index=False)
    fig = plot_evaluation(table, title=f"{args.dataset}: faithfulness of the explainers")
    fig.savefig(out / f"{args.dataset}_evaluation.png", dpi=150)
    plt.close(fig)
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
