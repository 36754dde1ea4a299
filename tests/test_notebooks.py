"""The course notebooks: generated copies up to date, structure per the contract, student copies runnable.

The solution notebooks themselves are executed by nbval in fast mode (``--nbval-lax``, configured in
``pyproject.toml`` and ``solutions/conftest.py``): cells marked ``# NBVAL_CHECK_OUTPUT`` must print exactly the
expected text stored in their metadata (values derived by hand: dataset sizes, parameter counts, identities,
self-check verdicts). Here, every student notebook runs top to bottom in fast mode with its exercises unwritten:
the self-checks report them as not done, and the cells that need them go on with the course's references.
"""
import ast
import logging
import re
from pathlib import Path

import nbformat
import pytest
from papermill.translators import PythonTranslator

from course_utils.authoring.course import KERNEL, KERNEL_ARGUMENTS, kernel_problem
from course_utils.authoring.notebooks import BEGIN, CHECK_OUTPUT, END, check_stale, expected_outputs, strip_solution_regions
from course_utils.widgets import HEADLESS_ENV

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
STUDENT = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PARAMETERS = {"seed", "fast", "device", "data_dir", "hmt_dir"}
ABSOLUTE_PATH = re.compile(r"""["'](/(home|Users|work|tmp|root|mnt|content)\b|[A-Za-z]:\\|~/)""")
EXECUTION_TIMEOUT_S = 600
QUESTIONS = re.compile(r"\*\*(To think about|Questions|Questions to think about)\.\*\*")
EXPECTED_TIME = re.compile(r"\*\*Expected run time:\*\* (about|over) [0-9.]+ (s|min) in full mode")


def ids(paths):
    return [p.stem for p in paths]


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _next_code_cell(nb, k):
    """Index of the first code cell after cell ``k`` (markdown may sit between), or None."""
    return next((j for j in range(k + 1, len(nb.cells)) if nb.cells[j].cell_type == "code"), None)


def stdout_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.output_type == "stream" and o.name == "stdout")


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    monkeypatch.setenv(HEADLESS_ENV, "1")


def test_notebooks_are_generated_from_solutions():
    assert SOLUTIONS, "no solutions/NN_name.ipynb found"
    assert check_stale(REPO) == []
    assert [p.name for p in STUDENT] == [p.name for p in SOLUTIONS]


def test_python3_kernel_runs_this_environment():
    assert kernel_problem(KERNEL) is None


@pytest.mark.parametrize("path", SOLUTIONS + STUDENT, ids=[f"solutions/{p.stem}" for p in SOLUTIONS]
                         + [f"notebooks/{p.stem}" for p in STUDENT])
def test_structure(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = code_cells(nb)
    assert "parameters" in tags(cells[0]), "the first code cell must be tagged 'parameters'"
    assigned = {t.id for node in ast.parse(cells[0].source).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert PARAMETERS <= assigned, f"the parameters cell lacks {sorted(PARAMETERS - assigned)}"
    assert 'seed = env_default("COURSE_SEED", 0)' in cells[0].source, "the parameters cell must read COURSE_SEED"
    inferred = {p.name for p in PythonTranslator.inspect(cells[0])}
    assert PARAMETERS <= inferred, f"papermill cannot parse {sorted(PARAMETERS - inferred)} (no '=' in comments)"
    for k, cell in enumerate(nb.cells):
        if "exercise" in tags(cell):
            following = _next_code_cell(nb, k)
            assert following is not None and "self_check" in tags(nb.cells[following]), \
                f"the code cell after exercise cell {k} is not tagged self_check"
            name = ast.parse(strip_solution_regions(cell.source)).body[0].name
            assert f'check_exercise("{name}", {name}, seed=seed)' in nb.cells[following].source, \
                f"the self-check after exercise cell {k} must run the grader's check of {name}"
        source = cell.source
        assert not ABSOLUTE_PATH.search(source), f"cell {k} has an absolute path: {ABSOLUTE_PATH.search(source)}"
        assert "google.colab" not in source and "/content/" not in source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {k} carries outputs"
            if path.parent.name == "solutions" and CHECK_OUTPUT in source:
                assert expected_outputs(cell), \
                    f"cell {k} is marked {CHECK_OUTPUT} but stores no expected output: nbval would not check it"
    text = "".join(c.source for c in nb.cells)
    if path.parent.name == "notebooks":
        assert BEGIN not in text and END not in text
        assert not any("solution_only" in tags(c) for c in nb.cells)
    else:
        exercises = [c for c in nb.cells if "exercise" in tags(c)]
        assert exercises, "a solution notebook needs at least one exercise cell"
        assert all(BEGIN in c.source and END in c.source for c in exercises)


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids(SOLUTIONS))
def test_questions_have_answer_keys_and_the_run_time_is_stated(path):
    nb = nbformat.read(path, as_version=4)
    assert EXPECTED_TIME.search(nb.cells[0].source), \
        "the first cell must state '**Expected run time:** about N min in full mode …' (measured)"
    assert not any(set(c.source) & set("\t\a\b\v\f") for c in nb.cells), "a control character (a lost LaTeX '\\')"
    questions = [k for k, c in enumerate(nb.cells) if c.cell_type == "markdown" and QUESTIONS.search(c.source)]
    for k in questions:
        answer = nb.cells[k + 1] if k + 1 < len(nb.cells) else None
        assert answer is not None and "solution_only" in tags(answer) and "Answer key" in answer.source, \
            f"the questions in cell {k} need an answer key: a 'solution_only' cell right after them"
    student = nbformat.read(REPO / "notebooks" / path.name, as_version=4)
    assert not any("Answer key" in c.source for c in student.cells), "an answer key leaked into the student copy"
    assert len([c for c in student.cells if QUESTIONS.search(c.source)]) == len(questions)


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids(SOLUTIONS))
def test_papermill_parses_the_parameters_cell_without_warnings(path, caplog):
    cell = code_cells(nbformat.read(path, as_version=4))[0]
    with caplog.at_level(logging.WARNING, logger="papermill"):
        PythonTranslator.inspect(cell)
    assert not caplog.records, f"papermill warns: {caplog.records[0].getMessage()} (no '=' in comments)"


def _exercise_names(nb) -> set[str]:
    return {node.name for c in nb.cells if "exercise" in tags(c)
            for node in ast.parse(c.source).body if isinstance(node, ast.FunctionDef)}


def _bare_uses(source: str, names: set[str]) -> list[str]:
    """Calls of an exercise function in ``source`` that neither go through ``answer_or_reference(name)`` nor sit
    under an ``if passed:`` (the self-check's verdict)."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    bare = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load)):
            continue
        parent, guarded = parents.get(node), False
        if isinstance(parent, ast.Call) and getattr(parent.func, "id", None) == "answer_or_reference":
            guarded = True
        ancestor = parent
        while ancestor is not None and not guarded:
            guarded = isinstance(ancestor, ast.If) and "passed" in ast.unparse(ancestor.test)
            ancestor = parents.get(ancestor)
        if not guarded:
            bare.append(f"line {node.lineno}: {node.id}")
    return bare


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids(SOLUTIONS))
def test_cells_after_an_exercise_use_it_through_answer_or_reference(path):
    """Run All never dead-ends on an unwritten exercise: outside its own cell and its self-check, an exercise
    function is used only through ``answer_or_reference`` (or under ``if passed:``)."""
    nb = nbformat.read(path, as_version=4)
    names = _exercise_names(nb)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not {"exercise", "self_check"} & set(tags(cell)):
            bare = _bare_uses(cell.source, names)
            assert not bare, f"cell {k} uses an exercise directly, which dead-ends while it is unwritten: {bare}"


@pytest.mark.parametrize("path", STUDENT, ids=ids(STUDENT))
def test_student_copy_runs_to_the_end_with_its_exercises_unwritten(path, tmp_path):
    """Plain papermill in fast mode from an empty folder, as a student's Run All: no cell raises, every self-check
    reports its exercise as not done, and a later cell that needs an exercise says it uses the reference."""
    import papermill

    nb = nbformat.read(path, as_version=4)
    papermill.execute_notebook(str(path), str(tmp_path / path.name), parameters={"fast": True}, kernel_name=KERNEL,
                               cwd=str(tmp_path), progress_bar=False, log_output=False,
                               execution_timeout=EXECUTION_TIMEOUT_S, extra_arguments=KERNEL_ARGUMENTS)
    executed = nbformat.read(tmp_path / path.name, as_version=4)
    checks = [stdout_text(c) for c in executed.cells if "self_check" in tags(c)]
    assert checks and all("FAIL" in text and "not done yet" in text for text in checks), checks
    later = [c for c in nb.cells if c.cell_type == "code" and "answer_or_reference(" in c.source]
    printed = "".join(stdout_text(c) for c in executed.cells)
    if later:
        assert "is not written yet: this cell uses the course's reference answer instead" in printed


def test_make_course_prints_only_its_progress_lines_and_the_notebook_no_warning(tmp_path):
    """`python -m course_utils.authoring.course` as a user runs it (no COURSE_* variables): one line per notebook and a
    closing line, nothing on stderr (no papermill or kernel warnings), and no warning text in the executed
    notebook's outputs. The fast run of 08 stands in for all (the full run is `make course`)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    done = subprocess.run([sys.executable, "-m", "course_utils.authoring.course", "--fast", "--only", "08", "--out",
                           str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=EXECUTION_TIMEOUT_S)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Running 1 notebook(s) in fast mode"), done.stdout
    assert re.fullmatch(r"\[1/1\] 08_project_evaluation +ok +[\d.]+ s  \(slowest cell \d+: [\d.]+ s\)", lines[1])
    assert lines[2].startswith("Done in ") and "failed" not in lines[2]
    executed = nbformat.read(tmp_path / "08_project_evaluation.ipynb", as_version=4)
    texts = [o.get("text", "") for c in executed.cells for o in c.get("outputs", []) if o.output_type == "stream"]
    assert not [t for t in texts if re.search(r"warn", t, flags=re.IGNORECASE)]
