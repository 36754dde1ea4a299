"""Pull a student's exercise functions out of a notebook by name, without running the notebook.

The code cells are parsed (IPython magics and shell escapes dropped), and for each exercise name the grader
keeps only top-level statements that *define* something: ``import``/``from ... import``, ``def``, ``class``
and assignments of literal constants (``EPS = 1e-8``). Starting from the exercise function it follows the names
each kept definition uses, so the source handed to the sandbox is the function, the helpers it calls and the
imports they need. Everything else the notebook does (prints, plots, monkeypatching ``torch.allclose``,
writing files) is never part of what is scored. The last definition of a name wins, as in the notebook.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import nbformat

_MAGIC = re.compile(r"^\s*(%|!)")
_WORD = re.compile(r"\w+(?:[’'-]\w+)*")


@dataclass(frozen=True)
class Definition:
    """One top-level statement that binds ``names``, with the names its code refers to."""

    source: str
    names: frozenset[str]
    uses: frozenset[str]
    order: int
    is_function: bool


def _strip_magics(source: str) -> str:
    return "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
    if isinstance(node, ast.Assign) and _is_literal(node.value):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and node.value is not None and _is_literal(node.value) \
            and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def _used_names(node: ast.stmt) -> frozenset[str]:
    return frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name))


def code_cells(nb) -> list[str]:
    """Sources of the notebook's code cells, magics removed."""
    return [_strip_magics(c.source) for c in nb.cells if c.cell_type == "code"]


def definitions(nb) -> tuple[list[Definition], list[str]]:
    """Every defining top-level statement of the notebook, and one note per code cell that does not parse."""
    found: list[Definition] = []
    problems: list[str] = []
    for index, source in enumerate(code_cells(nb)):
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            problems.append(f"code cell {index + 1} has a syntax error (line {err.lineno}): {err.msg}")
            continue
        for node in tree.body:
            names = _bound_names(node)
            if names:
                is_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                found.append(Definition(ast.unparse(node), frozenset(names), _used_names(node), len(found),
                                        is_function))
    return found, problems


def _future_imports(defs: list[Definition]) -> list[Definition]:
    return [d for d in defs if d.source.startswith("from __future__ import")]


def program_for(name: str, defs: list[Definition]) -> str | None:
    """Source defining ``name`` and everything it needs from the notebook, in notebook order; None if undefined."""
    latest: dict[str, Definition] = {}
    for d in defs:
        for n in d.names:
            latest[n] = d
    if name not in latest or not latest[name].is_function:
        return None
    chosen: dict[int, Definition] = {}
    todo = [name]
    while todo:
        d = latest.get(todo.pop())
        if d is None or d.order in chosen:
            continue
        chosen[d.order] = d
        todo.extend(d.uses)
    for d in _future_imports(defs):
        chosen[d.order] = d
    return "\n\n".join(chosen[k].source for k in sorted(chosen)) + "\n"


def discussion_words(nb, tag: str = "discussion") -> int | None:
    """Word count of the Markdown cells tagged ``tag`` (None if the notebook has none)."""
    cells = [c for c in nb.cells if c.cell_type == "markdown" and tag in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return None
    return sum(len(_WORD.findall(c.source)) for c in cells)


def read_notebook(path) -> nbformat.NotebookNode:
    """Read a notebook as nbformat v4; a ValueError says why it is not one."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises many kinds for broken JSON
        raise ValueError(f"not a readable Jupyter notebook ({type(err).__name__}: {err})") from None
