"""A static HTML preview of the course (``make book``): the executed solution notebooks rendered with nbconvert.

    python -m course_utils.book                          # build/*.ipynb (from `make course`) -> build/book/
    python -m course_utils.book --executed build --out build/book

Each executed notebook becomes one HTML page with its figures embedded (instructor answer keys included: the
pages are rendered from ``solutions/``), and ``index.html`` lists the pages in course order with each notebook's
title and stated run time. Run ``make course`` first; a notebook of ``solutions/`` missing from the executed
folder is listed as missing rather than rendered. Needs nbconvert (the ``docs`` extra).
"""
from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat

from course_utils.authoring.notebooks import ROOT

RUN_TIME = re.compile(r"\*\*Expected run time:\*\*\s*(.+? in full mode)")


def describe(nb) -> tuple[str, str]:
    """(title, stated run time) of a notebook: its first ``# heading`` and its ``**Expected run time:**`` line."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), "(untitled)")
    run_time = RUN_TIME.search(text)
    return title, run_time.group(1).strip() if run_time else ""


def render(executed: Path, out: Path) -> list[Path]:
    """Write ``out/<name>.html`` for every executed notebook and ``out/index.html``; returns the pages written."""
    from nbconvert import HTMLExporter

    names = [p.name for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))]
    names += sorted(p.name for p in executed.glob("[0-9][0-9]_*.ipynb") if p.name not in names)
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    pages, rows = [], []
    for name in names:
        source = executed / name
        if not source.is_file():
            rows.append(f"<li>{html.escape(name)}: not executed — run <code>make course</code></li>")
            continue
        nb = nbformat.read(source, as_version=4)
        title, run_time = describe(nb)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        page = out / f"{source.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        rows.append(f'<li><a href="{page.name}">{html.escape(title)}</a>'
                    + (f" — {html.escape(run_time)}" if run_time else "") + "</li>")
    index = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Visual explanations for CNNs — the "
             "course</title></head>\n<body><h1>Visual explanations for CNNs — the course</h1>\n<p>The solution "
             "notebooks as executed by <code>make course</code> (answer keys included).</p>\n<ol>\n"
             + "\n".join(rows) + "\n</ol></body></html>\n")
    (out / "index.html").write_text(index, encoding="utf-8")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.book", description=__doc__.split("\n")[0])
    parser.add_argument("--executed", default=str(ROOT / "build"), help="folder of executed notebooks (make course)")
    parser.add_argument("--out", default=str(ROOT / "build" / "book"), help="folder for the HTML pages")
    args = parser.parse_args(argv)
    executed = Path(args.executed)
    if not any(executed.glob("[0-9][0-9]_*.ipynb")):
        print(f"no executed notebooks in {executed}/: run `make course` first.", file=sys.stderr)
        return 2
    pages = render(executed, Path(args.out))
    print(f"wrote {len(pages)} page(s) and index.html to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
