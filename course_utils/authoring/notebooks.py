"""Student notebooks from the solution notebooks, and output stripping (in a source checkout).

``solutions/NN_name.ipynb`` is the single source. :func:`generate` writes ``notebooks/NN_name.ipynb`` with every
``### BEGIN SOLUTION`` … ``### END SOLUTION`` region replaced by a stub raising
:class:`course_utils.unwritten.ExerciseNotWritten` with the exercise's function name and the notebook section
(same indentation), cells tagged ``solution_only`` dropped, and all outputs stripped. The JSON written is
deterministic, so :func:`check_stale` can compare byte for byte.

Command line::

    python -m course_utils.authoring.notebooks generate   # solutions/ -> notebooks/ (make notebooks)
    python -m course_utils.authoring.notebooks check      # exit 1 if notebooks/ is stale or solutions carry outputs
    python -m course_utils.authoring.notebooks strip      # strip outputs of solutions/*.ipynb in place
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import re
import sys
from pathlib import Path

import nbformat

from course_utils.core.paths import SOURCE_ROOT

ROOT = SOURCE_ROOT
"""The repository root (None when the kit is installed from a wheel: there is nothing to generate then)."""
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"
STUB_IMPORT = "from course_utils.unwritten import ExerciseNotWritten  # replace these two lines with your code"
_DEF = re.compile(r"^(\s*)def\s+(\w+)\s*\(")


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


def _stub(indent: str, name: str | None, section: str) -> list[str]:
    """The lines that stand for a solution region: import and raise :class:`ExerciseNotWritten`."""
    return [f"{indent}{STUB_IMPORT}", f"{indent}raise ExerciseNotWritten({name!r}, {section!r})"]


def strip_solution_regions(source: str, section: str = "") -> str:
    """Replace each ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region by a stub raising
    :class:`~course_utils.unwritten.ExerciseNotWritten` with the enclosing function's name and ``section``."""
    lines, out, inside, functions = source.split("\n"), [], False, []
    for number, line in enumerate(lines, 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution region; close it with {END}.")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            enclosing = [name for depth, name in functions if len(depth) < len(indent)]
            out += _stub(indent, enclosing[-1] if enclosing else None, section)
        elif marker == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without a matching {BEGIN}.")
            inside = False
        elif not inside:
            definition = _DEF.match(line)
            if marker and not marker.startswith("#"):
                depth = line[: len(line) - len(line.lstrip())]
                functions = [(d, n) for d, n in functions if len(d) < len(depth)]
            if definition:
                functions.append((definition.group(1), definition.group(2)))
            out.append(line)
    if inside:
        raise ValueError(f"a {BEGIN} region is never closed; add a line {END}.")
    return "\n".join(out)


def _heading(cell) -> str | None:
    """The text of the last Markdown heading in ``cell``, if any."""
    headings = [line.lstrip("#").strip() for line in cell.source.splitlines() if re.match(r"#{1,6}\s", line)]
    return headings[-1] if headings else None


def student_version(nb):
    """The student notebook for a solution notebook (a new object; ``nb`` is not modified)."""
    student = copy.deepcopy(nb)
    student.cells = [cell for cell in student.cells if "solution_only" not in _tags(cell)]
    section = ""
    for cell in student.cells:
        if cell.cell_type == "markdown":
            section = _heading(cell) or section
        elif cell.cell_type == "code":
            cell.source = strip_solution_regions(cell.source, section)
    return clean(student, keep_expected=False)


def dumps(nb) -> str:
    """Deterministic JSON text of a notebook (sorted keys, one-space indent, trailing newline)."""
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4) + "\n"


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    """(solution, student copy) for every ``solutions/NN_*.ipynb`` under ``root``; none found raises."""
    solutions = sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if not solutions:
        raise FileNotFoundError(f"no solutions/NN_*.ipynb under {root}: these tools work on a source checkout of "
                                "the course (pass --root REPOSITORY). With an installed kit, copy the notebooks "
                                "with `course-notebooks copy DEST`.")
    return [(path, root / "notebooks" / path.name) for path in solutions]


def _root(root: str | Path | None) -> Path:
    if root is None:
        raise FileNotFoundError("the kit is not running from a source checkout, so there are no solutions/ to work "
                                "on: pass --root REPOSITORY, or copy the notebooks with `course-notebooks copy DEST`.")
    return Path(root)


def generate(root: str | Path | None = ROOT) -> list[Path]:
    """Write ``notebooks/NN_name.ipynb`` for every ``solutions/NN_name.ipynb``; returns the paths written."""
    root = _root(root)
    (root / "notebooks").mkdir(exist_ok=True)
    written = []
    for source, target in _pairs(root):
        text = dumps(student_version(nbformat.read(source, as_version=4)))
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def check_stale(root: str | Path | None = ROOT) -> list[str]:
    """Problems that ``generate``/``strip`` would fix: stale, missing or orphan notebooks, unstripped solutions.

    Returns one message per problem; an empty list means notebooks/ is exactly what :func:`generate` writes.
    Raises ``FileNotFoundError`` when ``root`` holds no solution notebooks (there is nothing to check).
    """
    root = _root(root)
    problems = []
    for source, target in _pairs(root):
        nb = nbformat.read(source, as_version=4)
        if source.read_text(encoding="utf-8") != dumps(clean(nbformat.read(source, as_version=4))):
            problems.append(f"{source.relative_to(root)} carries outputs or run metadata: run "
                            "`python -m course_utils.authoring.notebooks strip`.")
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
    parser = argparse.ArgumentParser(prog="python -m course_utils.authoring.notebooks",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["generate", "check", "strip"])
    parser.add_argument("paths", nargs="*", help="strip: notebooks to strip (default: solutions/*.ipynb)")
    parser.add_argument("--root", default=ROOT, help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        root = _root(args.root)
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
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("notebooks/ is up to date and solutions/ is stripped.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
