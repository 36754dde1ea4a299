"""Child processes for untrusted student code: a bubblewrap sandbox, resource limits, a clean environment.

Every process that runs student code (papermill and the notebook's kernel, each exercise's function runner) is
started by :func:`spawn` inside a sandbox made by bubblewrap (``bwrap``, Debian package ``bubblewrap``): its own
PID, network, IPC, UTS and user namespaces and no capabilities, so that it sees only its own processes (not the
grader's ``/proc``, not another student's), has no network, and dies with all its descendants when the grader
kills it or itself dies (``--die-with-parent``, also on SIGKILL). Its file system is built from nothing
(:func:`bwrap_command`): the system folders, the Python installation and the kit's package read-only, the
folders of its :class:`View` (data read-only, its own working folder writable), a private ``/tmp`` and
nothing else: no submissions, no report, no rubric, no other student's folder, no source checkout around the
package. :attr:`View.hidden` lays empty files or folders over paths inside what is mounted, so that the function
runner cannot read or import the course's reference answers or the kit modules its exercise forbids.

On top of that (and alone with ``--unsandboxed``, where no such tool exists): resource limits set before the
child runs (:func:`apply_limits`; inherited by everything it starts), its own session, stdin closed, a minimal
environment, the access guard of :mod:`course_utils.grading.guard.sitecustomize`, and :func:`kill_tree` killing
the child and every descendant. Those Python-level defences stop accidents and ordinary cheating only; the
sandbox is the boundary against a hostile submission graded on the instructor's own account.
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil

from course_utils.core.paths import PACKAGE_PARENT

PACKAGE_ROOT = PACKAGE_PARENT
KIT = PACKAGE_ROOT / "course_utils"
GUARD_DIR = Path(__file__).resolve().parent / "guard"
INSTALL_HINT = "sudo apt-get install bubblewrap"
_PASSED_VARIABLES = ("PATH", "LANG", "LC_ALL", "USER", "SYSTEMROOT", "COURSE_DEVICE")
_SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
SANDBOX_TMP = Path("/tmp")


@dataclass(frozen=True)
class Limits:
    """Per-child caps: heap memory (``RLIMIT_DATA``), size of any file written, CPU threads, the paths that
    student code may not open (see :mod:`course_utils.grading.guard.sitecustomize`), and whether the child runs
    in the sandbox (``sandboxed=False`` only when the instructor grades with ``--unsandboxed``)."""

    memory_bytes: int = 4 * 2**30
    file_bytes: int = 512 * 2**20
    threads: int = 1
    deny: tuple[Path, ...] = ()
    sandboxed: bool = True


@dataclass(frozen=True)
class View:
    """What a sandboxed child sees beyond the system, Python and the kit (all read-only): ``readable`` folders
    (read-only), ``writable`` folders, and ``hidden`` paths inside any of these, replaced by an empty file or
    folder. The child starts in ``cwd`` (default: its private ``/tmp``)."""

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    cwd: Path | None = None
    env: tuple[tuple[str, str], ...] = ()


class SandboxUnavailable(RuntimeError):
    """No sandbox tool works on this machine and the instructor did not choose ``--unsandboxed``."""


def missing_message() -> str:
    """What the instructor reads when no sandbox tool is found."""
    return (f"course-grade runs student code in a bubblewrap sandbox, and bwrap is missing or cannot create "
            f"namespaces here: install it ({INSTALL_HINT}; on a cluster, on every worker), or grade with "
            "--unsandboxed to accept that a hostile submission may read or change what your account can.")


@functools.cache
def isolation_tool() -> str | None:
    """Path of a working ``bwrap`` (it must start a sandbox here), or None."""
    tool = shutil.which("bwrap")
    if tool is None:
        return None
    try:
        probe = subprocess.run([tool, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return tool if probe.returncode == 0 else None


def _caps(limits: Limits) -> tuple[tuple[int, int], ...]:
    return ((resource.RLIMIT_DATA, limits.memory_bytes), (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_CORE, 0))


def apply_limits(limits: Limits) -> None:
    """Cap this process (and every process it starts later): data segment/heap, file size, no core dumps.

    ``RLIMIT_DATA`` (not ``RLIMIT_AS``) because torch reserves gigabytes of address space it never uses; the
    data limit counts what is really allocated (heap and private anonymous mappings). Soft = hard, so the
    student's code cannot raise them back. Called in the child between fork and exec (``preexec_fn``), so the
    limits hold before the sandbox tool or any student code starts.
    """
    for limit, value in _caps(limits):
        _, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, value))


def child_env(home: Path, limits: Limits) -> dict[str, str]:
    """A minimal environment: no grader secrets, the access guard first on the path, the kit importable, one
    BLAS thread pool of ``limits.threads``, ``home`` as the home and configuration folder."""
    env = {k: os.environ[k] for k in _PASSED_VARIABLES if k in os.environ}
    inherited = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(GUARD_DIR), str(PACKAGE_ROOT), *([inherited] if inherited else [])])
    env["COURSE_GRADE_DENY"] = os.pathsep.join(str(p) for p in limits.deny)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(limits.threads)
    env.update(HOME=str(home), MPLBACKEND="Agg", MPLCONFIGDIR=str(home / ".mpl"),
               JUPYTER_RUNTIME_DIR=str(home / ".jupyter"), IPYTHONDIR=str(home / ".ipython"),
               PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", COURSE_FAST="1",
               JUPYTER_PLATFORM_DIRS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    if limits.sandboxed:
        env["TMPDIR"] = str(SANDBOX_TMP)
    elif "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


def _inside(path: Path, roots) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _python_folders() -> list[Path]:
    """The interpreter's installation: its prefixes and executable's folder, its site-packages (the user's too)
    and the folders of the grader's ``sys.path`` inside a prefix; not the current folder, nor the source
    checkout around the kit (only the package itself is mounted)."""
    prefixes = [Path(p).resolve() for p in {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix}]
    sites = [Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()] if os.path.isdir(p)]
    on_path = [Path(p).resolve() for p in sys.path if p and os.path.isdir(p)]
    found = [*prefixes, Path(sys.executable).resolve().parent, *sites, *(p for p in on_path if _inside(p, prefixes))]
    keep = []
    for folder in found:
        if folder not in keep and folder != PACKAGE_ROOT and folder not in PACKAGE_ROOT.parents:
            keep.append(folder)
    return keep


def bwrap_command(tool: str, view: View) -> list[str]:
    """The ``bwrap`` command line (up to ``--``) that builds the sandbox of ``view``."""
    cmd = [tool, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    mounted: list[Path] = []
    for folder in _SYSTEM_FOLDERS:
        if os.path.islink(folder):
            cmd += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            cmd += ["--ro-bind", folder, folder]
            mounted.append(Path(folder))
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", str(SANDBOX_TMP)]
    for folder in [*_python_folders(), KIT, *(p.resolve() for p in view.readable)]:
        if folder.exists():
            cmd += ["--ro-bind", str(folder), str(folder)]
            mounted.append(folder)
    for folder in (p.resolve() for p in view.writable):
        cmd += ["--bind", str(folder), str(folder)]
        mounted.append(folder)
    for path in view.hidden:
        path = Path(os.path.abspath(path))
        if not _inside(path, mounted) or not os.path.lexists(path):
            continue
        cmd += ["--tmpfs", str(path)] if path.is_dir() and not path.is_symlink() else \
            ["--ro-bind", "/dev/null", str(path)]
    cmd += ["--chdir", str(view.cwd or SANDBOX_TMP)]
    return cmd


def spawn(args: list[str], limits: Limits, view: View = View(), log: Path | None = None,
          pass_fds: tuple[int, ...] = (), stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """Start ``python args...`` (the current interpreter) in a new session under ``limits``, inside the sandbox
    of ``view`` (unless ``limits.sandboxed`` is False: then plainly, in ``view.cwd``); output to ``log`` (or
    discarded). Raises :class:`SandboxUnavailable` when a sandbox is asked for and no tool works."""
    if limits.sandboxed:
        tool = isolation_tool()
        if tool is None:
            raise SandboxUnavailable(missing_message())
        prefix = [*bwrap_command(tool, view), "--"]
        cwd = None
    else:
        prefix, cwd = [], view.cwd or Path(tempfile.gettempdir())
    home = (view.cwd or SANDBOX_TMP) if limits.sandboxed else cwd
    out = open(log, "wb") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen([*prefix, sys.executable, *args], cwd=cwd, env={**child_env(home, limits),
                                                                               **dict(view.env)},
                                stdin=stdin, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                pass_fds=pass_fds, preexec_fn=partial(apply_limits, limits))
    finally:
        if log is not None:
            out.close()


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
