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
from course_utils.grading.rubric import load_rubric
from course_utils.grading.score import held_out, score_notebook

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "08_project_evaluation"
RUBRIC = ROOT / "solutions" / "rubrics" / f"{ASSIGNMENT}.py"
REAL_SOLUTION = ROOT / "solutions" / f"{ASSIGNMENT}.ipynb"
STANDIN = ROOT / "tests" / "fixtures" / "grading" / "standin_08_solution.ipynb"
POINTS = {e.name: e.points for e in load_rubric(RUBRIC).exercises}
SECRET_SEED = "731946285017"
MARK = "LINGER-MARK-7f3a"


@pytest.fixture(scope="module", autouse=True)
def bwrap():
    """The sandbox tool; its absence skips these tests here, and fails them in CI."""
    tool = sandbox.isolation_tool()
    if tool is None:
        message = f"no working bubblewrap: {sandbox.INSTALL_HINT} (or `make sandbox-tools`)"
        if os.environ.get("COURSE_REQUIRE_SANDBOX") == "1" or os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return tool


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
    return (f"import sys\nfrom multiprocessing.util import spawnv_passfds\n"
            f"spawnv_passfds(sys.executable, [sys.executable, '-c', {attack!r}, {MARK!r}], ())")


RUNNER_ROUTES = {
    "a01_guard_gettrace": ("keep_top_k", """
        def keep_top_k(x, saliency, keep):
            import importlib, sys
            guard = sys.gettrace().__self__
            out = importlib.import_module('course_utils.exercises.evaluation').keep_top_k(x, saliency, keep)
            guard.violation = None
            return out
        """),
    "a02_guard_frame_locals": ("drop_increase", """
        def drop_increase(y, o):
            import sys
            from course_utils.exercises.evaluation import drop_increase as reference
            out = reference(y, o)
            sys._getframe(1).f_locals['guard'].violation = None
            return out
        """),
    "a03_guard_gc": ("gradcam_map", """
        def gradcam_map(activations, gradients):
            import gc
            from course_utils.exercises.attribution import gradcam_map as reference
            out = reference(activations, gradients)
            for obj in gc.get_objects():
                if type(obj).__name__ == 'ForbiddenCalls':
                    obj.violation = None
            return out
        """),
    "a04_trace_toggled": ("rise_saliency", """
        def rise_saliency(probs, masks, p):
            import sys
            from course_utils.exercises import attribution
            tracer = sys.gettrace()
            sys.settrace(None)
            try:
                return attribution.rise_saliency(probs, masks, p)
            finally:
                sys.settrace(tracer)
        """),
    "a05_raw_thread": ("keep_top_k", """
        def keep_top_k(x, saliency, keep):
            import _thread, importlib
            done, box = _thread.allocate_lock(), []
            done.acquire()
            def work():
                try:
                    box.append(importlib.import_module('course_utils.metrics').keep_top_k(x, saliency, keep))
                finally:
                    done.release()
            _thread.start_new_thread(work, ())
            done.acquire()
            return box[0]
        """),
    "a06_spawn_child": ("drop_increase", """
        def drop_increase(y, o):
            import os, sys, tempfile, torch
            from multiprocessing.util import spawnv_passfds
            folder = tempfile.mkdtemp()
            torch.save((y, o), os.path.join(folder, 'in.pt'))
            code = ("import sys, torch\\nfrom course_utils.exercises.evaluation import drop_increase\\n"
                    "y, o = torch.load(sys.argv[1] + '/in.pt')\\ntorch.save(drop_increase(y, o), sys.argv[1] + '/out.pt')")
            os.waitpid(spawnv_passfds(sys.executable, [sys.executable, '-c', code, folder], ()), 0)
            return torch.load(os.path.join(folder, 'out.pt'))
        """),
    "a07_exec_compile": ("gradcam_map", """
        def gradcam_map(activations, gradients):
            import importlib.util
            namespace = {}
            source = open(importlib.util.find_spec('course_utils.exercises.attribution').origin).read()
            exec(compile(source, '<x>', 'exec'), namespace)
            return namespace['gradcam_map'](activations, gradients)
        """),
    "a08_co_filename": ("rise_saliency", """
        def rise_saliency(probs, masks, p):
            import types
            from course_utils.exercises import attribution
            ref = attribution.rise_saliency
            return types.FunctionType(ref.__code__.replace(co_filename='<mine>'), ref.__globals__)(probs, masks, p)
        """),
    "a09_definition_time": ("keep_top_k", """
        import importlib, os, types
        def keep_top_k(x, saliency, keep,
                       _seen=[open(f, 'rb').read() for f in os.listdir('.') if os.path.isfile(f)],
                       _ref=types.FunctionType(importlib.import_module('course_utils.exercises.evaluation')
                                               .keep_top_k.__code__.replace(co_filename='<d>'),
                                               vars(importlib.import_module('course_utils.exercises.evaluation')))):
            return _ref(x, saliency, keep)
        """),
    "a10_forged_results": ("drop_increase", """
        def forge():
            import os, torch
            for name in ('keep_top_k', 'drop_increase', 'gradcam_map', 'rise_saliency'):
                for folder in ('.', '/tmp'):
                    try:
                        torch.save([{'ok': True, 'value': (50.0, 50.0)}] * 3, os.path.join(folder, name + '.pt'))
                    except OSError:
                        pass
            for fd in range(3, 64):
                try:
                    os.write(fd, b'S' + (8).to_bytes(8, 'big') + b'forged!!')
                except OSError:
                    pass
            os._exit(0)
        def drop_increase(y, o, _done=forge()):
            return 50.0, 50.0
        """),
    "a11_proc_reads": ("gradcam_map", """
        def gradcam_map(activations, gradients):
            import os
            seen = []
            for pid in (p for p in os.listdir('/proc') if p.isdigit()):
                for part in ('cmdline', 'environ'):
                    try:
                        seen.append(open(f'/proc/{pid}/{part}', 'rb').read())
                    except OSError:
                        pass
            leak = any(b'pytest' in s or b'secret' in s for s in seen)
            raise RuntimeError(f'processes seen={len(os.listdir("/proc"))} leak={leak}')
        """),
}


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def _lingering() -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if MARK in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


@pytest.fixture(scope="module")
def runner_class(tmp_path_factory):
    """The function-runner routes and a lingering process, then two honest copies, graded in one run."""
    root = tmp_path_factory.mktemp("hostile_runner")
    subs, out = root / "submissions", root / "grades"
    subs.mkdir()
    expected = {}
    for student, (name, source) in RUNNER_ROUTES.items():
        nbformat.write(_with_cells(REAL_SOLUTION, source), subs / f"{student}.ipynb")
        expected[student] = {**POINTS, name: 0.0}
    linger = f"def keep_top_k(x, saliency, keep):\n{textwrap.indent(_lingerer([str(subs), str(out)]), '    ')}\n" \
             "    return x"
    nbformat.write(_with_cells(REAL_SOLUTION, linger), subs / "a12_lingering.ipynb")
    expected["a12_lingering"] = {**POINTS, "keep_top_k": 0.0}
    for student in ("z_honest1", "z_honest2"):
        nbformat.write(nbformat.read(REAL_SOLUTION, as_version=4), subs / f"{student}.ipynb")
        expected[student] = dict(POINTS)
    before = _hashes(subs)
    code = cli.main([str(subs), "--assignment", ASSIGNMENT, "--rubric", str(RUBRIC), "--out", str(out),
                     "--no-execute", "--jobs", "2", "--timeout-check", "60", "--secret-seed", SECRET_SEED,
                     "--quiet"])
    assert code == 0
    time.sleep(1)
    return expected, subs, out, before


@pytest.mark.parametrize("student", [*RUNNER_ROUTES, "a12_lingering", "z_honest1", "z_honest2"])
def test_each_hostile_runner_loses_exactly_what_it_did_not_earn(runner_class, student):
    expected, _, out, _ = runner_class
    row = _rows(out)[student]
    assert {name: float(row[name]) for name in POINTS} == pytest.approx(expected[student], abs=0.01), row["reason"]


def test_runner_sees_no_other_process_and_leaves_none(runner_class):
    _, subs, out, before = runner_class
    feedback = (out / "feedback" / "a11_proc_reads.md").read_text()
    assert "leak=False" in feedback
    assert not _lingering(), "a process started by student code outlived its sandbox"
    assert _hashes(subs) == before


def test_reference_answers_are_absent_not_only_detected(runner_class):
    """The reference's module is empty where the runner runs: the call fails instead of being caught."""
    _, _, out, _ = runner_class
    assert "AttributeError" in (out / "feedback" / "a04_trace_toggled.md").read_text()
    assert "KeyError" in (out / "feedback" / "a07_exec_compile.md").read_text()
    assert "could not define it" in (out / "feedback" / "a09_definition_time.md").read_text()
    assert "exited without sending its results" in (out / "feedback" / "a10_forged_results.md").read_text() \
        or "could not be read back" in (out / "feedback" / "a10_forged_results.md").read_text()


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
leak = any(SEED.encode() in s or b'secret' in s for s in seen)
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
        "b3_link_submissions": [link.format(target=str(honest))],
        "b4_link_output": [link.format(target=str(out / "executed" / "z_honest.ipynb"))],
    }
    for student, sources in cells.items():
        nbformat.write(_with_cells(STANDIN, *sources), subs / f"{student}.ipynb")
    nbformat.write(nbformat.read(STANDIN, as_version=4), honest)
    before = _hashes(subs)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "course_utils.grading", str(subs), "--assignment", ASSIGNMENT,
                           "--rubric", str(RUBRIC), "--out", str(out), "--jobs", "2", "--timeout-cell", "60",
                           "--timeout-total", "240", "--timeout-check", "60", "--secret-seed", SECRET_SEED,
                           "--quiet"], env=env, cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    time.sleep(1)
    return subs, out, before


def test_kernel_routes_gain_nothing_and_harm_no_one(kernel_class):
    subs, out, before = kernel_class
    rows = _rows(out)
    for student in ("b1_proc_reads", "b2_lingering", "b3_link_submissions", "b4_link_output", "z_honest"):
        assert {name: float(rows[student][name]) for name in POINTS} == POINTS, rows[student]["reason"]
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
        text = path.read_text()
        assert "--secret-seed" not in text and (path.name == "b1_proc_reads.ipynb" or SECRET_SEED not in text)


def test_no_sandbox_tool_means_a_clear_refusal(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "isolation_tool", lambda: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox.spawn(["-c", "pass"], sandbox.Limits())


def test_unsandboxed_mode_still_grades(tmp_path):
    """``--unsandboxed`` (no tool on this machine): the same runner, plainly, in a private folder."""
    held = held_out(load_rubric(RUBRIC), 5)[:1]
    limits = sandbox.Limits(memory_bytes=2 * 2**30, sandboxed=False)
    [score] = score_notebook(nbformat.read(REAL_SOLUTION, as_version=4), held, tmp_path, limits, timeout=60)
    assert score.points == POINTS[score.name], score.cases


def test_a_killed_grader_leaves_no_student_process(tmp_path):
    """SIGKILL of the process that started a sandboxed child takes the child and its descendants with it."""
    grader = textwrap.dedent(f"""
        import sys, time
        from course_utils.grading import sandbox
        mark = {MARK[:7]!r} + {MARK[7:]!r}  # not spelled out here, so that this process does not match it
        code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; "
                "time.sleep(300)', " + repr(mark) + "]); time.sleep(300)")
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
