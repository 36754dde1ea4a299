"""No student process outlives a killed grader: a small watcher that kills them when the grader dies.

:class:`Reaper` starts ``python reaper.py GRADER_PID`` (this file, by path: standard library and psutil only)
with a pipe from the grader on its stdin. While the grader lives, the watcher notes every process below it
(papermill, kernels, function runners, anything they start) every 0.2 s; when the pipe closes without the
grader saying ``done`` — the grader was SIGKILLed, crashed or chosen by the out-of-memory killer — it kills
every process it noted, and whatever those started since, and exits. It ignores Ctrl-C, so it outlives a
grader stopped from the terminal. In the sandbox, bubblewrap's ``--die-with-parent`` and PID namespace do the
same for the processes inside; the watcher covers ``--unsandboxed`` grading (and a sandbox tool without them).
A process that starts and leaves its parent within one polling interval escapes it.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

import psutil

POLL_S = 0.2


def _kill_all(noted: dict[int, psutil.Process]) -> None:
    """SIGKILL the noted processes and their descendants, until none is left (they may start more)."""
    for _ in range(20):
        alive = []
        for p in list(noted.values()):
            try:
                alive += [p, *p.children(recursive=True)]
            except psutil.Error:
                continue
        if not alive:
            return
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=1)
        noted = {p.pid: p for p in alive}


def watch(grader_pid: int) -> None:
    """Note the grader's descendants until its pipe (stdin) closes; kill them unless it said ``done``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    me = os.getpid()
    noted: dict[int, psutil.Process] = {}
    try:
        grader = psutil.Process(grader_pid)
    except psutil.Error:
        return
    while True:
        ready, _, _ = select.select([0], [], [], POLL_S)
        if ready:
            message = os.read(0, 64)
            if message.startswith(b"done"):
                return
            if not message:
                break
        try:
            for p in grader.children(recursive=True):
                if p.pid != me:
                    noted.setdefault(p.pid, p)
        except psutil.Error:
            break
    _kill_all(noted)


class Reaper:
    """Context manager: the watcher runs while the block runs; a normal exit (or an exception) stops it
    without killing anything, since the grader then ended its student processes itself."""

    def __enter__(self) -> Reaper:
        self._proc = subprocess.Popen([sys.executable, "-I", __file__, str(os.getpid())], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, start_new_session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._proc.stdin.write(b"done\n")
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    watch(int(sys.argv[1]))
