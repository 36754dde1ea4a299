"""A hostile class against ``course-grade``'s sandbox (course_utils.grading.sandbox): no route to points or harm.

Each hostile submission is a real solution with one function (or one extra cell) changed to game the grader by
one route: reaching the guard against forbidden code and clearing its record (through ``sys.gettrace()``, the
caller's frame locals, ``gc.get_objects()``), switching tracing off around the call, a raw ``_thread``, a
spawned child process, ``exec`` of the reference's source, a copy of its code under another file name,
definition-time code, forged results with ``os._exit(0)``, reading the grader's ``/proc``, a process left
running to attack the next student, and links from the executed notebook into the submissions and output
folders. Each must lose exactly the points of the function it changed; honest submissions graded after them in
the same run keep full marks, and every submitted file stays byte-identical.

Two runs keep this short: the function-runner routes on the real ``solutions/08_project_evaluation.ipynb``
without executing notebooks, and the kernel routes with execution on the small stand-in of that notebook
(``tests/fixtures/grading/standin_08_solution.ipynb``), graded by a separate ``course-grade`` process that has
the secret seed on its command line. Without bubblewrap these tests are skipped, except where
``COURSE_REQUIRE_SANDBOX=1`` or ``CI=true`` (``.ci/run``): there they fail.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from course_utils.grading import cli, sandbox
from course_utils.exercises import exercises_of
from course_utils.grading.rubric import Rubric
from course_utils.grading.score import held_out, runner_view, score_notebook

ROOT = Path(__file__).resolve().parents[1]
RUNNER_ASSIGNMENT, KERNEL_ASSIGNMENT = "04_cam_gradcam", "08_project_evaluation"
RUNNER_RUBRIC, KERNEL_RUBRIC = (Rubric(assignment=a, exercises=exercises_of(a))  # the built-in rubrics
                                for a in (RUNNER_ASSIGNMENT, KERNEL_ASSIGNMENT))
REAL_SOLUTION = ROOT / "solutions" / f"{RUNNER_ASSIGNMENT}.ipynb"
STANDIN = ROOT / "tests" / "fixtures" / "grading" / "standin_08_solution.ipynb"
RUNNER_POINTS, KERNEL_POINTS = ({e.name: e.points for e in r.exercises} for r in (RUNNER_RUBRIC, KERNEL_RUBRIC))
SECRET_SEED = "731946285017"
MARK = "LINGER-MARK-7f3a"


@pytest.fixture(scope="module", autouse=True)
def bwrap(sandbox_tool):
    """Every test here needs the sandbox tool (see ``sandbox_tool`` in conftest.py: skipped without it, failed in
    CI)."""
    return sandbox_tool


def _with_cells(path: Path, *sources: str):
    nb = nbformat.read(path, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(textwrap.dedent(s).strip()) for s in sources]
    return nb


def _lingerer(targets: list[str]) -> str:
    """Code starting a process (through ``_posixsubprocess``, which raises no audit event) that keeps
    overwriting every file it finds under ``targets`` and the temporary folder for a minute."""
    attack = (f"import glob, os, sys, time\nend = time.time() + 60\nwhile time.time() < end:\n"
              f"    for pattern in {[*(t + '/**' for t in targets), '/tmp/**']!r}:\n"
              "        for path in glob.glob(pattern, recursive=True):\n"
              "            try:\n"
              "                if os.path.isfile(path):\n"
              "                    open(path, 'w').write('{}')\n"
              "            except OSError:\n"
              "                pass\n"
              "    time.sleep(0.2)\n")
    return (f"import os, sys\nfrom multiprocessing.util import spawnv_passfds\n"
            f"spawnv_passfds(os.fsencode(sys.executable), [sys.executable, '-c', {attack!r}, {MARK!r}], ())")


REFERENCE = "course_utils.exercises.attribution"
RUNNER_ROUTES = {
    "a01_guard_gettrace": f"""
        def gradcam_weights(gradients):
            import importlib, sys
            guard = sys.gettrace().__self__
            out = importlib.import_module({REFERENCE!r}).gradcam_weights(gradients)
            guard.violation = None
            return out
        """,
    "a02_guard_frame_locals": f"""
        def gradcam_weights(gradients):
            import sys
            from {REFERENCE} import gradcam_weights as reference
            out = reference(gradients)
            sys._getframe(1).f_locals['guard'].violation = None
            return out
        """,
    "a03_guard_gc": f"""
        def gradcam_weights(gradients):
            import gc
            from {REFERENCE} import gradcam_weights as reference
            out = reference(gradients)
            for obj in gc.get_objects():
                if type(obj).__name__ == 'ForbiddenCalls':
                    obj.violation = None
            return out
        """,
    "a04_trace_toggled": """
        def gradcam_weights(gradients):
            import sys
            from course_utils.exercises import attribution
            tracer = sys.gettrace()
            sys.settrace(None)
            try:
                return attribution.gradcam_weights(gradients)
            finally:
                sys.settrace(tracer)
        """,
    "a05_raw_thread": f"""
        def gradcam_weights(gradients):
            import _thread, importlib
            done, box = _thread.allocate_lock(), []
            done.acquire()
            def work():
                try:
                    box.append(importlib.import_module({REFERENCE!r}).gradcam_weights(gradients))
                finally:
                    done.release()
            _thread.start_new_thread(work, ())
            done.acquire()
            return box[0]
        """,
    "a06_spawn_child": f"""
        def gradcam_weights(gradients):
            import os, sys, tempfile, torch
            from multiprocessing.util import spawnv_passfds
            if getattr(gradcam_weights, 'spawned', False):  # one child per runner keeps the test short
                raise RuntimeError('the child gave nothing the first time')
            gradcam_weights.spawned = True
            folder = tempfile.mkdtemp()
            torch.save(gradients, os.path.join(folder, 'in.pt'))
            code = ("import sys, torch\\nfrom {REFERENCE} import gradcam_weights as f\\n"
                    "torch.save(f(torch.load(sys.argv[1] + '/in.pt')), sys.argv[1] + '/out.pt')")
            os.waitpid(spawnv_passfds(os.fsencode(sys.executable), [sys.executable, '-c', code, folder], ()), 0)
            return torch.load(os.path.join(folder, 'out.pt'))
        """,
    "a07_exec_compile": f"""
        def gradcam_weights(gradients):
            import importlib.util
            namespace = {{}}
            source = open(importlib.util.find_spec({REFERENCE!r}).origin).read()
            exec(compile(source, '<x>', 'exec'), namespace)
            return namespace['gradcam_weights'](gradients)
        """,
    "a08_co_filename": """
        def gradcam_weights(gradients):
            import types
            from course_utils.exercises import attribution
            ref = attribution.gradcam_weights
            return types.FunctionType(ref.__code__.replace(co_filename='<mine>'), ref.__globals__)(gradients)
        """,
    "a09_definition_time": f"""
        import importlib, os, types
        def gradcam_weights(gradients,
                            _seen=[open(f, 'rb').read() for f in os.listdir('.') if os.path.isfile(f)],
                            _ref=types.FunctionType(importlib.import_module({REFERENCE!r}).gradcam_weights
                                                    .__code__.replace(co_filename='<d>'),
                                                    vars(importlib.import_module({REFERENCE!r})))):
            return _ref(gradients)
        """,
    "a10_forged_results": """
        def forge():
            import os, torch
            for folder in ('.', '/tmp'):
                try:
                    forged = [{'ok': True, 'value': torch.zeros(4, 6)}] * 3
                    torch.save(forged, os.path.join(folder, 'gradcam_weights.pt'))
                except OSError:
                    pass
            for fd in range(3, 64):
                try:
                    os.write(fd, b'S' + (8).to_bytes(8, 'big') + b'forged!!')
                except OSError:
                    pass
            os._exit(0)
        def gradcam_weights(gradients, _done=forge()):
            return gradients.sum(2)
        """,
    "a11_proc_reads": """
        def gradcam_weights(gradients):
            import os
            seen = []
            for pid in (p for p in os.listdir('/proc') if p.isdigit()):
                for part in ('cmdline', 'environ'):
                    try:
                        seen.append(open(f'/proc/{pid}/{part}', 'rb').read())
                    except OSError:
                        pass
            leak = any(b'PYTEST_CURRENT_TEST' in s or b'--secret-seed' in s for s in seen)
            raise RuntimeError(f'processes seen={len(seen) // 2} leak={leak}')
        """,
}


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def _lingering() -> list[psutil.Process]:
    """Live Python processes carrying the mark (not the bwrap processes holding them)."""
    return [p for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and MARK in p.info["cmdline"] and "bwrap" not in p.info["cmdline"][0]]


@pytest.fixture(scope="module")
def runner_class(tmp_path_factory):
    """The function-runner routes and a lingering process, then two honest copies, graded in one run."""
    root = tmp_path_factory.mktemp("hostile_runner")
    subs, out = root / "submissions", root / "grades"
    subs.mkdir()
    expected = {}
    for student, source in RUNNER_ROUTES.items():
        nbformat.write(_with_cells(REAL_SOLUTION, source), subs / f"{student}.ipynb")
        expected[student] = dict.fromkeys(RUNNER_POINTS, 0.0)
    linger = f"def gradcam_weights(gradients):\n{textwrap.indent(_lingerer([str(subs), str(out)]), '    ')}\n" \
             "    return gradients.sum(2)"
    nbformat.write(_with_cells(REAL_SOLUTION, linger), subs / "a12_lingering.ipynb")
    expected["a12_lingering"] = dict.fromkeys(RUNNER_POINTS, 0.0)
    for student in ("z_honest1", "z_honest2"):
        nbformat.write(nbformat.read(REAL_SOLUTION, as_version=4), subs / f"{student}.ipynb")
        expected[student] = dict(RUNNER_POINTS)
    before = _hashes(subs)
    code = cli.main([str(subs), "--assignment", RUNNER_ASSIGNMENT,
                     "--out", str(out), "--no-execute", "--jobs", "2", "--timeout-check", "60",
                     "--secret-seed", SECRET_SEED,
                     "--quiet"])
    assert code == 0
    time.sleep(1)
    return expected, subs, out, before


@pytest.mark.parametrize("student", [*RUNNER_ROUTES, "a12_lingering", "z_honest1", "z_honest2"])
def test_each_hostile_runner_loses_exactly_what_it_did_not_earn(runner_class, student):
    expected, _, out, _ = runner_class
    row = _rows(out)[student]
    assert {name: float(row[name]) for name in RUNNER_POINTS} == pytest.approx(expected[student], abs=0.01), \
        (out / "feedback" / f"{student}.md").read_text()


def test_runner_sees_no_other_process_and_leaves_none(runner_class):
    _, subs, out, before = runner_class
    feedback = (out / "feedback" / "a11_proc_reads.md").read_text()
    assert "leak=False" in feedback
    assert not _lingering(), "a process started by student code outlived its sandbox"
    assert _hashes(subs) == before


def test_reference_answers_are_absent_not_only_detected(runner_class):
    """The reference answers are not there where the runner runs: reaching them fails (no module, no file), so
    clearing the guard's record, hiding from it or copying the code wins nothing; forged results are ignored."""
    _, _, out, _ = runner_class
    absent = ("your code runs course_utils.exercises.attribution, which this exercise forbids",
              "cannot import name 'attribution'", "'NoneType' object has no attribute 'origin'")
    for student in ("a01_guard_gettrace", "a02_guard_frame_locals", "a03_guard_gc", "a04_trace_toggled",
                    "a06_spawn_child", "a07_exec_compile", "a08_co_filename", "a09_definition_time"):
        text = (out / "feedback" / f"{student}.md").read_text()
        assert any(a in text for a in absent) or student == "a06_spawn_child" and "out.pt" in text, text
    assert "ModuleNotFoundError" in (out / "feedback" / "a05_raw_thread.md").read_text() or \
        "IndexError" in (out / "feedback" / "a05_raw_thread.md").read_text()
    forged = (out / "feedback" / "a10_forged_results.md").read_text()
    assert "exited without sending its results" in forged or "could not be read back" in forged



def test_forbidden_packages_are_absent_where_the_runner_runs(sandbox_tool, tmp_path):
    """Grad-CAM's exercises forbid the CAM libraries: in their runner's sandbox those packages are empty folders
    (torch's own modules stay, guarded by the tracer); the kit's forbidden modules and the references too."""
    probe = ("import importlib, sys\n"
             "for name in sys.argv[1:]:\n"
             "    try:\n"
             "        importlib.import_module(name)\n"
             "        print(name, 'present')\n"
             "    except ImportError:\n"
             "        print(name, 'absent')\n")
    names = ["pytorch_grad_cam.grad_cam", "captum.attr", "torchcam.methods", "course_utils.explainers.cam",
             "course_utils.exercises.attribution", "torch.nn"]
    log = tmp_path / "log.txt"
    view = runner_view(exercises_of(RUNNER_ASSIGNMENT)[0].forbidden, sandbox.Limits())
    child = sandbox.spawn(["-c", probe, *names], sandbox.Limits(memory_bytes=4 * 2**30), view, log=log)
    assert child.wait(timeout=120) == 0, log.read_text()
    seen = dict(line.split() for line in log.read_text().splitlines() if line.split()[-1] in ("present", "absent"))
    assert seen == {**{n: "absent" for n in names[:-1]}, "torch.nn": "present"}, log.read_text()

KERNEL_PROC = """
import os
seen = []
for pid in (p for p in os.listdir('/proc') if p.isdigit()):
    for part in ('cmdline', 'environ'):
        try:
            seen.append(open(f'/proc/{pid}/{part}', 'rb').read())
        except OSError:
            pass
try:
    open(f'/proc/{os.getppid()}/mem', 'rb').read(1)
except OSError as err:
    pass
leak = any(SEED.encode() in s or b'--secret-seed' in s for s in seen)
print(f'proc view: processes={len(seen) // 2} leak={leak}')
"""


@pytest.fixture(scope="module")
def kernel_class(tmp_path_factory):
    """The kernel routes (the grader's /proc, a lingering process, links from the executed notebook into the
    submissions and output folders) and an honest copy, graded with notebook execution by a separate grader
    process whose command line holds the secret seed."""
    root = tmp_path_factory.mktemp("hostile_kernel")
    subs, out = root / "submissions", root / "grades"
    subs.mkdir()
    honest = subs / "z_honest.ipynb"
    link = "import os\nos.remove('../executed.ipynb')\nos.symlink({target!r}, '../executed.ipynb')"
    cells = {
        "b1_proc_reads": [f"SEED = {SECRET_SEED!r}\n" + KERNEL_PROC],
        "b2_lingering": [_lingerer([str(subs), str(out)])],
        "b3_links": [link.format(target=str(honest)), "print('between the links')",
                     link.format(target=str(out / "executed" / "z_honest.ipynb"))],
    }
    for student, sources in cells.items():
        nbformat.write(_with_cells(STANDIN, *sources), subs / f"{student}.ipynb")
    nbformat.write(nbformat.read(STANDIN, as_version=4), honest)
    before = _hashes(subs)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "course_utils.grading", str(subs), "--assignment",
                           KERNEL_ASSIGNMENT, "--out", str(out), "--jobs", "2",
                           "--timeout-cell", "60", "--timeout-total", "240", "--timeout-check", "60",
                           "--secret-seed", SECRET_SEED,
                           "--quiet"], env=env, cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    time.sleep(1)
    return subs, out, before


def test_kernel_routes_gain_nothing_and_harm_no_one(kernel_class):
    subs, out, before = kernel_class
    rows = _rows(out)
    for student in ("b1_proc_reads", "b2_lingering", "b3_links", "z_honest"):
        assert {name: float(rows[student][name]) for name in KERNEL_POINTS} == KERNEL_POINTS, rows[student]["reason"]
    assert rows["z_honest"]["status"] == "ok", rows["z_honest"]["reason"]
    assert _hashes(subs) == before
    assert not _lingering(), "a process started by the kernel outlived its sandbox"
    honest = nbformat.read(out / "executed" / "z_honest.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in honest.cells)
    assert "os.symlink" not in json.dumps(honest)


def test_the_kernel_cannot_see_the_grader_or_its_seed(kernel_class):
    _, out, _ = kernel_class
    executed = (out / "executed" / "b1_proc_reads.ipynb").read_text()
    assert "proc view:" in executed and "leak=False" in executed
    for path in (out / "executed").iterdir():
        if path.name != "b1_proc_reads.ipynb":  # whose own code spells them out
            assert "--secret-seed" not in path.read_text() and SECRET_SEED not in path.read_text()


def test_no_sandbox_tool_means_a_clear_refusal(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "isolation_tool", lambda: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox.spawn(["-c", "pass"], sandbox.Limits())


def test_unsandboxed_mode_still_grades(tmp_path):
    """``--unsandboxed`` (no tool on this machine): the same runner, plainly, in a private folder."""
    held = held_out(RUNNER_RUBRIC, 5)
    limits = sandbox.Limits(memory_bytes=2 * 2**30, sandboxed=False)
    [score] = score_notebook(nbformat.read(REAL_SOLUTION, as_version=4), held, tmp_path, limits, timeout=60)
    assert score.points == RUNNER_POINTS[score.name], score.cases


def test_a_killed_grader_leaves_no_student_process(tmp_path):
    """SIGKILL of the process that started a sandboxed child takes the child and its descendants with it."""
    grader = textwrap.dedent(f"""
        import sys, time
        from course_utils.grading import sandbox
        mark = {MARK[:7]!r} + {MARK[7:]!r}  # not spelled out here, so that this process does not match it
        code = ("import os, sys, time; from multiprocessing.util import spawnv_passfds; "
                "spawnv_passfds(os.fsencode(sys.executable), [sys.executable, '-c', 'import time; "
                "time.sleep(300)', " + repr(mark) + "], ()); time.sleep(300)")
        sandbox.spawn(['-c', code, mark], sandbox.Limits())
        print('started', flush=True)
        time.sleep(300)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", grader], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while len(_lingering()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_lingering()) >= 2, "the sandboxed child and its own child did not start"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while _lingering() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _lingering()
