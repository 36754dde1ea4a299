"""The grading report, written from the gradebook: ``grades.csv``, feedback and executed notebooks, ``report.json``.

Layout of ``OUT/``: ``grades.csv`` (one row per student, nbgrader-like columns: ``assignment, student_id``,
the points of every exercise, ``score, max_score, status, runtime_s, discussion_words, reason``),
``feedback/<student_id>.md``, ``executed/<student_id>.ipynb``, ``report.json`` (the assignment, the sandbox
mode that graded the class, counts per status) and ``gradebook.sqlite``
(:mod:`course_utils.grading.gradebook`). The grader owns these names: it writes them after every student
process has ended, each file through a new temporary file renamed into place and without following symbolic
links, and replaces ``feedback/`` and ``executed/`` whole, so nothing else written there survives.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
from collections import Counter
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


def feedback(assignment: str, rubric: Rubric, grade, mode: str) -> str:
    """Markdown feedback for one student: score, how the notebook ran (and in which sandbox mode), and per
    exercise what passed or failed."""
    total = round(sum(e.points for e in grade.exercises), 2)
    lines = [f"# Feedback: {assignment}, {grade.student_id}", "",
             f"**Score: {_points(total)} / {_points(rubric.max_points)}** (exercises graded automatically on "
             "hidden test inputs; the discussion is graded by hand).", "",
             "## Running your notebook", "", f"- Status: **{grade.status}** ({one_line(grade.reason, 1000)}).",
             f"- Run time: {grade.runtime_s:.1f} s.", f"- Grading mode: {mode}."]
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


def _open_dir(path: Path, parent: int | None = None) -> int:
    """A descriptor of the directory ``path`` (relative to ``parent``), refusing a symbolic link."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)


def _write_atomic(directory: int, name: str, data: bytes) -> None:
    """Write ``name`` in the open ``directory``: a new file (never an existing one or a link's target), synced,
    then renamed over ``name`` (a link there is replaced, not followed)."""
    temp = f".{name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        os.unlink(temp, dir_fd=directory)
        raise


def _replace_dir(out: int, name: str, files: dict[str, bytes]) -> None:
    """Make ``out/name`` a new directory holding exactly ``files``: built under a temporary name, then swapped
    in; whatever was at ``name`` before (a directory, a file, a link) is removed, never followed."""
    new = f".{name}.{os.urandom(6).hex()}.new"
    os.mkdir(new, 0o777, dir_fd=out)
    fd = _open_dir(new, out)
    try:
        for file, data in files.items():
            _write_atomic(fd, file, data)
    finally:
        os.close(fd)
    old = f".{name}.{os.urandom(6).hex()}.old"
    try:
        was_dir = stat.S_ISDIR(os.lstat(name, dir_fd=out).st_mode)
        os.rename(name, old, src_dir_fd=out, dst_dir_fd=out)
    except FileNotFoundError:
        was_dir = None
    os.rename(new, name, src_dir_fd=out, dst_dir_fd=out)
    if was_dir:
        shutil.rmtree(old, dir_fd=out)
    elif was_dir is not None:
        os.unlink(old, dir_fd=out)


def write_report(out: Path, assignment: str, rubric: Rubric, grades, mode: str,
                 graded_now: int | None = None) -> None:
    """Write ``grades.csv``, ``feedback/``, ``executed/`` and ``report.json`` into ``out`` (see the module
    docstring); ``mode`` says how the class was graded, ``graded_now`` how many grades this run made."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)  # the folder the instructor named, a link or not
    try:
        _replace_dir(fd, "feedback", {f"{g.student_id}.md": feedback(assignment, rubric, g, mode).encode()
                                           for g in grades})
        _replace_dir(fd, "executed", {f"{g.student_id}.ipynb": g.executed for g in grades
                                           if g.executed is not None})
        summary = {"assignment": assignment, "mode": mode, "students": len(grades),
                   "graded_by_this_run": graded_now, "max_score": rubric.max_points,
                   "statuses": dict(sorted(Counter(str(g.status) for g in grades).items()))}
        _write_atomic(fd, "report.json", (json.dumps(summary, indent=1) + "\n").encode())
        _write_atomic(fd, "grades.csv", grades_table(assignment, rubric, grades).encode())
    finally:
        os.close(fd)
