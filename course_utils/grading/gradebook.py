"""The gradebook: every grade recorded the moment it is made, in ``OUT/gradebook.sqlite`` (stdlib ``sqlite3``).

One transaction per graded submission (write-ahead log, each commit synced), so a grader that is killed —
a laptop lid, an out-of-memory kill, a SLURM walltime — loses only the submissions it was grading. Each row
keeps the student's grade, the executed notebook and the SHA-256 of the notebook bytes it graded; a run
of the same command again grades only the students without a row, those whose notebook changed since, and
those the grader failed on (status "grader error"). The report (:mod:`course_utils.grading.report`) is
written from the gradebook.

The gradebook also keeps what its grades were made with (:func:`identity`): the assignment, the secret seed,
a fingerprint of the rubric's checks and held-out cases, the sandbox mode and the options that change a
grade. A resume with other values is refused (:class:`GradebookMismatch`) rather than mixing two gradings in
one report; ``--regrade`` starts the gradebook over. The secret seed is stored here in the clear: keep the
output folder as private as the rubric.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path

import torch

from course_utils.grading.score import CaseResult, ExerciseScore, HeldOut
from course_utils.grading.status import Status
from course_utils.grading.submission import Grade, Settings

FILE = "gradebook.sqlite"
SCHEMA = 1

_OPTION_NAMES = {"assignment": "--assignment", "secret_seed": "--secret-seed", "rubric": "rubric (its checks or "
                 "its held-out cases)", "mode": "sandbox mode (--unsandboxed)", "run_notebooks": "--no-execute",
                 "timeout_cell": "--timeout-cell", "timeout_total": "--timeout-total",
                 "timeout_check": "--timeout-check", "max_output_bytes": "--max-output-bytes",
                 "memory_bytes": "--max-memory-mb", "parameters": "notebook parameters (--seed, --data-dir, "
                 "--hmt-dir)"}


class GradebookMismatch(ValueError):
    """The gradebook holds grades made with other settings than this run's."""


def _canonical(value):
    """``value`` as JSON-able data that is equal for equal values: floats to 6 significant digits, so that the
    last bits of a reference computed in another order do not count as another rubric."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        return ["tensor", str(t.dtype), list(t.shape), [_canonical(v) for v in t.flatten().tolist()]]
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    text = repr(value)
    return type(value).__qualname__ if " at 0x" in text else text


def _check_identity(check) -> list:
    cells = [c.cell_contents for c in (getattr(check, "__closure__", None) or ())]
    return [getattr(check, "__module__", ""), getattr(check, "__qualname__", type(check).__qualname__),
            _canonical([c for c in cells if c is None or isinstance(c, (bool, int, float, str))])]


def rubric_fingerprint(held: list[HeldOut]) -> str:
    """SHA-256 of what decides the points: each exercise's name, points, check, harness and forbidden code, and
    its held-out cases with the reference outputs (to 6 significant digits)."""
    data = [[h.exercise.name, float(h.exercise.points), _check_identity(h.exercise.check),
             h.exercise.harness_name, list(h.exercise.forbidden), h.exercise.description,
             [[c.label, _canonical(c.args)] for c in h.cases], _canonical(h.expected)] for h in held]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def identity(settings: Settings, held: list[HeldOut], seed: int, mode: str) -> dict:
    """What a grade depends on besides the notebook: compared on every resume."""
    return {"assignment": settings.assignment, "secret_seed": seed, "rubric": rubric_fingerprint(held),
            "mode": mode, "run_notebooks": settings.run_notebooks, "timeout_cell": settings.timeout_cell,
            "timeout_total": settings.timeout_total, "timeout_check": settings.timeout_check,
            "max_output_bytes": settings.max_output_bytes, "memory_bytes": settings.memory_bytes,
            "parameters": settings.parameters}


def notebook_sha256(path: Path | None) -> str | None:
    """SHA-256 of a notebook's bytes (None for a missing submission)."""
    return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


def _grade_json(grade: Grade) -> str:
    data = asdict(grade)
    del data["executed"]
    return json.dumps(data)


def _grade_from(text: str, executed: bytes | None) -> Grade:
    data = json.loads(text)
    exercises = [ExerciseScore(e["name"], e["max_points"], [CaseResult(**c) for c in e["cases"]], e["note"])
                 for e in data["exercises"]]
    return Grade(data["student_id"], exercises, Status(data["status"]), data["reason"], data["runtime_s"],
                 data["discussion_words"], data["truncated"], executed)


class Gradebook:
    """``OUT/gradebook.sqlite``: the run's identity and one row per graded submission. Use it from one thread."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / FILE
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise ValueError(f"{self.path} is not a regular file; remove it (the grader keeps its grades there).")
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS grades (student_id TEXT PRIMARY KEY, "
                             "notebook_sha256 TEXT, status TEXT NOT NULL, grade TEXT NOT NULL, executed BLOB, "
                             "session INTEGER NOT NULL, graded_at REAL NOT NULL)")
        schema = self._get("schema")
        if schema is not None and schema != SCHEMA:
            raise ValueError(f"{self.path} was written by another version of the grader (schema {schema}); "
                             "grade into another --out, or pass --regrade.")
        self.session: int | None = None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        db = self._db

        class Transaction:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, *_):
                db.execute("COMMIT" if kind is None else "ROLLBACK")
        return Transaction()

    def _get(self, key: str):
        row = self._db.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def stored_identity(self) -> dict | None:
        """The identity the recorded grades were made with (None for a new gradebook)."""
        return self._get("identity")

    def begin(self, ident: dict, regrade: bool = False) -> None:
        """Start a grading session with identity ``ident``: a new gradebook, a resume (refused with
        :class:`GradebookMismatch` if ``ident`` differs from the stored one), or with ``regrade`` a fresh start."""
        stored = self.stored_identity()
        if stored is not None and not regrade and stored != ident:
            differ = [k for k in ident if stored.get(k) != ident[k]]
            if "secret_seed" in differ:  # other cases, other references: the rubric is not to blame
                differ = [k for k in differ if k != "rubric"]
            differ = [_OPTION_NAMES.get(k, k) for k in differ]
            raise GradebookMismatch(
                f"{self.path} holds grades made with another {', '.join(differ)}. Run with the same options to "
                "finish that grading, add --regrade to grade every submission again with these, or choose "
                "another --out.")
        with self._transaction():
            if regrade or stored is None:
                self._db.execute("DELETE FROM grades")
            self._db.execute("INSERT OR REPLACE INTO run VALUES ('schema', ?)", (json.dumps(SCHEMA),))
            self._db.execute("INSERT OR REPLACE INTO run VALUES ('identity', ?)", (json.dumps(ident),))
            self.session = (self._get("sessions") or 0) + 1
            self._db.execute("INSERT OR REPLACE INTO run VALUES ('sessions', ?)", (json.dumps(self.session),))

    def needs_grading(self, student_id: str, sha256: str | None) -> bool:
        """True unless a grade of exactly these notebook bytes is recorded (grader errors are tried again)."""
        row = self._db.execute("SELECT notebook_sha256, status FROM grades WHERE student_id = ?",
                               (student_id,)).fetchone()
        return row is None or row[0] != sha256 or row[1] == Status.GRADER_ERROR

    def record(self, grade: Grade, sha256: str | None) -> None:
        """Store ``grade`` (of the notebook with these bytes), durably, in one transaction."""
        if self.session is None:
            raise RuntimeError("call begin() before recording grades")
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO grades VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (grade.student_id, sha256, str(grade.status), _grade_json(grade), grade.executed,
                              self.session, time.time()))

    def grades(self, student_ids: list[str]) -> list[Grade]:
        """The recorded grades of ``student_ids``, in that order (every one must be recorded)."""
        result = []
        for student in student_ids:
            row = self._db.execute("SELECT grade, executed FROM grades WHERE student_id = ?", (student,)).fetchone()
            if row is None:
                raise KeyError(f"no grade recorded for {student!r}")
            result.append(_grade_from(row[0], row[1]))
        return result

    def graded_in_session(self, session: int | None = None) -> list[str]:
        """The students graded in ``session`` (default: this one), sorted."""
        session = self.session if session is None else session
        rows = self._db.execute("SELECT student_id FROM grades WHERE session = ? ORDER BY student_id", (session,))
        return [r[0] for r in rows]

