"""Batch work on a Dask cluster: connect to one (or start a local one) and run a list of tasks on it.

The kit does not schedule anything itself: :func:`connect` opens a ``dask.distributed`` client on a running
scheduler (``--scheduler tcp://host:8786``: a SLURM/PBS cluster from dask-jobqueue, dask-gateway, Kubernetes,
``dask scheduler`` + ``dask worker`` by hand) or on a ``LocalCluster`` of N one-thread worker processes started
for the run (``--cluster local:N``); :func:`run_tasks` submits one task per item, shows a progress bar over
tasks and returns the results in the items' order. A worker that dies while running a task is replaced by the
scheduler, which runs the task again elsewhere (``distributed.scheduler.allowed-failures`` times, default 3).

``dask[distributed]`` is an optional extra (``pip install -e ".[cluster]"``); nothing here is imported by the
rest of the kit unless a scheduler or a cluster is asked for. Workers need the same kit (and torch) installed.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from course_utils.core.progress import progress_bar

_LOCAL = re.compile(r"^local:([1-9][0-9]*)$")


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ValueError("running on a cluster needs dask.distributed: pip install -e \".[cluster]\" "
                         "(or pip install \"dask[distributed]\").") from None
    return distributed


def local_workers(spec: str) -> int:
    """N from a ``local:N`` cluster spec (N ≥ 1 worker processes)."""
    match = _LOCAL.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(f"--cluster {spec!r} is not understood: write local:N (N worker processes on this "
                         "machine), or pass --scheduler ADDRESS for a cluster that is already running.")
    return int(match.group(1))


@contextlib.contextmanager
def connect(scheduler: str | None = None, cluster: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on ``scheduler`` (an address) or on a ``LocalCluster`` given as ``local:N``;
    None when neither is given (the caller's own single-machine path). Closed (and the local cluster stopped)
    on exit."""
    if scheduler and cluster:
        raise ValueError("pass either --scheduler ADDRESS (a running cluster) or --cluster local:N, not both.")
    if not scheduler and not cluster:
        yield None
        return
    distributed = _distributed()
    with contextlib.ExitStack() as stack:
        if cluster:
            local = stack.enter_context(distributed.LocalCluster(
                n_workers=local_workers(cluster), threads_per_worker=1, processes=True, dashboard_address=None))
            client = stack.enter_context(distributed.Client(local))
        else:
            client = stack.enter_context(distributed.Client(scheduler))
        try:  # a builtin, so that it reaches workers that lack the kit
            client.run(exec, "import course_utils")
        except ImportError as err:
            raise ValueError(f"a worker cannot import course_utils ({err}): install the kit (the same version) "
                             "on every worker, e.g. pip install -e \".[cluster]\" in their environment.") from None
        yield client


def run_tasks(client, fn: Callable, items: Sequence, *, shared: dict[str, Any] | None = None,
              on_error: Callable[[Any, BaseException], Any] | None = None, progress: bool = True,
              desc: str = "tasks", retries: int = 1) -> list:
    """``[fn(item, **shared) for item in items]``, one Dask task per item, results in the order of ``items``.

    ``shared`` values are sent to the workers once (to every worker, so that losing one worker loses no copy)
    and passed to every call. A task that raised (after ``retries`` more tries) or whose workers kept dying
    (``distributed.KilledWorker``) becomes ``on_error(item, error)``; without ``on_error`` the error is raised.
    """
    distributed = _distributed()
    shared = dict(shared or {})
    if shared:
        client.wait_for_workers(1)
        names = list(shared)
        scattered = client.scatter([shared[n] for n in names], broadcast=True, hash=False)
        shared = dict(zip(names, scattered))
    futures = [client.submit(fn, item, **shared, pure=False, retries=retries) for item in items]
    index = {future.key: i for i, future in enumerate(futures)}
    results: list = [None] * len(futures)
    try:
        done = distributed.as_completed(futures)
        for future in progress_bar(done, enabled=progress, desc=desc, total=len(futures)):
            i = index[future.key]
            if future.status == "finished":
                results[i] = future.result()
                continue
            error = future.exception()
            if on_error is None:
                raise error
            results[i] = on_error(items[i], error)
            future.release()
    finally:
        client.cancel(futures)
    return results
