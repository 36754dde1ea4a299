"""The course site (``make book``): the executed notebooks and the pages of ``docs/``, built with Sphinx and myst-nb.

    python -m course_utils.authoring.site                              # build/*.ipynb (make course) -> build/book/
    python -m course_utils.authoring.site --executed build --out build/book

The notebooks are the solution notebooks as ``make course`` executed them in full mode, so the pages show every
figure and the answer keys (cells tagged ``solution_only``, drawn as an "Answer key" box). What is there for the
machinery only is left out: the cell papermill injects (tag ``injected-parameters``) and the marker lines
``### BEGIN SOLUTION``, ``### END SOLUTION`` and ``# NBVAL_CHECK_OUTPUT``. Nothing is executed again.

The site has a sidebar with every page, previous/next links, and equations typeset by a MathJax copy served from
the site itself (``sphinx-mathjax-offline``), so it reads offline. Needs the ``docs`` extra.
"""
from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from course_utils.core.paths import SOURCE_ROOT

NOTEBOOKS = "[0-9][0-9]_*.ipynb"
COURSE_FOLDER = "course"
"""The folder of the site's sources that holds the notebooks (``docs/index.md`` lists it in its toctree)."""
MARKER_LINE = re.compile(r"^[ \t]*(### BEGIN SOLUTION|### END SOLUTION|# NBVAL_CHECK_OUTPUT)[ \t]*(\n|$)", re.M)
CHANGELOG = "CHANGELOG.md"
HIDDEN_TAG, ANSWER_TAG, REMOVE_TAG = "injected-parameters", "solution_only", "remove-cell"


def _default(folder: str) -> Path:
    return (SOURCE_ROOT or Path.cwd()) / folder


def answer_box(source: str) -> str:
    """A Markdown answer key wrapped in a MyST admonition, its fence longer than any backtick run inside."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", source)), default=0))
    return f"{fence}{{admonition}} Answer key\n:class: answer-key\n\n{source}\n{fence}"


def site_page(nb):
    """A copy of an executed notebook as the site shows it: injected parameters removed, marker lines stripped
    from the code, Markdown answer keys boxed (code answer keys keep their ``solution_only`` tag, styled too)."""
    page = copy.deepcopy(nb)
    for cell in page.cells:
        tags = cell.metadata.get("tags", [])
        if HIDDEN_TAG in tags and REMOVE_TAG not in tags:
            cell.metadata["tags"] = [*tags, REMOVE_TAG]
        if cell.cell_type == "code":
            cell.source = MARKER_LINE.sub("", cell.source).rstrip("\n")
        elif cell.cell_type == "markdown" and ANSWER_TAG in tags:
            cell.source = answer_box(cell.source)
    return page


def stage(executed: Path, docs: Path, sources: Path) -> list[str]:
    """Copy ``docs/`` to ``sources``, the ``CHANGELOG.md`` beside it to ``sources/changelog.md``, and every executed
    notebook, as :func:`site_page` shows it, to ``sources/course/``; returns the notebooks' names in course order."""
    shutil.copytree(docs, sources, dirs_exist_ok=True)
    changelog = docs.resolve().parent / CHANGELOG
    if changelog.is_file():
        shutil.copy(changelog, sources / "changelog.md")
    (sources / COURSE_FOLDER).mkdir(exist_ok=True)
    names = sorted(p.name for p in executed.glob(NOTEBOOKS))
    for name in names:
        nbformat.write(site_page(nbformat.read(executed / name, as_version=4)), sources / COURSE_FOLDER / name)
    return names


def not_executed(executed: Path, solutions: Path) -> list[str]:
    """The solution notebooks that have no executed copy (their pages are missing from the site)."""
    return sorted(p.name for p in solutions.glob(NOTEBOOKS) if not (executed / p.name).is_file())


def build(executed: Path, out: Path, docs: Path | None = None) -> list[str]:
    """Build the site into ``out`` (``out/index.html``); returns the notebooks it contains. Raises
    ``RuntimeError`` when Sphinx fails."""
    from sphinx.cmd.build import build_main

    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp:
        sources = Path(tmp) / "src"
        names = stage(executed, docs or _default("docs"), sources)
        status = build_main(["-b", "html", "-q", "-d", str(Path(tmp) / "doctrees"), str(sources), str(out)])
    if status != 0:
        raise RuntimeError(f"sphinx-build failed (exit {status}); its messages are above")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.authoring.site",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--executed", type=Path, default=_default("build"),
                        help="folder of executed notebooks (make course writes build/)")
    parser.add_argument("--out", type=Path, default=_default("build") / "book", help="folder for the site")
    parser.add_argument("--docs", type=Path, default=_default("docs"), help="the site's pages and conf.py")
    args = parser.parse_args(argv)
    if not any(args.executed.glob(NOTEBOOKS)):
        print(f"no executed notebooks in {args.executed}/: run `make course` first.", file=sys.stderr)
        return 2
    if not (args.docs / "conf.py").is_file():
        print(f"no conf.py in {args.docs}/: give the site's sources with --docs.", file=sys.stderr)
        return 2
    try:
        names = build(args.executed, args.out, args.docs)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    missing = not_executed(args.executed, _default("solutions"))
    if missing:
        print(f"not executed, so not on the site: {', '.join(missing)} (run `make course`)", file=sys.stderr)
    print(f"wrote the site with {len(names)} notebook(s) to {args.out}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
