"""Execute one submitted notebook with papermill in a sandbox child: timeouts, output cap, memory cap.

:func:`execute_notebook` starts :mod:`course_utils.grading.run_notebook` inside the sandbox
(:mod:`course_utils.grading.sandbox`), whose only writable host folder is the submission's private folder, under
the sandbox limits (inherited by the kernel), and kills the whole process tree (papermill and its kernel) when
the total time runs out. The child injects the grading parameters, applies the per-cell timeout and the output
cap, and reports its outcome on a private pipe that the kernel does not inherit. The executed notebook is for
the instructor to read (the kernel can write it too, so :func:`read_executed` opens it without following links
and takes only a regular file); scores are computed separately (:mod:`course_utils.grading.score`).
"""
from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from course_utils.core.paths import DATA_DIR_VARIABLE, data_home
from course_utils.data.hmt import find_hmt
from course_utils.grading import run_notebook, sandbox
from course_utils.grading.status import Status

EXECUTED = "executed.ipynb"


@dataclass(frozen=True)
class Execution:
    """Outcome of running a notebook: a status word, a reason in words, wall time, whether outputs were cut."""

    status: Status
    reason: str
    seconds: float
    truncated: bool = False


def _data(parameters: dict) -> tuple[tuple[Path, ...], tuple[tuple[str, str], ...]]:
    """What a notebook reads data from, as the grader finds it: every absolute path among the parameters, the
    data home and the HMT tiles (when no ``hmt_dir`` is given); and the variables that point the kernel there."""
    found = [Path(v) for v in parameters.values() if isinstance(v, str) and os.path.isabs(v)]
    env = {DATA_DIR_VARIABLE: str(data_home().resolve())}
    found.append(data_home())
    if parameters.get("hmt_dir") is None:
        try:
            hmt = find_hmt().resolve()
        except FileNotFoundError:
            hmt = None
        if hmt is not None:
            found.append(hmt)
            env["COURSE_HMT_DIR"] = str(hmt)
    return tuple(p for p in found if p.exists()), tuple(env.items())


def execute_notebook(notebook: Path, root: Path, parameters: dict, limits: sandbox.Limits,
                     timeout_cell: float, timeout_total: float, max_output_bytes: int, log: Path) -> Execution:
    """Run ``notebook`` (inside its private working directory ``notebook.parent``, in ``root``) and write the
    executed copy to ``root / EXECUTED``; ``root`` is the only host folder the sandbox may write."""
    read_end, write_end = os.pipe()
    start = time.monotonic()
    readable, env = _data(parameters)
    view = sandbox.View(readable=readable, writable=(root,), hidden=limits.deny, cwd=notebook.parent, env=env)
    try:
        proc = sandbox.spawn(["-I", run_notebook.__file__, str(notebook), str(root / EXECUTED),
                              "--parameters", json.dumps(parameters), "--timeout-cell", str(timeout_cell),
                              "--max-output-bytes", str(max_output_bytes), "--report-fd", str(write_end)],
                             limits, view, log=log, pass_fds=(write_end,))
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        killed = sandbox.wait_watched(proc, lambda: start + timeout_total)
        report = pipe.read(65536)
    seconds = time.monotonic() - start
    if killed:
        return Execution(Status.TIMEOUT, f"stopped after the total limit of {timeout_total:g} s", seconds)
    try:
        outcome = json.loads(report)
        return Execution(Status(outcome["status"]), str(outcome["reason"]), seconds, bool(outcome["truncated"]))
    except (ValueError, KeyError, TypeError):
        why = sandbox.describe_exit(proc.returncode)
        return Execution(Status.KERNEL_DIED, f"the notebook runner stopped: {why}", seconds)


def read_executed(root: Path, cap: int) -> bytes | None:
    """The executed notebook in ``root`` if it is a regular file of at most ``cap`` bytes, read without
    following a link the kernel may have put in its place; else None."""
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fd = os.open(EXECUTED, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return None
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
            return None
        data = f.read(cap + 1)
    return data if len(data) <= cap else None
