"""``course-grade`` keeps every grade in its gradebook: a killed grader resumes where it stopped, with no student
process left behind, and its report equals an uninterrupted run's.

The class is tiny (04_cam_gradcam, one exercise, graded with its built-in rubric, notebooks not executed) so that
a whole grading costs a few function runners. The oracle for the resumed report is an uninterrupted run of the
same command with the same ``--secret-seed``.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from course_utils.grading import cli, run_notebook, sandbox
from course_utils.grading.status import Status

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "04_cam_gradcam"
SEED = "20261204"
RIGHT = "import torch\n\ndef gradcam_weights(gradients):\n    return gradients.flatten(2).mean(2)\n"
STUDENTS = {  # graded in this order (--jobs 1): absent, bob, broken, cat, dan
    "bob": "def gradcam_weights(gradients):\n    return gradients.flatten(2).sum(2)\n",
    "cat": "import time\n\ndef gradcam_weights(gradients):\n    time.sleep(120)\n",
    "dan": RIGHT,
}
OPTIONS = ["--assignment", ASSIGNMENT, "--no-execute", "--jobs", "1", "--timeout-check", "4",
           "--secret-seed", SEED, "--quiet", "--unsandboxed"]


def _notebook(source: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])


def _write_class(subs: Path, students: dict[str, str]) -> None:
    subs.mkdir(parents=True)
    for student, source in students.items():
        nbformat.write(_notebook(source), subs / f"{student}.ipynb")
    (subs / "absent").mkdir()
    (subs / "broken.ipynb").write_text("not a notebook")


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student_id"]: {k: v for k, v in r.items() if k != "runtime_s"} for r in csv.DictReader(f)}


def _feedback(out: Path) -> dict[str, str]:
    return {p.name: "\n".join(line for line in p.read_text().splitlines() if not line.startswith("- Run time"))
            for p in (out / "feedback").iterdir()}


def _recorded(out: Path) -> int:
    try:
        with sqlite3.connect(f"file:{out / 'gradebook.sqlite'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM grades").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def _sessions(out: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{out / 'gradebook.sqlite'}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT student_id, session FROM grades"))


class Descendants(threading.Thread):
    """Notes every process below ``pid`` while it runs (what the test later requires to be gone)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root, self.seen, self.stop = psutil.Process(pid), {}, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                for p in self.root.children(recursive=True):
                    self.seen.setdefault(p.pid, p)
            except psutil.Error:
                return
            time.sleep(0.05)

    def runners(self) -> list[psutil.Process]:
        found = []
        for p in self.seen.values():
            try:
                if p.is_running() and "course_utils.grading.runner" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.Error:
                pass
        return found


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """An uninterrupted grading; the same grading SIGKILLed while it runs ``cat``'s function (3 grades recorded),
    then run again. Returns (folder, what the resumed run printed, processes left alive after the kill)."""
    root, here = tmp_path_factory.mktemp("gradebook"), Path.cwd()
    subs = root / "submissions"
    _write_class(subs, STUDENTS)
    os.chdir(root)  # the graders below run here: the same ./data parameter
    try:
        assert cli.main([str(subs), "--out", str(root / "uninterrupted"), *OPTIONS]) == 0
    finally:
        os.chdir(here)

    out = root / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    grader = subprocess.Popen([sys.executable, "-m", "course_utils.grading", str(subs), "--out", str(out),
                               *OPTIONS], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watcher = Descendants(grader.pid)
    watcher.start()
    deadline = time.monotonic() + 240
    try:
        while not (_recorded(out) >= 3 and watcher.runners()):
            assert grader.poll() is None, f"the grader ended before it was killed: {grader.stderr.read()}"
            assert time.monotonic() < deadline, "the grader never reached cat's function"
            time.sleep(0.05)
        assert _recorded(out) == 3  # absent, bob, broken: cat's runner is in flight
        grader.send_signal(signal.SIGKILL)
        grader.wait()
    finally:
        if grader.poll() is None:
            grader.kill()
            grader.wait()
        watcher.stop.set()
        watcher.join()
    _, alive = psutil.wait_procs(list(watcher.seen.values()), timeout=10)
    for p in alive:  # do not leave them to the next tests, whatever the outcome
        p.kill()

    printed = subprocess.run([sys.executable, "-m", "course_utils.grading", str(subs), "--out", str(out),
                              *OPTIONS], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0, printed.stderr
    return root, printed.stdout, alive


def test_a_killed_grader_leaves_no_student_process(killed_and_resumed):
    _, _, alive = killed_and_resumed
    assert alive == []


def test_the_resumed_grading_grades_only_what_was_missing(killed_and_resumed):
    root, printed, _ = killed_and_resumed
    assert "graded 2 submission(s) now, 3 already in the gradebook" in printed
    sessions = _sessions(root / "killed")
    assert sorted(s for s, n in sessions.items() if n == 2) == ["cat", "dan"]
    assert sorted(s for s, n in sessions.items() if n == 1) == ["absent", "bob", "broken"]


def test_the_resumed_report_equals_an_uninterrupted_run(killed_and_resumed):
    root, _, _ = killed_and_resumed
    got, expected = _rows(root / "killed"), _rows(root / "uninterrupted")
    assert got == expected
    assert {s: (r["status"], r["score"]) for s, r in got.items()} == {
        "absent": ("missing", "0"), "bob": ("not run", "0"),
        "broken": ("invalid", "0"), "cat": ("not run", "0"), "dan": ("not run", "2")}
    assert _feedback(root / "killed") == _feedback(root / "uninterrupted")
    assert "timed out after 4 s" in (root / "killed" / "feedback" / "cat.md").read_text()


def test_a_changed_notebook_is_graded_again_and_nothing_else(killed_and_resumed, capsys, monkeypatch):
    root, _, _ = killed_and_resumed
    monkeypatch.chdir(root)  # where the command ran: the same ./data parameter
    subs = root / "submissions"
    nbformat.write(_notebook(STUDENTS["bob"].replace("sum(2)", "mean(2)")), subs / "bob.ipynb")
    assert cli.main([str(subs), "--out", str(root / "killed"), *OPTIONS]) == 0
    assert "graded 1 submission(s) now, 4 already in the gradebook" in capsys.readouterr().out
    assert [s for s, n in _sessions(root / "killed").items() if n == 3] == ["bob"]
    assert _rows(root / "killed")["bob"]["score"] == "2"


@pytest.fixture
def no_runner_class(tmp_path):
    """A class whose submissions need no student process: one missing, one unreadable."""
    subs = tmp_path / "submissions"
    _write_class(subs, {})
    return subs


def _grade(subs: Path, out: Path, *options: str) -> int:
    return cli.main([str(subs), "--out", str(out), "--assignment", ASSIGNMENT, "--quiet", *options])


def test_a_resume_with_another_seed_or_mode_is_refused_and_regrade_starts_over(no_runner_class, tmp_path, capsys):
    out = tmp_path / "out"
    assert _grade(no_runner_class, out, "--unsandboxed", "--secret-seed", "1") == 0
    assert "graded 2 submission(s) now, 0 already" in capsys.readouterr().out
    assert _grade(no_runner_class, out, "--unsandboxed") == 0  # the gradebook's seed
    assert "graded 0 submission(s) now, 2 already" in capsys.readouterr().out
    assert _grade(no_runner_class, out, "--unsandboxed", "--secret-seed", "2") == 2
    err = capsys.readouterr().err
    assert "another --secret-seed." in err and "--regrade" in err
    assert _grade(no_runner_class, out, "--secret-seed", "1") == 2
    assert "another sandbox mode (--unsandboxed)" in capsys.readouterr().err
    assert _grade(no_runner_class, out, "--unsandboxed", "--timeout-check", "5") == 2
    assert "another --timeout-check" in capsys.readouterr().err
    assert _grade(no_runner_class, out, "--unsandboxed", "--secret-seed", "2", "--regrade") == 0
    assert "graded 2 submission(s) now, 0 already" in capsys.readouterr().out


def test_without_a_sandbox_tool_the_grader_refuses_unless_unsandboxed(no_runner_class, tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_tool", lambda: None, raising=False)
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: None)
    assert _grade(no_runner_class, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "sudo apt-get install bubblewrap" in err and "macOS" in err and "--unsandboxed" in err
    assert not (tmp_path / "out").exists()
    assert _grade(no_runner_class, tmp_path / "out", "--unsandboxed") == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["mode"] == "unsandboxed"
    assert "Grading mode: unsandboxed" in (tmp_path / "out" / "feedback" / "absent.md").read_text()


def test_the_report_records_the_sandbox_tool(no_runner_class, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_tool", lambda: "/usr/bin/bwrap", raising=False)
    assert _grade(no_runner_class, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["mode"] == "sandboxed (bwrap)"
    assert report["statuses"] == {"invalid": 1, "missing": 1} and report["students"] == 2


def test_report_files_replace_links_instead_of_writing_through_them(no_runner_class, tmp_path):
    victim = tmp_path / "victim"
    (victim / "dir").mkdir(parents=True)
    (victim / "file.csv").write_text("precious\n")
    (victim / "dir" / "absent.md").write_text("precious too\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").symlink_to(victim / "file.csv")
    (out / "feedback").symlink_to(victim / "dir", target_is_directory=True)
    (out / "executed").symlink_to(victim / "dir", target_is_directory=True)
    assert _grade(no_runner_class, out, "--unsandboxed") == 0
    assert (victim / "file.csv").read_text() == "precious\n"
    assert sorted(p.name for p in (victim / "dir").iterdir()) == ["absent.md"]
    assert (victim / "dir" / "absent.md").read_text() == "precious too\n"
    assert not (out / "grades.csv").is_symlink() and "absent" in (out / "grades.csv").read_text()
    assert not (out / "feedback").is_symlink() and (out / "feedback" / "broken.md").is_file()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_a_linked_gradebook_is_refused(no_runner_class, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere.sqlite").write_bytes(b"")
    (out / "gradebook.sqlite").symlink_to(tmp_path / "elsewhere.sqlite")
    assert _grade(no_runner_class, out, "--unsandboxed") == 2
    assert "is not a regular file" in capsys.readouterr().err


def test_a_rubric_file_overrides_the_built_in_rubric(no_runner_class, tmp_path):
    rubric = tmp_path / "five_points.py"
    rubric.write_text("import dataclasses\nfrom course_utils.exercises import exercises_of\n"
                      "from course_utils.grading.rubric import Rubric\n"
                      "(weights,) = exercises_of('04_cam_gradcam')\n"
                      "RUBRIC = Rubric('04_cam_gradcam', [dataclasses.replace(weights, points=5)])\n")
    assert _grade(no_runner_class, tmp_path / "builtin", "--unsandboxed") == 0
    assert _grade(no_runner_class, tmp_path / "custom", "--unsandboxed", "--rubric", str(rubric)) == 0
    assert _rows(tmp_path / "builtin")["absent"]["max_score"] == "2"
    assert _rows(tmp_path / "custom")["absent"]["max_score"] == "5"


def test_an_assignment_without_exercises_needs_a_rubric_file(no_runner_class, tmp_path, capsys):
    assert cli.main([str(no_runner_class), "--assignment", "99_mine", "--out", str(tmp_path / "o"),
                     "--unsandboxed"]) == 2
    err = capsys.readouterr().err
    assert "99_mine" in err and "--rubric FILE" in err


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":mod:" not in text and ":func:" not in text
    assert "--unsandboxed" in text and "--regrade" in text and "sudo apt-get install bubblewrap" in text


def test_statuses_are_one_enum_with_the_words_of_the_notebook_runner():
    words = [run_notebook.STATUS_OK, run_notebook.STATUS_ERROR, run_notebook.STATUS_TIMEOUT,
             run_notebook.STATUS_KERNEL_DIED, run_notebook.STATUS_MEMORY]
    assert [Status(w) for w in words] == [Status.OK, Status.ERROR, Status.TIMEOUT, Status.KERNEL_DIED,
                                          Status.MEMORY]
    assert Status.GRADER_ERROR == "grader error" and f"{Status.NOT_RUN}" == "not run"
    assert [s for s in Status if s.ran_cleanly] == [Status.OK, Status.NOT_RUN]


def test_the_gradebook_keeps_a_grade_until_its_notebook_changes_and_tries_grader_errors_again(tmp_path):
    from course_utils.grading.gradebook import Gradebook
    from course_utils.grading.score import CaseResult, ExerciseScore
    from course_utils.grading.submission import Grade

    scores = [ExerciseScore("gradcam_weights", 2.0, [CaseResult("case 1", 1.0, "correct"),
                                                      CaseResult("case 2", 0.0, "values differ")])]
    ok = Grade("ann", scores, Status.OK, "ran to the end", 1.25, 29, True, b"{executed}")
    lost = Grade("bob", [ExerciseScore("gradcam_weights", 2.0)], Status.GRADER_ERROR, "worker lost", 0.0)
    with Gradebook(tmp_path) as book:
        book.begin({"secret_seed": 1})
        book.record(ok, "a" * 64)
        book.record(lost, "b" * 64)
    with Gradebook(tmp_path) as book:  # what a new process finds
        book.begin({"secret_seed": 1})
        assert not book.needs_grading("ann", "a" * 64)
        assert book.needs_grading("ann", "c" * 64) and book.needs_grading("bob", "b" * 64)
        assert book.needs_grading("cat", None)
        assert book.grades(["ann"]) == [ok]
        assert book.grades(["ann"])[0].exercises[0].points == 1.0
