"""Sandbox child: define each extracted exercise function and call it on the held-out inputs.

``python -m course_utils.grading.runner WORKDIR`` (started under the sandbox limits and access guard by
:mod:`course_utils.grading.score`, never by hand). In ``WORKDIR`` it reads ``plan.json`` (exercise names in
order), ``exercises.json`` (per exercise: its harness as ``module:function`` or null, and its forbidden code),
``program_<name>.py`` (the function, its helpers and imports, cut from the notebook) and ``cases.pt``
(argument tuples, shipped models named by reference). For every exercise it first writes ``<name>.started``
(so the grader can time it), then runs the program in a fresh namespace and each case on fresh copies of the
inputs through :func:`course_utils.exercises.calling.call_answer`, and writes ``<name>.pt``: one
``{"ok": True, "value": ...}`` or ``{"ok": False, "error": "..."}`` per case, with ``"forbidden"`` naming the
forbidden function a case ran. The grader compares these values with its own reference outputs in its own
process; nothing here decides a score.
"""
from __future__ import annotations

import argparse
import importlib
import json
import traceback
from pathlib import Path

import torch

from course_utils.exercises.calling import call_answer, materialize
from course_utils.grading.values import load, save, to_plain


def _error(err: BaseException, filename: str) -> str:
    line = next((f.lineno for f in reversed(traceback.extract_tb(err.__traceback__)) if f.filename == filename),
                None)
    where = f" (line {line} of the extracted code)" if line else ""
    return f"{type(err).__name__}: {str(err)[:300]}{where}"


def _harness(name: str | None):
    if name is None:
        return None
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)


def _import_kit_module(prefix: str) -> None:
    """Import the longest importable module of a dotted ``prefix`` that lies in course_utils."""
    parts = prefix.split(".")
    if parts[0] != "course_utils":
        return
    for end in range(len(parts), 0, -1):
        try:
            importlib.import_module(".".join(parts[:end]))
            return
        except ImportError:
            continue


def run_exercise(name: str, source: str, cases: list[tuple], harness: str | None = None,
                 forbidden: tuple[str, ...] = ()) -> list[dict]:
    """Define ``name`` from ``source`` and call it on each case (through ``harness``), watching for forbidden
    code: the results as they are written to ``<name>.pt``."""
    filename = f"<{name} and its helpers from the notebook>"
    namespace = {"__name__": "__student__"}
    try:
        exec(compile(source, filename, "exec"), namespace)
        fn = namespace[name]
    except BaseException as err:  # the student's definitions may raise anything, SystemExit included
        return [{"ok": False, "error": f"could not define it: {_error(err, filename)}"}] * len(cases)
    judge = _harness(harness)
    results = []
    for args in cases:
        fresh = materialize(tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args))
        answer = call_answer(fn, fresh, judge, forbidden)
        if answer.violation:
            results.append({"ok": False, "error": f"ran forbidden code ({answer.violation})",
                            "forbidden": answer.violation})
        elif answer.error is not None:
            results.append({"ok": False, "error": _error(answer.error, filename)})
        else:
            results.append({"ok": True, "value": to_plain(answer.value)})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    args = parser.parse_args(argv)
    work = args.workdir
    cases = load(work / "cases.pt")
    plan = json.loads((work / "plan.json").read_text())
    settings = json.loads((work / "exercises.json").read_text())
    sources = {name: (work / f"program_{name}.py").read_text() for name in plan}
    for name in plan:  # the kit's forbidden modules are loaded now, so that reaching one costs no time limit
        for prefix in settings[name]["forbidden"]:
            _import_kit_module(prefix)
    for name in plan:
        (work / f"{name}.started").touch()
        save(run_exercise(name, sources[name], cases[name], settings[name]["harness"],
                          tuple(settings[name]["forbidden"])), work / f"{name}.pt")


if __name__ == "__main__":
    main()
