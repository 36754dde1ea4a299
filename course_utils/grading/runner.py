"""Sandbox child: define one extracted exercise function and call it on that exercise's held-out inputs.

``python -m course_utils.grading.runner --result-fd FD`` (started inside the sandbox by
:mod:`course_utils.grading.score`, one process per exercise, never by hand). It reads one job from stdin:
``{"name", "source", "cases", "harness", "forbidden"}`` (the function, its helpers and imports cut from the
notebook; that exercise's argument tuples, shipped models named by reference), as written by
:func:`course_utils.grading.values.dumps`. Only then does any student code run: it writes one byte on ``FD``
(a pipe the grader made; the grader's time limit starts there), defines the program in a fresh namespace and
calls the function on each case through :func:`course_utils.exercises.calling.call_answer`, and sends back, as
plain values, one ``{"ok": True, "value": ...}`` or ``{"ok": False, "error": "..."}`` per case (with
``"forbidden"`` naming the forbidden function the guard saw a case run, or the forbidden module it failed to
import or use), preceded by its length. The grader accepts them
only from a runner that exits with status 0, compares them with its own reference outputs in its own process,
and decides the score; nothing here does. In the sandbox the reference answers and the kit modules the
exercise forbids are empty (:class:`course_utils.grading.sandbox.View`), so they cannot run here at all.
"""
from __future__ import annotations

import argparse
import importlib
import os
import struct
import sys
import traceback
import types

import torch

from course_utils.exercises.calling import REFERENCES, call_answer, materialize
from course_utils.grading.values import dumps, loads, to_plain

STARTED = b"S"
LENGTH = struct.Struct(">Q")


def _error(err: BaseException, filename: str) -> str:
    line = next((f.lineno for f in reversed(traceback.extract_tb(err.__traceback__)) if f.filename == filename),
                None)
    where = f" (line {line} of the extracted code)" if line else ""
    return f"{type(err).__name__}: {str(err)[:300]}{where}"


def _absent(err: BaseException, forbidden: tuple[str, ...]) -> str | None:
    """The reference or forbidden module that ``err`` shows the answer reached for (in the sandbox it is absent,
    or empty), or None."""
    if isinstance(err, ImportError):
        name = err.name
    elif isinstance(err, AttributeError) and isinstance(getattr(err, "obj", None), types.ModuleType):
        name = err.obj.__name__
    else:
        return None
    hit = name and any(name == p or name.startswith(p + ".") for p in (*forbidden, *REFERENCES))
    return name if hit else None


def _failure(err: BaseException, filename: str, forbidden: tuple[str, ...], prefix: str = "") -> dict:
    reached = _absent(err, forbidden)
    if reached:
        return {"ok": False, "error": f"ran forbidden code ({reached})", "forbidden": reached}
    return {"ok": False, "error": prefix + _error(err, filename)}


def _harness(name: str | None):
    if name is None:
        return None
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)


def run_exercise(name: str, source: str, cases: list[tuple], harness: str | None = None,
                 forbidden: tuple[str, ...] = ()) -> list[dict]:
    """Define ``name`` from ``source`` and call it on each case (through ``harness``), watching for forbidden
    code: the results as they are sent to the grader."""
    filename = f"<{name} and its helpers from the notebook>"
    namespace = {"__name__": "__student__"}
    try:
        exec(compile(source, filename, "exec"), namespace)
        fn = namespace[name]
    except BaseException as err:  # the student's definitions may raise anything, SystemExit included
        return [_failure(err, filename, forbidden, "could not define it: ")] * len(cases)
    judge = _harness(harness)
    results = []
    for args in cases:
        fresh = materialize(tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args))
        answer = call_answer(fn, fresh, judge, forbidden)
        if answer.violation:
            results.append({"ok": False, "error": f"ran forbidden code ({answer.violation})",
                            "forbidden": answer.violation})
        elif answer.error is not None:
            results.append(_failure(answer.error, filename, forbidden))
        else:
            results.append({"ok": True, "value": to_plain(answer.value)})
    return results


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result-fd", type=int, required=True)
    args = parser.parse_args(argv)
    os.set_inheritable(args.result_fd, False)
    job = loads(sys.stdin.buffer.read())
    sys.stdin.close()
    judge_module = job["harness"].split(":")[0] if job["harness"] else None
    if judge_module:  # imported before the clock starts, like torch
        importlib.import_module(judge_module)
    _write_all(args.result_fd, STARTED)
    results = dumps(run_exercise(job["name"], job["source"], list(job["cases"]), job["harness"],
                                 tuple(job["forbidden"])))
    _write_all(args.result_fd, LENGTH.pack(len(results)) + results)
    os.close(args.result_fd)
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown (torch's takes a while): the grader waits for this exit


if __name__ == "__main__":
    main()
