"""Child processes for untrusted student code: resource limits, own session, clean environment, hard kill.

Every piece of student code (the notebook's kernel, the extracted exercise functions) runs in a child process
started by :func:`spawn`: its own session (so it never receives the grader's terminal signals), stdin closed,
outputs sent to a file or discarded, and resource limits (:func:`apply_limits`, inherited by the kernel it
starts). :func:`kill_tree` kills the child and every descendant, including Jupyter kernels, which run in a session of
their own. Every child also starts with the access guard of :mod:`course_utils.grading.guard.sitecustomize`
(no opening the rubric, the report or the submissions; no starting programs). These limits stop accidents and
ordinary cheating; they are no security boundary against a hostile user on the same account (run the grader
under a separate user or in a container for that).
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
GUARD_DIR = Path(__file__).resolve().parent / "guard"
_PASSED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "SYSTEMROOT", "COURSE_DEVICE")


@dataclass(frozen=True)
class Limits:
    """Per-child caps: heap memory (``RLIMIT_DATA``), size of any file written, CPU threads, and the paths that
    student code may not open (see :mod:`course_utils.grading.guard.sitecustomize`)."""

    memory_bytes: int = 4 * 2**30
    file_bytes: int = 512 * 2**20
    threads: int = 1
    deny: tuple[Path, ...] = ()


def _caps(limits: Limits) -> tuple[tuple[int, int], ...]:
    return ((resource.RLIMIT_DATA, limits.memory_bytes), (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_CORE, 0))


def apply_limits(pid: int, limits: Limits) -> None:
    """Cap process ``pid`` (and every process it starts later): data segment/heap, file size, no core dumps.

    ``RLIMIT_DATA`` (not ``RLIMIT_AS``) because torch reserves gigabytes of address space it never uses; the
    data limit counts what is really allocated (heap and private anonymous mappings). Soft = hard, so the
    student's code cannot raise them back (unless it runs as root). Applied by the grader with ``prlimit`` right
    after the child starts, long before the child runs any student code or starts a kernel.
    """
    for limit, value in _caps(limits):
        _, hard = resource.prlimit(pid, limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.prlimit(pid, limit, (value, value))


def _limit_self(limits: Limits) -> None:
    """The same caps set from inside the child (systems without ``prlimit``, e.g. macOS)."""
    for limit, value in _caps(limits):
        _, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, value))


def child_env(workdir: Path, limits: Limits) -> dict[str, str]:
    """A minimal environment: no grader secrets, the access guard first on the path, the kit importable, one
    BLAS thread pool of ``limits.threads``."""
    env = {k: os.environ[k] for k in _PASSED_VARIABLES if k in os.environ}
    inherited = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(GUARD_DIR), str(PACKAGE_ROOT), *([inherited] if inherited else [])])
    env["COURSE_GRADE_DENY"] = os.pathsep.join(str(p) for p in limits.deny)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(limits.threads)
    env.update(MPLBACKEND="Agg", MPLCONFIGDIR=str(workdir / ".mpl"), JUPYTER_RUNTIME_DIR=str(workdir / ".jupyter"),
               PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", COURSE_FAST="1",
               JUPYTER_PLATFORM_DIRS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def spawn(args: list[str], workdir: Path, limits: Limits, log: Path | None = None,
          pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start ``python args...`` (the current interpreter) in ``workdir``, in a new session, under ``limits``;
    output to ``log`` (or discarded)."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL
    has_prlimit = hasattr(resource, "prlimit")
    try:
        proc = subprocess.Popen([sys.executable, *args], cwd=workdir, env=child_env(workdir, limits),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, pass_fds=pass_fds,
                                preexec_fn=None if has_prlimit else partial(_limit_self, limits))
    finally:
        if log is not None:
            out.close()
    try:
        if has_prlimit:
            apply_limits(proc.pid, limits)
    except BaseException:
        kill_tree(proc)
        raise
    return proc


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill(processes) -> None:
    for p in processes:
        try:
            p.kill()
        except psutil.Error:
            pass


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and all its descendants (found before killing, so that none is orphaned first)."""
    victims = _descendants(proc.pid)
    if proc.poll() is None:
        try:
            victims.insert(0, psutil.Process(proc.pid))
        except psutil.Error:
            pass
    _kill(victims)
    proc.wait()


def wait_watched(proc: subprocess.Popen, deadline: Callable[[], float]) -> bool:
    """Wait for ``proc``; kill its tree once ``time.monotonic()`` passes ``deadline()`` (re-read as it runs).

    Returns True if it was killed for time. Descendants seen while it ran (e.g. a kernel in its own session)
    that are still alive after it exits are killed too.
    """
    seen: dict[int, psutil.Process] = {}
    polls = 0
    while proc.poll() is None:
        if time.monotonic() > deadline():
            kill_tree(proc)
            _kill(seen.values())
            return True
        if polls % 10 == 0:
            seen.update((p.pid, p) for p in _descendants(proc.pid))
        polls += 1
        time.sleep(0.05)
    _kill(seen.values())
    return False


def describe_exit(returncode: int) -> str:
    """Human words for a child's exit status (negative = killed by a signal)."""
    if returncode >= 0:
        return f"exit status {returncode}"
    names = {9: "SIGKILL (memory exhausted or killed)", 11: "SIGSEGV (crash)", 25: "SIGXFSZ (file size limit)",
             6: "SIGABRT (aborted, often out of memory)", 24: "SIGXCPU (CPU time limit)"}
    return f"killed by {names.get(-returncode, f'signal {-returncode}')}"

