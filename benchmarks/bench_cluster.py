"""Grading and evaluation on a Dask ``LocalCluster`` of 1 and 2 workers vs the single-process path, and the
scheduler's overhead per task.

``ratio`` = cluster seconds / single-process seconds within a round (below 1: the cluster is faster). The
clusters are started, and their workers have imported the kit, before timing (start-up is its own row).
Grading: a class of copies of the stand-in assignment notebook (tests/fixtures/grading), executed (or scored
only, ``execute=False``) vs ``--jobs 1``. Evaluation: the shipped MNIST-1D model on a subset of the test set
(random data of the same shape in quick mode) vs ``evaluate()`` without a client. Overhead: the seconds per
no-op task through :func:`course_utils.cluster.run_tasks`.
"""
from __future__ import annotations

import importlib
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from benchmarks.common import row, timed_rounds
from course_utils import evaluate as ev
from course_utils.cluster import run_tasks
from course_utils.grading import cli

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "fixtures" / "grading" / "standin_08_solution.ipynb"


def _noop(item):
    return item


def _grader(subs: Path, out: Path, execute: bool, *where: str):
    args = [str(subs), "--assignment", "08_project_evaluation", "--out", str(out),
            "--secret-seed", "1", "--quiet", *(() if execute else ("--no-execute",)), *where]
    return lambda: cli.main(args)


def _evaluation(quick: bool):
    from course_utils.data import mnist1d
    from course_utils.models import ShallowCNN1D, load_pretrained

    if quick:
        torch.manual_seed(0)
        return ShallowCNN1D().eval(), SimpleNamespace(x=torch.randn(8, 1, 40)), ["saliency"], 8, 4

    data = mnist1d("test", root=ROOT.parent / "shared" / "data" / "mnist1d")
    return load_pretrained("mnist1d", device="cpu"), data, ["saliency", "smoothgrad"], 128, 32


def run(quick: bool = False, execute: bool = True, n_eval: int | None = None) -> list[dict]:
    """``execute=False``: score the notebooks only (``--no-execute``); ``n_eval``: evaluation samples."""
    from distributed import Client, LocalCluster

    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        subs = workdir / "subs"
        subs.mkdir()
        for i in range(1 if quick else 2):
            shutil.copyfile(STANDIN, subs / f"student{i}.ipynb")
        model, data, methods, n, batch = _evaluation(quick)
        n = n_eval or n
        execute = execute and not quick
        repeat = 1 if quick else 2
        clusters = []
        for workers in (1, 2):
            start = time.perf_counter()
            local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(local)
            client.wait_for_workers(workers)
            client.run(importlib.import_module, "course_utils.grading.remote")  # torch imported before timing
            clusters.append((workers, local, client, time.perf_counter() - start))
        try:
            grade_fns = [_grader(subs, workdir / "local", execute, "--jobs", "1")]
            grade_fns += [_grader(subs, workdir / f"c{w}", execute, "--scheduler", local.scheduler_address)
                          for w, local, _, _ in clusters]
            rounds = timed_rounds(grade_fns, repeat=1, warmup=0)
            for (workers, *_), seconds in zip(clusters, rounds[1:]):
                what = "notebooks" if execute else "notebooks, score only"
                rows.append(row(f"grading {len(list(subs.iterdir()))} {what}, {workers} worker(s)", seconds,
                                "course-grade --jobs 1", rounds[0]))

            def evaluation(client=None):
                return lambda: ev.evaluate(model, data, methods, n=n, batch_size=batch, progress=False,
                                           client=client)

            rounds = timed_rounds([evaluation()] + [evaluation(c) for *_, c, _ in clusters], repeat=repeat,
                                  warmup=1)
            tasks = len(methods) * -(-n // batch)
            for (workers, *_), seconds in zip(clusters, rounds[1:]):
                rows.append(row(f"evaluation, {len(methods)} methods × {n} samples ({tasks} tasks), "
                                f"{workers} worker(s)", seconds, "evaluate() in one process", rounds[0]))
            count = 20 if quick else 200
            _, _, client, _ = clusters[0]
            per_task = timed_rounds([lambda: run_tasks(client, _noop, list(range(count)), progress=False)],
                                    repeat=repeat, warmup=1)[0]
            rows.append({"benchmark": f"scheduler overhead per no-op task ({count} tasks, 1 worker)",
                         "ours_s": min(per_task) / count})
            for workers, _, _, seconds in clusters:
                rows.append({"benchmark": f"LocalCluster start-up, {workers} worker(s)", "ours_s": seconds})
        finally:
            for _, local, client, _ in clusters:
                client.close()
                local.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
