"""Grading and evaluation on a real Dask ``LocalCluster`` (2 worker processes) give what the local paths give.

The oracle is the kit's own single-machine path run on the same input: the local grader (``--jobs``) on the
same class with the same ``--secret-seed``, and ``evaluate()`` without a client. A worker is killed (SIGKILL,
by its pid) while it runs a student's notebook; the report must still be complete and equal.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import psutil
import pytest
import torch
from distributed import Client, LocalCluster

import course_utils.evaluate as ev
from course_utils import cluster
from course_utils.grading import cli
from course_utils.grading.remote import lost_grade, staging_root
from course_utils.grading.score import held_out
from course_utils.grading.rubric import load_rubric
from course_utils.models import ShallowCNN1D
from course_utils.authoring.notebooks import student_version

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "fixtures" / "grading" / "standin_08_solution.ipynb"
RUBRIC = ROOT / "tests" / "fixtures" / "grading" / "example_rubric.py"
ASSIGNMENT = "08_project_evaluation"


@pytest.fixture(scope="module")
def dask_cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with Client(local) as client:
            yield local, client


def _with_cells(nb, *sources):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def _class(subs: Path, out: Path) -> dict:
    """Six kinds of submission (cheap variants of the stand-in notebook), plus a missing and a broken one."""
    solution = nbformat.read(STANDIN, as_version=4)
    student = student_version(solution)
    unchecked = nbformat.from_dict(json.loads(json.dumps(student)))
    unchecked.cells = [c for c in unchecked.cells if "self_check" not in c.metadata.get("tags", [])]
    snoop = (f"import glob, tempfile\ntargets = [{str(RUBRIC)!r}, *glob.glob({str(subs)!r} + '/*.ipynb'),\n"
             "           *glob.glob(tempfile.gettempdir() + '/course-grade-staged-*/**/*.ipynb', recursive=True)]\n"
             "for path in targets:\n    try:\n        open(path).read()\n        print('read:', path)\n"
             "    except PermissionError:\n        print('blocked: PermissionError')\n"
             "try:\n"
             f"    open({str(out / 'grades.csv')!r}, 'w').write('assignment,student_id,score\\n')\n"
             "except OSError as err:\n    print('blocked:', type(err).__name__)")
    return {
        "correct": solution,
        "untouched": student,
        "crashing": _with_cells(solution, "def keep_top_k(x, saliency, keep):\n    return 1 / 0",
                                "import os\nos._exit(3)"),
        "hanging": _with_cells(solution, "def rise_saliency(probs, masks, p):\n    import time\n"
                                         "    time.sleep(3600)", "import time\ntime.sleep(3600)"),
        "tampering": _with_cells(unchecked, snoop,
                                 "def drop_increase(y, o):\n    return 33.3, 38.5"),
        "partial": _with_cells(solution, "def drop_increase(y, o):\n    raise NotImplementedError",
                               "def gradcam_map(activations, gradients):\n"
                               "    w = activations.mean(dim=tuple(range(2, activations.dim())))\n"
                               "    return torch.einsum('nk,nk...->n...', w, activations).relu()"),
    }


def _grade(subs: Path, out: Path, *where: str) -> int:
    return cli.main([str(subs), "--assignment", ASSIGNMENT, "--rubric", str(RUBRIC), "--out", str(out),
                     "--timeout-cell", "12", "--timeout-total", "120", "--timeout-check", "4",
                     "--max-output-bytes", "100000", "--max-memory-mb", "1536", "--secret-seed", "7", "--quiet",
                     *where])


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {row["student_id"]: {k: v for k, v in row.items() if k != "runtime_s"} for row in csv.DictReader(f)}


def _feedback(out: Path) -> dict[str, str]:
    return {p.name: "\n".join(line for line in p.read_text().splitlines() if not line.startswith("- Run time"))
            for p in (out / "feedback").iterdir()}


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """The class on disk and its report from the local grader (2 threads)."""
    root = tmp_path_factory.mktemp("class")
    subs = root / "submissions"
    subs.mkdir()
    for student, nb in _class(subs, root / "grades").items():
        nbformat.write(nb, subs / f"{student}.ipynb")
    (subs / "absent").mkdir()
    (subs / "broken.ipynb").write_text("not a notebook")
    # what a killed worker leaves behind: the tampering student must not read it, on the cluster or locally
    leftover = Path(tempfile.mkdtemp(prefix="worker-killed-", dir=staging_root()))
    shutil.copy(STANDIN, leftover / "another_student.ipynb")
    assert _grade(subs, root / "grades", "--jobs", "2") == 0
    shutil.copytree(root / "grades", root / "local")
    yield root, subs
    shutil.rmtree(leftover)


class WorkerKiller(threading.Thread):
    """SIGKILLs the first worker seen running a student's notebook (then the orphaned student processes)."""

    def __init__(self, worker_pids):
        super().__init__(daemon=True)
        self.pids, self.killed, self.stop = list(worker_pids), None, threading.Event()

    def run(self):
        while not self.stop.is_set() and self.killed is None:
            for pid in self.pids:
                try:
                    tree = psutil.Process(pid).children(recursive=True)
                    busy = any("run_notebook" in " ".join(p.cmdline()) for p in tree)
                except psutil.Error:
                    continue
                if busy:
                    os.kill(pid, signal.SIGKILL)
                    self.killed = pid
                    for p in tree:
                        try:
                            p.kill()
                        except psutil.Error:
                            pass
                    return
            time.sleep(0.05)


def test_cluster_grades_the_class_as_the_local_grader_even_when_a_worker_dies(dask_cluster, classroom):
    local, client = dask_cluster
    root, subs = classroom
    pids = client.run(os.getpid)
    killer = WorkerKiller(pids.values())
    killer.start()
    try:
        # --regrade: the local run's gradebook is there, and every submission must be graded on the cluster
        assert _grade(subs, root / "grades", "--scheduler", local.scheduler_address, "--regrade") == 0
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed in pids.values(), "no worker was killed while grading"
    expected, got = _rows(root / "local"), _rows(root / "grades")
    assert sorted(got) == ["absent", "broken", "correct", "crashing", "hanging", "partial", "tampering",
                           "untouched"]
    assert got == expected
    statuses = {s: r["status"] for s, r in got.items()}
    assert statuses == {"absent": "missing", "broken": "invalid", "correct": "ok", "crashing": "kernel died",
                        "hanging": "timeout", "partial": "ok", "tampering": "ok", "untouched": "error"}
    assert float(got["correct"]["score"]) == float(got["correct"]["max_score"])
    assert 0 < float(got["partial"]["score"]) < float(got["correct"]["score"])
    assert _feedback(root / "grades") == _feedback(root / "local")
    for out in ("local", "grades"):
        printed = "".join(o.get("text", "") for c in nbformat.read(root / out / "executed" / "tampering.ipynb",
                                                                      as_version=4).cells
                          for o in c.get("outputs", []))
        assert "blocked: PermissionError" in printed and "read:" not in printed
    client.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker


def test_a_task_that_fails_for_good_becomes_a_grader_error(dask_cluster):
    _, client = dask_cluster
    held = held_out(load_rubric(RUBRIC), 0)

    def fails(job):
        raise RuntimeError(f"worker lost while grading {job[0]}")

    grades = cluster.run_tasks(client, fails, [("ann", b"{}"), ("bob", None)], on_error=lost_grade(held),
                               progress=False, retries=0)
    assert [(g.student_id, g.status) for g in grades] == [("ann", "grader error"), ("bob", "grader error")]
    assert "worker lost while grading bob" in grades[1].reason
    assert sum(e.points for e in grades[0].exercises) == 0
    with pytest.raises(RuntimeError, match="worker lost"):
        cluster.run_tasks(client, fails, [("ann", None)], progress=False, retries=0)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = ShallowCNN1D(channels=8).eval()
    x = torch.randn(14, 1, 40, generator=torch.Generator().manual_seed(1))
    truth = torch.rand(14, 40, generator=torch.Generator().manual_seed(2)) < 0.3
    return model, SimpleNamespace(x=x, positions=truth)


def test_evaluation_on_the_cluster_equals_the_single_process_table(dask_cluster, tiny):
    """Methods seeded per call (random, smoothgrad, rise) included: chunks are whole batches, so every explainer
    call and every model pass of the metrics sees the same samples as in the single-process run."""
    _, client = dask_cluster
    model, dataset = tiny
    methods = ["saliency", "gradcam", "random", "smoothgrad", "rise"]
    here = ev.evaluate(model, dataset, methods, n=13, batch_size=4, seed=3, progress=False)
    there = ev.evaluate(model, dataset, methods, n=13, batch_size=4, seed=3, progress=False, client=client)
    timing = "seconds per sample"
    assert (there[timing] > 0).all()
    pd.testing.assert_frame_equal(there.drop(columns=timing), here.drop(columns=timing), check_exact=True)
    assert there["n"].tolist() == [13] * len(methods)
    with pytest.raises(ValueError, match="registry names"):
        ev.evaluate(model, dataset, [("grad", ev.build_explainer("saliency", model, 0))], client=client,
                    progress=False)


def test_evaluation_command_line_with_a_scheduler(dask_cluster, tiny, tmp_path, monkeypatch):
    local, _ = dask_cluster
    model, dataset = tiny
    import course_utils.models
    monkeypatch.setattr(course_utils.models, "load_pretrained", lambda name, device=None: model)
    monkeypatch.setattr(ev, "_load_dataset", lambda name, root, size: dataset)
    there = ev.main(["mnist1d", "--methods", "saliency", "random", "--n", "9", "--batch-size", "4",
                     "--no-progress", "--out", str(tmp_path), "--scheduler", local.scheduler_address])
    here = ev.evaluate(model, dataset, ["saliency", "random"], n=9, batch_size=4, progress=False)
    timing = "seconds per sample"
    pd.testing.assert_frame_equal(there.drop(columns=timing), here.drop(columns=timing), check_exact=True)
    on_disk = pd.read_csv(tmp_path / "mnist1d_evaluation.csv")
    pd.testing.assert_frame_equal(on_disk.drop(columns=timing), here.drop(columns=timing), check_dtype=False)


def test_bad_cluster_options_fail_clearly(tmp_path, capsys):
    for spec in ("local", "local:0", "slurm:4"):
        with pytest.raises(ValueError, match="local:N"):
            cluster.local_workers(spec)
    with pytest.raises(ValueError, match="not both"):
        with cluster.connect("tcp://127.0.0.1:1", "local:2"):
            pass
    (tmp_path / "a.ipynb").write_text("{}")
    assert cli.main([str(tmp_path), "--assignment", ASSIGNMENT, "--rubric", str(RUBRIC), "--out",
                     str(tmp_path / "o"), "--jobs", "2", "--cluster", "local:2"]) == 2
    assert "drop --jobs" in capsys.readouterr().err
    assert cli.main([str(tmp_path), "--assignment", ASSIGNMENT, "--rubric", str(RUBRIC), "--out",
                     str(tmp_path / "o"), "--cluster", "locale:2"]) == 2
    assert "local:N" in capsys.readouterr().err


def test_the_kit_imports_without_dask():
    code = ("import sys\nimport course_utils.evaluate, course_utils.grading.cli, course_utils.cluster\n"
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
