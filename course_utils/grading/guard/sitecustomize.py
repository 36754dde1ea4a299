"""Access guard for every interpreter the grader starts for student code (the notebook kernel, the runner).

Python imports ``sitecustomize`` at start-up from the first folder of ``PYTHONPATH``; the grader puts this
folder there and lists, in ``COURSE_GRADE_DENY`` (``os.pathsep``-separated), the paths student code may not
touch: the rubric's folder, the report folder and the submissions folder. Before any student code runs, an
audit hook (PEP 578; it cannot be removed once added) then refuses to open files under those paths and to
start programs through ``subprocess``, ``os.system``, ``os.exec*``, ``os.fork`` and friends. It is the second
line of defence: the boundary is the sandbox of :mod:`course_utils.grading.sandbox`, in which those paths are
not mounted at all and no process outlives its sandbox; the guard alone (``--unsandboxed``) does not stop native
code (ctypes) or ``_posixsubprocess``, which raise no audit event. Standard library only, so it costs nothing
at start-up.
"""
import os
import sys

_SPAWN_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                           "os.forkpty", "pty.spawn"})


def deny_access(paths) -> None:
    """From now on, this process may not open anything under ``paths`` nor start programs."""
    roots = [os.path.realpath(p) for p in paths if p]

    def hook(event, args):
        if event in _SPAWN_EVENTS:
            raise PermissionError("code being graded may not start other programs")
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(args[0]))
            if any(path == r or path.startswith(r + os.sep) for r in roots):
                raise PermissionError(f"code being graded may not open {path}")

    sys.addaudithook(hook)


if os.environ.get("COURSE_GRADE_DENY"):
    deny_access(os.environ["COURSE_GRADE_DENY"].split(os.pathsep))
