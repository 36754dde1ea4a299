"""Forbidden code: an exercise answer may not run the library code that already implements it.

An exercise names what it forbids as dotted prefixes: a package (``course_utils.metrics``), a module, or one
function or class in a module (``course_utils.explainers.meaningful_perturbation.total_variation``).
:class:`ForbiddenCalls` watches every Python function that starts while an answer runs (``sys.settrace``, call
events only, so lines are not traced) and records the first one whose code lives there, however the student
reached it: an import statement, ``importlib``, ``__import__``, ``sys.modules``, or a name imported in another
cell. The notebooks' self-checks (:mod:`course_utils.selfcheck`) and the grader's sandbox
(:mod:`course_utils.grading.runner`) both use it, so a local PASS and the grade apply the same rule.
Code pasted from the library into the notebook is the student's own code as far as this guard can tell.

The guard runs in the student's own process, which can switch it off or clear its record, so its verdict binds
only honest code. For the grade, the reference answers and the kit modules an exercise forbids are not even
present where its answer runs (:func:`course_utils.grading.score.runner_view`); this guard is the second line
there, and names the forbidden code an answer reached.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import CodeType


@dataclass(frozen=True)
class _Place:
    """Where a forbidden prefix lives: a package folder or a module file, and a qualified-name prefix in it."""

    module: str
    path: str
    is_package: bool
    qualname: str

    def module_of(self, filename: str) -> str | None:
        """Dotted module name of ``filename`` if it lies in this place, else None."""
        if not self.is_package:
            return self.module if filename == self.path else None
        if not filename.startswith(self.path + os.sep):
            return None
        parts = os.path.relpath(filename, self.path).removesuffix(".py").split(os.sep)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join([self.module, *parts])


def _locate(prefix: str) -> _Place | None:
    """Find ``prefix`` on disk without importing it (only its top-level package's location is looked up)."""
    parts = prefix.split(".")
    if not all(p.isidentifier() for p in parts):
        raise ValueError(f"forbidden entry {prefix!r} is not a dotted Python name such as 'course_utils.metrics'.")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None  # not installed, so nothing of it can run
    if spec.submodule_search_locations:
        path, is_package = os.path.realpath(list(spec.submodule_search_locations)[0]), True
    elif spec.origin and spec.origin.endswith(".py"):
        path, is_package = os.path.realpath(spec.origin), False
    else:
        return None  # a compiled module: its functions start no Python frames
    depth = 1
    while depth < len(parts) and is_package:
        folder, file = os.path.join(path, parts[depth]), os.path.join(path, parts[depth] + ".py")
        if os.path.isdir(folder):
            path = folder
        elif os.path.isfile(file):
            path, is_package = file, False
        else:
            break
        depth += 1
    if is_package and depth < len(parts):  # a name defined in the package's __init__.py
        path, is_package = os.path.join(path, "__init__.py"), False
    return _Place(".".join(parts[:depth]), path, is_package, ".".join(parts[depth:]))


class ForbiddenCalls:
    """Context manager: records in ``violation`` the first call into ``forbidden`` code (``module.qualname``).

    The guard covers the current thread and threads started inside the block, and notices when the code under
    watch switches it off (``sys.settrace(None)``): that counts as a violation too. The previous trace function
    (a debugger's) is restored on exit.
    """

    def __init__(self, forbidden: Sequence[str]):
        if isinstance(forbidden, str):
            raise ValueError(f"forbidden must be a list of dotted names, e.g. [{forbidden!r}], not a string.")
        self.forbidden = tuple(forbidden)
        self._places = [p for p in map(_locate, self.forbidden) if p is not None]
        self._files: dict[str, list[tuple[_Place, str]]] = {}
        self.violation: str | None = None

    def _match(self, code: CodeType) -> str | None:
        hits = self._files.get(code.co_filename)
        if hits is None:
            real = os.path.realpath(code.co_filename)
            hits = [(p, m) for p in self._places if (m := p.module_of(real)) is not None]
            self._files[code.co_filename] = hits
        for place, module in hits:
            qualname = code.co_qualname
            if not place.qualname or qualname == place.qualname or qualname.startswith(place.qualname + "."):
                return f"{module}.{qualname}"
        return None

    def _trace(self, frame, event, arg):
        if event == "call" and self.violation is None:
            self.violation = self._match(frame.f_code)
        return None

    def __enter__(self) -> ForbiddenCalls:
        self._previous = sys.gettrace(), threading.gettrace()
        if self._places:
            sys.settrace(self._trace)
            threading.settrace(self._trace)
        return self

    def __exit__(self, *exc) -> None:
        if self._places and sys.gettrace() != self._trace and self.violation is None:
            self.violation = "sys.settrace (it switched off the check for forbidden code)"
        sys.settrace(self._previous[0])
        threading.settrace(self._previous[1])


def forbidden_message(violation: str, forbidden: Sequence[str]) -> str:
    """What a student reads when their answer ran forbidden code."""
    also = f"{', '.join(forbidden)}, nor " if forbidden else ""
    return (f"your code runs {violation}, which this exercise forbids (it may not use {also}the course's reference "
            "answers): write it yourself; the grader gives no points for it")
