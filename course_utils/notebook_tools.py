"""Student notebooks from the solution notebooks, output stripping, and the parameters-cell helper.

``solutions/NN_name.ipynb`` is the single source. :func:`generate` writes ``notebooks/NN_name.ipynb`` with every
``### BEGIN SOLUTION`` … ``### END SOLUTION`` region replaced by ``raise NotImplementedError("Exercise: ...")``
(same indentation), cells tagged ``solution_only`` dropped, and all outputs stripped. The JSON written is
deterministic, so :func:`check_stale` can compare byte for byte.

Command line::

    python -m course_utils.notebook_tools generate   # solutions/ -> notebooks/ (make notebooks)
    python -m course_utils.notebook_tools check      # exit 1 if notebooks/ is stale or solutions carry outputs
    python -m course_utils.notebook_tools strip      # strip outputs of solutions/*.ipynb in place
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"
EXERCISE_MESSAGE = "Exercise: write your code here (see the instructions above), then run the self-check below."
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def env_default(name: str, default):
    """``default``, unless the environment variable ``name`` is set; then its value, converted to ``default``'s type.

    Used in a notebook's ``parameters`` cell so that runs that cannot inject parameters (nbval) can still switch
    e.g. fast mode: ``fast = env_default("COURSE_FAST", False)``. Booleans accept 1/0, true/false, yes/no, on/off.
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    if isinstance(default, bool):
        value = raw.strip().lower()
        if value in _TRUE | _FALSE:
            return value in _TRUE
        raise ValueError(f"environment variable {name}={raw!r} is not a boolean; set it to 1 or 0.")
    if isinstance(default, (int, float)):
        try:
            return type(default)(raw)
        except ValueError:
            raise ValueError(f"environment variable {name}={raw!r} is not a {type(default).__name__}; "
                             f"set it to a number like {default!r}.") from None
    return raw


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _cell_id(cell, index: int) -> str:
    return hashlib.sha1(f"{index}:{cell.cell_type}:{cell.source}".encode()).hexdigest()[:12]


EXPECTED_OUTPUT = "expected_output"
"""Cell metadata key holding the expected text outputs of a ``# NBVAL_CHECK_OUTPUT`` cell."""


def _text_outputs(outputs) -> list:
    """The text part of ``outputs`` (streams, plain-text results): what a checked cell is expected to print."""
    kept = []
    for out in outputs:
        if out.output_type == "stream":
            kept.append(nbformat.v4.new_output("stream", name=out.name, text=out.text))
        elif out.output_type == "execute_result" and "text/plain" in out.get("data", {}):
            kept.append(nbformat.v4.new_output("execute_result", data={"text/plain": out.data["text/plain"]},
                                               execution_count=None))
    return kept


def expected_outputs(cell) -> list:
    """The expected outputs stored in a cell's metadata (empty if none), as notebook output nodes."""
    return [nbformat.from_dict(out) for out in cell.get("metadata", {}).get(EXPECTED_OUTPUT, [])]


def clean(nb, keep_expected: bool = True):
    """Normalise a notebook in place: no outputs, no execution counts, no run metadata, cell ids set; returns it.

    For a cell containing ``# NBVAL_CHECK_OUTPUT`` (when ``keep_expected``), the text of its outputs is moved to
    ``metadata["expected_output"]`` (kept from an earlier strip when the cell has not been run since): the
    expected result that ``solutions/conftest.py`` hands to nbval, so the committed notebook stays output-free.
    """
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = nbformat.from_dict({
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    seen = set()
    for i, cell in enumerate(nb.cells):
        metadata = {"tags": _tags(cell)} if _tags(cell) else {}
        if cell.cell_type == "code" and keep_expected and CHECK_OUTPUT in cell.source:
            expected = _text_outputs(cell.outputs) if cell.outputs else expected_outputs(cell)
            if expected:
                metadata[EXPECTED_OUTPUT] = expected
        cell.metadata = nbformat.from_dict(metadata)
        if not cell.get("id") or cell.id in seen:
            cell.id = _cell_id(cell, i)
        seen.add(cell.id)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    return nb


def strip_solution_regions(source: str) -> str:
    """Replace each ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region by one ``raise NotImplementedError``."""
    lines, out, inside = source.split("\n"), [], False
    for number, line in enumerate(lines, 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution region; close it with {END}.")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("{EXERCISE_MESSAGE}")')
        elif marker == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without a matching {BEGIN}.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"a {BEGIN} region is never closed; add a line {END}.")
    return "\n".join(out)


def student_version(nb):
    """The student notebook for a solution notebook (a new object; ``nb`` is not modified)."""
    student = copy.deepcopy(nb)
    student.cells = [cell for cell in student.cells if "solution_only" not in _tags(cell)]
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.source = strip_solution_regions(cell.source)
    return clean(student, keep_expected=False)


def dumps(nb) -> str:
    """Deterministic JSON text of a notebook (sorted keys, one-space indent, trailing newline)."""
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4) + "\n"


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    solutions = sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb"))
    return [(path, root / "notebooks" / path.name) for path in solutions]


def generate(root: str | Path = ROOT) -> list[Path]:
    """Write ``notebooks/NN_name.ipynb`` for every ``solutions/NN_name.ipynb``; returns the paths written."""
    root = Path(root)
    (root / "notebooks").mkdir(exist_ok=True)
    written = []
    for source, target in _pairs(root):
        text = dumps(student_version(nbformat.read(source, as_version=4)))
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def check_stale(root: str | Path = ROOT) -> list[str]:
    """Problems that ``generate``/``strip`` would fix: stale, missing or orphan notebooks, unstripped solutions.

    Returns one message per problem; an empty list means notebooks/ is exactly what :func:`generate` writes.
    """
    root = Path(root)
    problems = []
    for source, target in _pairs(root):
        nb = nbformat.read(source, as_version=4)
        if source.read_text(encoding="utf-8") != dumps(clean(nbformat.read(source, as_version=4))):
            problems.append(f"{source.relative_to(root)} carries outputs or run metadata: run "
                            "`python -m course_utils.notebook_tools strip`.")
        if not target.is_file():
            problems.append(f"{target.relative_to(root)} is missing: run `make notebooks`.")
        elif target.read_text(encoding="utf-8") != dumps(student_version(nb)):
            problems.append(f"{target.relative_to(root)} is stale: run `make notebooks`.")
    solution_names = {source.name for source, _ in _pairs(root)}
    for orphan in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if orphan.name not in solution_names:
            problems.append(f"{orphan.relative_to(root)} has no solutions/{orphan.name}; delete it.")
    return problems


def strip_outputs(path: str | Path) -> bool:
    """Strip a solution notebook's outputs in place (``# NBVAL_CHECK_OUTPUT`` text kept in metadata); True if
    changed."""
    path = Path(path)
    before = path.read_text(encoding="utf-8")
    after = dumps(clean(nbformat.reads(before, as_version=4)))
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.notebook_tools", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["generate", "check", "strip"])
    parser.add_argument("paths", nargs="*", help="strip: notebooks to strip (default: solutions/*.ipynb)")
    parser.add_argument("--root", default=str(ROOT), help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.command == "generate":
        for path in generate(root):
            print(f"wrote {path.relative_to(root)}")
        return 0
    if args.command == "strip":
        paths = [Path(p) for p in args.paths] or [source for source, _ in _pairs(root)]
        for path in paths:
            print(f"{'stripped' if strip_outputs(path) else 'clean   '} {path}")
        return 0
    problems = check_stale(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("notebooks/ is up to date and solutions/ is stripped.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
