"""Sandbox child: define each extracted exercise function and call it on the held-out inputs.

``python -m course_utils.grading.runner WORKDIR`` (started under the sandbox limits and access guard by
:mod:`course_utils.grading.score`, never by hand). In ``WORKDIR`` it reads ``plan.json`` (exercise names in
order), ``program_<name>.py`` (the function, its helpers and imports, cut from the notebook) and ``cases.pt``
(argument tuples). For every exercise it first writes
``<name>.started`` (so the grader can time it), then runs the program in a fresh namespace and each case on
fresh copies of the inputs, and writes ``<name>.pt``: one ``{"ok": True, "value": ...}`` or
``{"ok": False, "error": "..."}`` per case. The grader compares these values
with its own reference outputs in its own process; nothing here decides a score.
"""
from __future__ import annotations

import argparse
import json
import traceback
from pathlib import Path

import torch

from course_utils.grading.values import load, save, to_plain


def _error(err: BaseException, filename: str) -> str:
    line = next((f.lineno for f in reversed(traceback.extract_tb(err.__traceback__)) if f.filename == filename),
                None)
    where = f" (line {line} of the extracted code)" if line else ""
    return f"{type(err).__name__}: {str(err)[:300]}{where}"


def _run_exercise(name: str, source: str, cases: list[tuple]) -> list[dict]:
    filename = f"<{name} and its helpers from the notebook>"
    namespace = {"__name__": "__student__"}
    try:
        exec(compile(source, filename, "exec"), namespace)
        fn = namespace[name]
    except BaseException as err:  # the student's definitions may raise anything, SystemExit included
        return [{"ok": False, "error": f"could not define it: {_error(err, filename)}"}] * len(cases)
    results = []
    for args in cases:
        fresh = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
        try:
            results.append({"ok": True, "value": to_plain(fn(*fresh))})
        except BaseException as err:
            results.append({"ok": False, "error": _error(err, filename)})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    args = parser.parse_args(argv)
    work = args.workdir
    cases = load(work / "cases.pt")
    plan = json.loads((work / "plan.json").read_text())
    sources = {name: (work / f"program_{name}.py").read_text() for name in plan}
    for name in plan:
        (work / f"{name}.started").touch()
        save(_run_exercise(name, sources[name], cases[name]), work / f"{name}.pt")


if __name__ == "__main__":
    main()
