"""End-to-end tests of ``course-grade`` (course_utils.grading) on a class of submissions with known scores.

Most submissions are variants of a tiny stand-in for 08_project_evaluation
(``tests/fixtures/grading/standin_08_solution.ipynb``, the four exercise functions and nothing heavy), graded
against a rubric file (``tests/fixtures/grading/example_rubric.py``: the course's exercises of
08_project_evaluation, given with ``--rubric``) in ONE parallel batch with short
timeouts. Expected scores are derived by hand from the rubric's points and the documented rule: a case earns
its share only if its values are right, and an answer that runs forbidden code earns nothing.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils.grading import cli
from course_utils.grading.extract import definitions, program_for
from course_utils.grading.rubric import close, load_rubric
from course_utils.authoring.notebooks import student_version

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
RUBRIC = FIXTURES / "example_rubric.py"
ASSIGNMENT = "08_project_evaluation"
REAL_SOLUTION = ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"
REAL_STUDENT = ROOT / "notebooks" / f"{ASSIGNMENT}.ipynb"

EXERCISES = [e.name for e in load_rubric(RUBRIC).exercises]
POINTS = {e.name: e.points for e in load_rubric(RUBRIC).exercises}
TIMEOUT_CHECK = 6


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _with_cells(nb, *sources: str):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def _without_self_checks(nb):
    """A student copy whose self-check cells were deleted, so that it runs to the end."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells = [c for c in nb.cells if "self_check" not in c.metadata.get("tags", [])]
    return nb


class Submissions:
    """The fixture class: every kind of submission, the points it must earn per exercise, and its run status."""

    def __init__(self, solution_path: Path, out: Path):
        self.solution = _read(solution_path)
        self.student = student_version(self.solution)
        self.unchecked = _without_self_checks(self.student)
        self.out = out

    def all(self) -> dict[str, tuple[nbformat.NotebookNode, dict[str, float], str]]:
        full, zero = dict(POINTS), dict.fromkeys(POINTS, 0.0)
        return {
            "solution": (self.solution, full, "ok"),
            "untouched": (self.student, zero, "error"),
            "partial": self.partial(),
            "crashing": (_with_cells(self.solution, "def keep_top_k(x, saliency, keep):\n    return 1 / 0",
                                     "import os\nos._exit(3)"),
                         {**full, "keep_top_k": 0.0}, "kernel died"),
            "hanging": (_with_cells(self.solution, "def rise_saliency(probs, masks, p):\n    while True:\n"
                                                   "        pass", "import time\ntime.sleep(3600)"),
                        {**full, "rise_saliency": 0.0}, "timeout"),
            "flood": (_with_cells(self.solution,
                                  "for _ in range(300):\n    print('x' * 100_000)",
                                  "def drop_increase(y, o):\n    print('y' * 10_000_000)\n"
                                  "    return (float(100 * ((y - o).clamp(min=0) / y).mean()),\n"
                                  "            float(100 * (o > y).double().mean()))"),
                      full, "ok"),
            "memory": (_with_cells(self.solution,
                                   "def gradcam_map(activations, gradients):\n    hog = []\n    while True:\n"
                                   "        hog.append(torch.ones(2**24))",
                                   "hog = bytearray(2**40)"),
                       {**full, "gradcam_map": 0.0}, "memory limit"),
            "forbidden": self.forbidden(),
            "tamper_patch": self.tamper_patch(),
            "tamper_files": self.tamper_files(),
            "tamper_rubric": self.tamper_rubric(),
        }

    def partial(self):
        """keep_top_k right; drop_increase not done; gradcam_map weighted by the activations' mean (right shape,
        wrong values: nothing); rise_saliency with a matrix product that only works for 1-D masks (passes 1 of 3
        cases)."""
        nb = _with_cells(self.solution,
                         "def drop_increase(y, o):\n    raise NotImplementedError",
                         "def gradcam_map(activations, gradients):\n"
                         "    w = activations.mean(dim=tuple(range(2, activations.dim())))\n"
                         "    return torch.einsum('nk,nk...->n...', w, activations).relu()",
                         "def rise_saliency(probs, masks, p):\n    return probs @ masks / (masks.shape[0] * p)")
        points = {"keep_top_k": POINTS["keep_top_k"], "drop_increase": 0.0,
                  "gradcam_map": 0.0, "rise_saliency": round(POINTS["rise_saliency"] / 3, 2)}
        return nb, points, "ok"

    def forbidden(self):
        """The solution, but keep_top_k reaches course_utils.metrics through importlib, drop_increase through
        ``__import__`` and ``sys.modules``, and gradcam_map calls the course's reference answer: all refused."""
        cells = ("def keep_top_k(x, saliency, keep):\n    import importlib\n"
                 "    return importlib.import_module('course_utils.metrics').keep_top_k(x, saliency, keep)",
                 "def drop_increase(y, o):\n    import sys\n    __import__('course_utils.metrics')\n"
                 "    metrics = sys.modules['course_utils.metrics']\n    y = y.clone()\n"
                 "    metrics.keep_top_k(y.view(1, 1, -1), y.view(1, -1), 1.0)\n"
                 "    return (float(100 * ((y - o).clamp(min=0) / y).mean()), float(100 * (o > y).double().mean()))",
                 "def gradcam_map(activations, gradients):\n    from course_utils.exercises.attribution import gradcam_map\n"
                 "    return gradcam_map(activations, gradients)")
        points = {**POINTS, "keep_top_k": 0.0, "drop_increase": 0.0, "gradcam_map": 0.0}
        return _with_cells(self.solution, *cells), points, "ok"

    def tamper_patch(self):
        """The student copy plus monkeypatching of every comparison function, at top level and inside the
        functions, which return zeros of the right shape (drop_increase: a tensor instead of two numbers)."""
        patch = ("import numpy, torch\ntorch.allclose = lambda *a, **k: True\ntorch.isclose = lambda a, b, **k: "
                 "torch.ones_like(a, dtype=torch.bool)\nnumpy.allclose = lambda *a, **k: True\n"
                 "torch.Tensor.__eq__ = lambda a, b: True")
        zeros = {"keep_top_k": ("x, saliency, keep", "torch.zeros_like(x)"),
                 "drop_increase": ("y, o", "torch.zeros(2)"),
                 "gradcam_map": ("activations, gradients", "torch.zeros_like(activations[:, 0])"),
                 "rise_saliency": ("probs, masks, p", "torch.zeros(len(probs), *masks.shape[1:])")}
        cells = [patch] + [f"def {name}({args}):\n    torch.allclose = lambda *a, **k: True\n"
                           f"    numpy.allclose = lambda *a, **k: True\n    return {value}"
                           for name, (args, value) in zeros.items()]
        return _with_cells(self.unchecked, *cells), dict.fromkeys(POINTS, 0.0), "ok"

    def tamper_files(self):
        """Writes a fake grades.csv and feedback into its working dir and tries the real report folder (a student
        who guessed the path; the access guard refuses), then deletes every file in its working directory."""
        fake = f"assignment,student_id,score\n{ASSIGNMENT},tamper_files,100\n"
        code = (f"import os, pathlib\nfake = {fake!r}\n"
                f"for folder in (pathlib.Path('.'), pathlib.Path({str(self.out)!r})):\n"
                "    try:\n"
                "        (folder / 'feedback').mkdir(parents=True, exist_ok=True)\n"
                "        (folder / 'grades.csv').write_text(fake)\n"
                "        (folder / 'feedback' / 'tamper_files.md').write_text('Score: 100 / 100')\n"
                "        (folder / 'feedback' / 'solution.md').write_text('Score: 0 / 100')\n"
                "    except OSError as err:\n"
                "        print('blocked:', type(err).__name__)\n"
                "for f in os.listdir('.'):\n"
                "    if os.path.isfile(f):\n        os.remove(f)")
        return _with_cells(self.unchecked, code), dict.fromkeys(POINTS, 0.0), "ok"

    def tamper_rubric(self):
        """Tries to read the hidden rubric (refused) and prints "score: 100"; keep_top_k tries to run the rubric's
        reference at grading time (refused); the others return values cached from the notebook's own run: tensors
        computed at top level (never run by the grader: NameError, nothing) and two literal numbers (wrong values:
        nothing)."""
        top = (f"try:\n    source = open({str(RUBRIC)!r}).read()\nexcept PermissionError as err:\n"
               "    print('blocked:', type(err).__name__)\nprint('score: 100')\n"
               "cached_cam = torch.rand(4, 10)\ncached_rise = torch.rand(3, 40)")
        cheat = ("def keep_top_k(x, saliency, keep):\n    namespace = {}\n"
                 f"    exec(open({str(RUBRIC)!r}).read(), namespace)\n"
                 "    return namespace['keep_top_k'](x, saliency, keep)")
        cached = ("def drop_increase(y, o):\n    return 33.3, 38.5\n"
                  "def gradcam_map(activations, gradients):\n    return cached_cam\n"
                  "def rise_saliency(probs, masks, p):\n    return cached_rise")
        return _with_cells(self.unchecked, top, cheat, cached), dict.fromkeys(POINTS, 0.0), "ok"


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, sandbox_tool):
    """Write every submission (both layouts), grade them all in one parallel run, return (cases, out)."""
    root = tmp_path_factory.mktemp("grading")
    subs, out = root / "submissions", root / "grades"
    subs.mkdir()
    cases = Submissions(FIXTURES / "standin_08_solution.ipynb", out).all()
    for i, (student, (nb, _, _)) in enumerate(cases.items()):
        path = subs / f"{student}.ipynb" if i % 2 else subs / student / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(nb, path)
    (subs / "absent").mkdir()
    (subs / "absent" / "notes.txt").write_text("forgot to upload")
    code = cli.main([str(subs), "--assignment", ASSIGNMENT, "--rubric", str(RUBRIC), "--out", str(out),
                     "--jobs", "3", "--timeout-cell", "30", "--timeout-total", "300",
                     "--timeout-check", str(TIMEOUT_CHECK), "--max-output-bytes", "200000",
                     "--max-memory-mb", "1536", "--secret-seed", "20261122", "--quiet"])
    assert code == 0
    return cases, out


@pytest.mark.parametrize("student", ["solution", "untouched", "partial", "crashing", "hanging", "flood", "memory",
                                     "forbidden", "tamper_patch", "tamper_files", "tamper_rubric"])
def test_each_submission_gets_the_points_its_working_parts_earn(batch, student):
    cases, out = batch
    _, expected, status = cases[student]
    row = _rows(out)[student]
    assert {name: float(row[name]) for name in EXERCISES} == pytest.approx(expected, abs=0.01)
    assert float(row["score"]) == pytest.approx(sum(expected.values()), abs=0.01)
    assert float(row["max_score"]) == sum(POINTS.values())
    assert row["status"] == status, row["reason"]


def test_report_has_one_row_per_student_and_nothing_forged(batch):
    cases, out = batch
    rows = _rows(out)
    assert sorted(rows) == sorted([*cases, "absent"])
    assert (rows["absent"]["status"], float(rows["absent"]["score"])) == ("missing", 0.0)
    assert sorted(p.name for p in (out / "feedback").iterdir()) == sorted(f"{s}.md" for s in [*cases, "absent"])
    assert "Score: 0 / 7" in (out / "feedback" / "tamper_files.md").read_text()
    assert "Score: 7 / 7" in (out / "feedback" / "solution.md").read_text()
    assert sorted(p.name for p in (out / "executed").iterdir()) == sorted(f"{s}.ipynb" for s in cases)


def test_feedback_says_why(batch):
    _, out = batch
    text = {p.stem: p.read_text() for p in (out / "feedback").iterdir()}
    assert "ExerciseNotWritten: exercise" in text["untouched"] and "is not written yet" in text["untouched"]
    assert f"timed out after {TIMEOUT_CHECK} s" in text["hanging"]
    assert "ZeroDivisionError" in text["crashing"]
    assert "PermissionError" in text["tamper_rubric"] and "NameError" in text["tamper_rubric"]
    assert "values differ" in text["partial"]
    assert text["forbidden"].count("which this exercise forbids") >= 3
    assert "your code runs course_utils.metrics," in text["forbidden"]  # absent where the grader runs it
    assert "your code runs course_utils.exercises.attribution," in text["forbidden"]
    assert "Status: **kernel died**" in text["crashing"]


def test_notebooks_cannot_open_the_rubric_or_the_report(batch):
    _, out = batch
    for student in ("tamper_files", "tamper_rubric"):
        assert "blocked: PermissionError" in (out / "executed" / f"{student}.ipynb").read_text()


def test_output_flood_is_truncated_in_the_executed_notebook(batch):
    _, out = batch
    executed = out / "executed" / "flood.ipynb"
    assert executed.stat().st_size < 200_000 + 50_000
    assert "outputs beyond 200000 bytes were dropped" in executed.read_text()
    assert "outputs past the size limit were dropped" in (out / "feedback" / "flood.md").read_text()


def test_executed_notebook_got_the_grading_parameters(batch):
    _, out = batch
    nb = _read(out / "executed" / "solution.ipynb")
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "fast = True" in injected[0].source


def test_discussion_word_count(batch):
    _, out = batch
    # "Keeping 30 % of an MNIST-1D signal ... the class score." counted by hand: 29 words ("%" is not a word).
    assert _rows(out)["solution"]["discussion_words"] == "29"


def test_real_assignment_solution_full_marks_and_student_copy_zero(tmp_path, sandbox_tool):
    """Score-only run (the real notebook takes a minute to execute) of solutions/08_project_evaluation.ipynb and
    the student copy notebooks/08_project_evaluation.ipynb (generated from it when `make notebooks` has not run)."""
    subs = tmp_path / "subs"
    (subs / "student").mkdir(parents=True)
    shutil.copyfile(REAL_SOLUTION, subs / "solution.ipynb")
    if REAL_STUDENT.exists():
        shutil.copyfile(REAL_STUDENT, subs / "student" / f"{ASSIGNMENT}.ipynb")
    else:
        nbformat.write(student_version(_read(REAL_SOLUTION)), subs / "student" / f"{ASSIGNMENT}.ipynb")
    assert cli.main([str(subs), "--assignment", ASSIGNMENT, "--out", str(tmp_path / "out"), "--no-execute",
                     "--jobs", "2", "--quiet"]) == 0
    rows = _rows(tmp_path / "out")
    assert {name: float(rows["solution"][name]) for name in EXERCISES} == POINTS
    assert {name: float(rows["student"][name]) for name in EXERCISES} == dict.fromkeys(POINTS, 0.0)
    assert rows["solution"]["status"] == rows["student"]["status"] == "not run"
    assert "ExerciseNotWritten: exercise keep_top_k()" in (tmp_path / "out" / "feedback" / "student.md").read_text()


def test_extraction_keeps_helpers_and_imports_but_not_side_effects():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nimport torch\nimport os\nSCALE = 2.0\nprint('hi')"),
        nbformat.v4.new_code_cell("torch.allclose = None\ndef helper(t):\n    return t * SCALE"),
        nbformat.v4.new_code_cell("def answer(t):\n    return helper(t) + 1"),
        nbformat.v4.new_code_cell("def answer(t):\n    return torch.relu(helper(t))"),
    ])
    defs, problems = definitions(nb)
    program = program_for("answer", defs)
    assert not problems
    namespace = {}
    exec(program, namespace)
    assert namespace["answer"](torch.tensor([-1.0, 3.0])).tolist() == [0.0, 6.0]
    assert "allclose" not in program and "print" not in program and "import os" not in program
    assert program_for("missing", defs) is None


@pytest.mark.parametrize("got, credit", [
    (torch.tensor([1.0, 2.0]), 1.0),
    (torch.tensor([1.0, 2.5]), 0.0),
    (torch.zeros(2), 0.0),
    (torch.tensor([1.0, 2.0, 3.0]), 0.0),
    ("not a tensor", 0.0),
])
def test_default_check_is_all_or_nothing(got, credit):
    assert close()(got, torch.tensor([1.0, 2.0]))[0] == credit


def test_default_check_on_tuples_needs_every_item():
    assert close()((25.0, 50.0), (25.0, 50.0))[0] == 1.0
    assert close()((25.0, 10.0), (25.0, 50.0))[0] == 0.0
    assert close()(25.0, (25.0, 50.0))[0] == 0.0


def test_hints_name_the_shape_in_the_exercise_terms():
    message = close(what="your weights", terms="(N, K)")(torch.zeros(2, 5, 1), torch.zeros(2, 5))[1]
    assert message == "your weights: shape (2, 5, 1), expected (N, K) = (2, 5)"


def test_a_wrong_type_hint_names_the_shape_once():
    from course_utils.exercises import ASSIGNMENTS, exercise

    message = exercise("perturb").check("a string", torch.zeros(2, 1, 5))[1]
    assert message == "your perturbed input: expected a tensor shaped like x, (N, C, *s) = (2, 1, 5), got a str"
    for ex in {e for exercises in ASSIGNMENTS.values() for e in exercises}:
        assert "shaped shaped" not in ex.check("a string", torch.zeros(2, 3))[1], ex.name


def test_bad_command_lines_fail_with_a_clear_message(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nope"), "--assignment", ASSIGNMENT, "--rubric", str(RUBRIC),
                     "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "a.ipynb").write_text("{}")
    assert cli.main([str(tmp_path), "--assignment", ASSIGNMENT, "--rubric", str(tmp_path / "none.py"),
                     "--out", str(tmp_path / "o")]) == 2
    assert "rubric file" in capsys.readouterr().err


@pytest.mark.parametrize("failures, status", [(0, "ok"), (2, "ok"), (3, "error")])
def test_a_kernel_that_dies_before_kernel_info_is_started_again(monkeypatch, tmp_path, failures, status):
    """No cell has run when a kernel dies before answering kernel_info, so the runner starts it again (up to
    KERNEL_START_ATTEMPTS times) instead of reporting the student's notebook as failing; a notebook whose
    kernel never starts still reports an error, saying so."""
    import argparse

    import papermill

    from course_utils.grading import run_notebook

    calls = []

    def execute(*args, **kwargs):
        calls.append(kwargs["engine_name"])
        if len(calls) <= failures:
            raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    args = argparse.Namespace(input=str(tmp_path / "in.ipynb"), output=str(tmp_path / "out.ipynb"), parameters="{}",
                              timeout_cell=5.0, max_output_bytes=1000)
    outcome = run_notebook.run(args)
    assert outcome["status"] == status and len(calls) == min(failures + 1, run_notebook.KERNEL_START_ATTEMPTS)
    if status == "error":
        assert "kernel_info" in outcome["reason"] and "started 3 times" in outcome["reason"]
