"""The grading report: ``grades.csv``, one Markdown feedback file and one executed notebook per student.

Layout of ``OUT/``: ``grades.csv`` (one row per student, nbgrader-like columns: ``assignment, student_id``,
the points of every exercise, ``score, max_score, status, runtime_s, discussion_words, reason``),
``feedback/<student_id>.md`` and ``executed/<student_id>.ipynb``. The grader owns these three names: it writes
them after every student process has ended, replacing ``feedback/`` and ``executed/`` entirely, so nothing a
notebook wrote there during grading survives.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
from pathlib import Path

from course_utils.grading.rubric import Rubric

FIXED_COLUMNS = ("score", "max_score", "status", "runtime_s", "discussion_words", "reason")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(text: str, limit: int = 300) -> str:
    """``text`` without terminal colour codes, on one line, at most ``limit`` characters."""
    text = " ".join(_ANSI.sub("", text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _points(value: float) -> str:
    return f"{value:g}"


def grades_table(assignment: str, rubric: Rubric, grades) -> str:
    """The CSV text of the grades table."""
    names = [e.name for e in rubric.exercises]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["assignment", "student_id", *names, *FIXED_COLUMNS])
    for g in grades:
        total = round(sum(e.points for e in g.exercises), 2)
        words = "" if g.discussion_words is None else g.discussion_words
        writer.writerow([assignment, g.student_id, *(_points(e.points) for e in g.exercises), _points(total),
                         _points(rubric.max_points), g.status, f"{g.runtime_s:.1f}", words, one_line(g.reason)])
    return buffer.getvalue()


def feedback(assignment: str, rubric: Rubric, grade) -> str:
    """Markdown feedback for one student: score, how the notebook ran, and per exercise what passed or failed."""
    total = round(sum(e.points for e in grade.exercises), 2)
    lines = [f"# Feedback: {assignment}, {grade.student_id}", "",
             f"**Score: {_points(total)} / {_points(rubric.max_points)}** (exercises graded automatically on "
             "hidden test inputs; the discussion is graded by hand).", "",
             "## Running your notebook", "", f"- Status: **{grade.status}** ({one_line(grade.reason, 1000)}).",
             f"- Run time: {grade.runtime_s:.1f} s."]
    if grade.truncated:
        lines.append("- Your notebook printed too much: outputs past the size limit were dropped.")
    if grade.discussion_words is not None:
        lines.append(f"- Discussion: {grade.discussion_words} words (graded by hand).")
    lines += ["", "## Exercises", ""]
    for ex, spec in zip(grade.exercises, rubric.exercises):
        lines.append(f"### `{ex.name}`: {_points(ex.points)} / {_points(ex.max_points)}")
        if spec.description:
            lines.append(f"_{spec.description}_")
        lines.append("")
        if ex.note and not ex.cases:
            lines.append(f"- Not graded: {one_line(ex.note, 1000)}.")
        for case in ex.cases:
            mark = "passed" if case.credit == 1 else ("partly passed" if case.credit > 0 else "failed")
            lines.append(f"- {case.label}: **{mark}**, {one_line(case.message, 1000)}.")
        lines.append("")
    return "\n".join(lines)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _fresh_dir(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def write_report(out: Path, assignment: str, rubric: Rubric, grades) -> None:
    """Write ``grades.csv``, ``feedback/`` and ``executed/`` into ``out`` (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("feedback", "executed"):
        _fresh_dir(out / sub)
    for g in grades:
        _write_atomic(out / "feedback" / f"{g.student_id}.md", feedback(assignment, rubric, g).encode())
        if g.executed is not None:
            _write_atomic(out / "executed" / f"{g.student_id}.ipynb", g.executed)
    _write_atomic(out / "grades.csv", grades_table(assignment, rubric, grades).encode())
