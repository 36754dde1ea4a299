"""Run the whole course: execute every solution notebook with papermill into ``build/`` (``make course``).

    python -m course_utils.authoring.course              # every notebook, full mode
    python -m course_utils.authoring.course --fast       # small sample sizes (a few minutes in all)
    python -m course_utils.authoring.course --only 03 --only 04
    python -m course_utils.authoring.course --notebooks DIR --out OUT   # the notebooks of another folder

Without ``--notebooks`` it runs ``solutions/`` of the source checkout (with an installed kit, first copy the
notebooks with ``course-notebooks copy DEST``); finding no notebook is an error. Each notebook runs in its own
kernel (the ``python3`` kernel of this environment) in its own folder; ``fast`` is injected as a papermill
parameter. Headless runs draw the explorer widget as a static figure (``COURSE_HEADLESS=1``). An executed
notebook is written only over an earlier papermill output, never over another file.

After each notebook the line gives its slowest cell; at the end, the class-time budget (full mode on a 2-core
laptop): every notebook within :data:`NOTEBOOK_BUDGET_S`, no cell over :data:`CELL_BUDGET_S`, and a progress bar
in every cell that runs longer than :data:`BAR_AFTER_S` (read from the cell times papermill records).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from course_utils.authoring.notebooks import ROOT
from course_utils.widgets import HEADLESS_ENV

KERNEL = "python3"
KERNEL_ARGUMENTS = ["--log-level=ERROR"]
"""Quiet kernels: no start-up log lines (e.g. ipykernel's TCP notice) between the progress lines."""
NOTEBOOK_BUDGET_S, CELL_BUDGET_S, BAR_AFTER_S = 300, 60, 10


@dataclass
class CellTime:
    index: int
    seconds: float
    first_line: str
    bar: bool


def shows_progress(cell) -> bool:
    """Whether an executed cell showed a tqdm bar: a closed notebook bar leaves a display output that is plain
    text only (empty, or the bar's last line), a terminal bar leaves its ``it/s`` text on stderr."""
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if output.get("output_type") == "display_data" and set(data) == {"text/plain"}:
            text = "".join(data["text/plain"])
            if not text or "it/s" in text or "s/it" in text:
                return True
        if output.get("output_type") == "stream" and re.search(r"\d+(\.\d+)?(it/s|s/it)", "".join(output["text"])):
            return True
    return False


def cell_times(path: Path) -> list[CellTime]:
    """The code cells of an executed notebook with the seconds papermill recorded for each."""
    import nbformat

    cells = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.cell_type == "code" and seconds is not None:
            lines = cell.source.strip().splitlines()
            cells.append(CellTime(index, seconds, lines[0][:60] if lines else "", shows_progress(cell)))
    return cells


def over_budget(name: str, seconds: float, cells: list[CellTime]) -> list[str]:
    """What breaks the class-time budget in one notebook, a line each (nothing if it meets it)."""
    lines = [f"{name}: {seconds:.0f} s in all, over {NOTEBOOK_BUDGET_S} s"] if seconds > NOTEBOOK_BUDGET_S else []
    for cell in cells:
        if cell.seconds > CELL_BUDGET_S:
            lines.append(f"{name} cell {cell.index}: {cell.seconds:.0f} s, over {CELL_BUDGET_S} s ({cell.first_line})")
        if cell.seconds > BAR_AFTER_S and not cell.bar:
            lines.append(f"{name} cell {cell.index}: {cell.seconds:.0f} s without a progress bar ({cell.first_line})")
    return lines


def kernel_problem(kernel: str = KERNEL) -> str | None:
    """None if ``kernel`` runs this environment's Python; otherwise what is wrong and the command that fixes it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    fix = f"run `{sys.executable} -m ipykernel install --sys-prefix --name {kernel}`"
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        return f"no Jupyter kernel named {kernel!r}: {fix}."
    program = spec.argv[0]
    if program not in ("python", f"python{sys.version_info[0]}") and Path(program).resolve() != Path(
            sys.executable).resolve():
        return f"the {kernel!r} kernel runs {program}, not this environment's Python ({sys.executable}): {fix}."
    return None


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """The notebooks whose name starts with an item of ``only`` (all if ``only`` is empty).

    A number selects by the two-digit prefix (``3`` and ``03`` select every ``03_*`` notebook; ``00`` both the
    setup tour and the primer); a longer prefix such as ``00_xai`` selects one notebook.
    """
    if not only:
        return notebooks
    wanted = {code.zfill(2) if code.isdigit() else code for item in only for code in item.split(",") if code}
    chosen = [nb for nb in notebooks if any(nb.stem.startswith(code) for code in wanted)]
    missing = sorted(code for code in wanted if not any(nb.stem.startswith(code) for nb in chosen))
    if missing:
        raise ValueError(f"--only {','.join(missing)}: no such notebook; choose from "
                         f"{', '.join(nb.stem for nb in notebooks)}.")
    return chosen


def _refuse_foreign_output(target: Path) -> None:
    """Raise unless ``target`` is absent or an executed notebook papermill wrote (which a new run may replace)."""
    import nbformat

    if not target.exists():
        return
    try:
        ours = "papermill" in nbformat.read(target, as_version=4).metadata
    except Exception:  # noqa: BLE001 -- an unreadable file is not one of ours
        ours = False
    if not ours:
        raise FileExistsError(f"{target} exists and is not a notebook executed by this tool, so it is left as it is; "
                              "choose another --out folder.")


def run_notebook(source: Path, target: Path, fast: bool, timeout: int | None = None) -> None:
    """Execute ``source`` into ``target`` with papermill (working directory: ``source``'s folder)."""
    import papermill

    os.environ[HEADLESS_ENV] = "1"
    _refuse_foreign_output(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(source), str(target), parameters={"fast": fast}, kernel_name=KERNEL,
                               cwd=str(source.parent), progress_bar=False, log_output=False,
                               execution_timeout=timeout, extra_arguments=KERNEL_ARGUMENTS)


def find_notebooks(folder: Path) -> list[Path]:
    """The course notebooks (``NN_*.ipynb``) of ``folder``; none raises ``FileNotFoundError`` saying what to do."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no course notebooks (NN_*.ipynb) in {folder}: nothing to run. Copy them there "
                                f"with `course-notebooks copy {folder}` (add --solutions for the answer keys).")
    return found


def run_course(folder: Path, out: Path, fast: bool, only: list[str] | None = None) -> int:
    """Execute the notebooks of ``folder`` into ``out``, one progress line each; 0 if all ran, 1 if one failed,
    2 if there was nothing to run or the kernel is not this environment's."""
    problem = kernel_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        notebooks = select(find_notebooks(folder), only)
    except (FileNotFoundError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    out, failed, budget, start = Path(out), [], [], time.perf_counter()
    mode = "fast" if fast else "full"
    print(f"Running {len(notebooks)} notebook(s) in {mode} mode with the {KERNEL!r} kernel ({sys.executable}) "
          f"from {folder}.")
    for number, source in enumerate(notebooks, 1):
        t0 = time.perf_counter()
        print(f"[{number}/{len(notebooks)}] {source.stem:<28}", end=" ", flush=True)
        try:
            run_notebook(source, out / source.name, fast)
        except Exception as error:  # report every notebook, then fail at the end
            failed.append(source.name)
            reason = str(error).strip().splitlines()
            print(f"FAILED after {time.perf_counter() - t0:5.1f} s: {reason[-1] if reason else type(error).__name__}",
                  flush=True)
            continue
        seconds, cells = time.perf_counter() - t0, cell_times(out / source.name)
        slowest = max(cells, key=lambda cell: cell.seconds)
        print(f"ok     {seconds:5.1f} s  (slowest cell {slowest.index}: {slowest.seconds:.1f} s)", flush=True)
        budget += over_budget(source.stem, seconds, cells)
    total = time.perf_counter() - start
    print(f"Done in {total:.0f} s. The executed notebooks (with all outputs) are in {out}/"
          + (f"; failed: {', '.join(failed)} — open them there to see the error." if failed else "."))
    if not fast:
        print(f"Class-time budget ({NOTEBOOK_BUDGET_S} s a notebook, {CELL_BUDGET_S} s a cell, a progress bar after "
              f"{BAR_AFTER_S} s): " + ("met." if not budget else "not met:\n  " + "\n  ".join(budget)))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.authoring.course",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="fast mode: small samples, fewer iterations")
    parser.add_argument("--only", action="append", metavar="NN", help="run only notebook NN, or the one named NN_prefix (repeatable, or 03,04)")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "solutions" if ROOT else None,
                        help="folder of the notebooks to run (default: solutions/ of the source checkout)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" if ROOT else None,
                        help="folder for the executed notebooks (default: build/ of the checkout)")
    args = parser.parse_args(argv)
    if args.notebooks is None:
        print("This is not a source checkout of the course, so there is no solutions/ folder to run: copy the "
              "notebooks with `course-notebooks copy DEST [--solutions]`, then pass --notebooks DEST (or run "
              "`course-notebooks run DEST`).", file=sys.stderr)
        return 2
    return run_course(args.notebooks, args.out or args.notebooks / "executed", args.fast, args.only)


if __name__ == "__main__":
    sys.exit(main())
