"""Execute one submitted notebook with papermill in a sandbox child: timeouts, output cap, memory cap.

:func:`execute_notebook` starts :mod:`course_utils.grading.run_notebook` in the submission's private working
directory under the sandbox limits (inherited by the kernel), and kills the whole process tree (papermill and
its kernel) when the total time runs out. The child injects the grading parameters, applies the per-cell
timeout and the output cap, and reports its outcome on a private pipe that the kernel does not inherit, so the
notebook cannot forge it. The executed notebook is for the instructor to read; scores are computed separately
(:mod:`course_utils.grading.score`).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from course_utils.grading import run_notebook, sandbox
from course_utils.grading.status import Status


@dataclass(frozen=True)
class Execution:
    """Outcome of running a notebook: a status word, a reason in words, wall time, whether outputs were cut."""

    status: Status
    reason: str
    seconds: float
    truncated: bool = False


def execute_notebook(notebook: Path, output: Path, parameters: dict, limits: sandbox.Limits,
                     timeout_cell: float, timeout_total: float, max_output_bytes: int, log: Path) -> Execution:
    """Run ``notebook`` (inside its private working directory) and write the executed copy to ``output``."""
    read_end, write_end = os.pipe()
    start = time.monotonic()
    try:
        proc = sandbox.spawn(["-I", run_notebook.__file__, str(notebook), str(output),
                              "--parameters", json.dumps(parameters), "--timeout-cell", str(timeout_cell),
                              "--max-output-bytes", str(max_output_bytes), "--report-fd", str(write_end)],
                             notebook.parent, limits, log=log, pass_fds=(write_end,))
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
