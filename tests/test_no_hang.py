"""The explorer never hangs a run: notebooks 04 and 08 under plain papermill, two at a time, and under the grader.

Before the explorer drew into an ``ipywidgets.Image``, it captured ``display`` output in an ``ipywidgets.Output``;
nbclient then answers each captured output with comm messages on the kernel's shell socket while it waits on that
socket for the cell's reply, and now and then that wait never wakes up (jupyter/nbclient#312): 3 of 12 runs hung
for ever when two notebooks ran at once (see ``course_utils.widgets``). These runs use no ``COURSE_*`` variables
and no papermill cell timeout (with one, a lost wake-up costs exactly the timeout instead of hanging, and the run
still passes), exactly as an instructor would type the command; each run has an outer timeout. The executed
notebooks must hold explorer widgets, or the runs would not have exercised the interactive path.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.stress

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
NOTEBOOKS = ("04_cam_gradcam", "08_project_evaluation")
RUNS = 20
RUN_TIMEOUT_S = 600  # a fast run takes 15–20 s alone on 2 idle cores; a hang lasts for ever
GRADER_CELL_TIMEOUT_S = 300  # the grader's default --timeout-cell
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PAPERMILL = Path(sys.executable).with_name("papermill")


def plain_environment() -> dict[str, str]:
    """This process's environment without any ``COURSE_*`` variable (solutions/conftest.py sets some)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}


def widget_views(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(WIDGET_VIEW in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def longest_cell_s(path: Path) -> float:
    """The longest execution time of a cell, from the papermill metadata of an executed notebook."""
    nb = nbformat.read(path, as_version=4)
    return max(c.metadata.get("papermill", {}).get("duration") or 0.0 for c in nb.cells)


def stuck_cell(path: Path) -> str:
    """The cell a killed papermill run was executing, from the papermill status papermill writes as it goes."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # not written yet
        return "unknown (no output notebook yet)"
    running = [k for k, c in enumerate(nb.cells) if c.metadata.get("papermill", {}).get("status") == "running"]
    return f"cell {running[0]}: {nb.cells[running[0]].source[:120]!r}" if running else "none running"


def run_papermill(name: str, out: Path) -> tuple[str, Path, int | None, str]:
    command = [str(PAPERMILL), str(SOLUTIONS / f"{name}.ipynb"), str(out), "-p", "fast", "True",
               "--cwd", str(SOLUTIONS), "--no-progress-bar"]
    try:
        proc = subprocess.run(command, env=plain_environment(), capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return name, out, None, stuck_cell(out)
    return name, out, proc.returncode, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def data_ready():
    """MNIST-1D cached in data/ once, so that no two parallel runs generate it at the same time."""
    sys.path.insert(0, str(REPO))
    from course_utils.data import mnist1d
    mnist1d("test", root=REPO / "data")


@pytest.mark.timeout(RUNS // 2 * 120 + RUN_TIMEOUT_S)  # ten pairs of up to 2 minutes each, and one hung run
def test_papermill_runs_of_the_explorer_notebooks_never_hang(tmp_path, data_ready):
    jobs = [(NOTEBOOKS[k % 2], tmp_path / f"run{k:02d}_{NOTEBOOKS[k % 2]}.ipynb") for k in range(RUNS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: run_papermill(*job), jobs))
    hung = [f"{out.name}: stuck at {detail}" for _, out, code, detail in results if code is None]
    assert not hung, f"{len(hung)} of {RUNS} runs hung past {RUN_TIMEOUT_S} s:\n" + "\n".join(hung)
    failed = [f"{out.name} (exit {code}):\n{detail}" for _, out, code, detail in results if code != 0]
    assert not failed, "\n".join(failed)
    for name, out, _, _ in results:
        assert widget_views(out) >= 1, f"{out.name} shows no explorer widget: the interactive path did not run"


@pytest.mark.timeout(4 * RUN_TIMEOUT_S + 60)
def test_grader_runs_of_the_project_notebook_never_hang(tmp_path, data_ready, shared_hmt):
    """Four copies of the 08 solution graded with ``--jobs 2``: every cell ends well inside the per-cell timeout
    (under a per-cell timeout a lost wake-up does not fail the run: the cell takes the whole ``--timeout-cell``
    and then goes on), and every submission gets full marks."""
    subs, out = tmp_path / "submissions", tmp_path / "grades"
    subs.mkdir()
    for k in range(4):
        shutil.copyfile(SOLUTIONS / f"{NOTEBOOKS[1]}.ipynb", subs / f"student{k}.ipynb")
    command = [sys.executable, "-m", "course_utils.grading", str(subs), "--assignment", NOTEBOOKS[1],
               "--out", str(out), "--jobs", "2", "--quiet", "--data-dir", str(REPO / "data"),
               "--hmt-dir", str(shared_hmt), "--timeout-cell", str(GRADER_CELL_TIMEOUT_S),
               "--timeout-total", str(2 * RUN_TIMEOUT_S)]
    proc = subprocess.run(command, env=plain_environment(), cwd=REPO, capture_output=True, text=True,
                          timeout=4 * RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        assert row["status"] == "ok", json.dumps(row)
        assert float(row["score"]) == float(row["max_score"]), json.dumps(row)
        executed = out / "executed" / f"{row['student_id']}.ipynb"
        assert longest_cell_s(executed) < GRADER_CELL_TIMEOUT_S - 1, \
            f"{executed.name}: a cell waited out the per-cell timeout"
        assert widget_views(executed) >= 1
