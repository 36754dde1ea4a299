"""``course-grade``: grade a folder of notebook submissions on hidden test inputs, resuming after a crash.

The checks are the exercises' own (:mod:`course_utils.exercises`) unless ``--rubric FILE`` gives others. Every
grade goes into ``OUT/gradebook.sqlite`` as soon as it is made: the same command run again grades only the
submissions not graded yet or changed since (``--regrade``: all). ``course-grade --help`` shows examples; see
:mod:`course_utils.grading` for what is run, where, and how it is scored.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils.core.paths import data_home
from course_utils.grading.batch import Settings, grade_all

EPILOG = """examples:
  course-grade submissions/ --assignment 08_project_evaluation --out grades/ --jobs 4
  course-grade submissions/ --assignment 08_project_evaluation --out grades/ --cluster local:4
  course-grade submissions/ --assignment 08_project_evaluation --out grades/ --scheduler tcp://node01:8786

Every grade is recorded in OUT/gradebook.sqlite as soon as it is made. Run the same command again after a
crash: only the submissions not graded yet, or whose notebook changed, are graded (--regrade: all of them),
with the secret seed kept in the gradebook. Student code runs in a bubblewrap sandbox (Debian/Ubuntu:
sudo apt-get install bubblewrap); without it course-grade refuses to run unless you pass --unsandboxed."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="course-grade", description=__doc__.splitlines()[0].replace("``", ""), epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("submissions", type=Path, help="folder of <student_id>.ipynb or <student_id>/<assignment>.ipynb")
    p.add_argument("--assignment", required=True, help="assignment name, e.g. 08_project_evaluation")
    p.add_argument("--out", type=Path, default=Path("grades"),
                   help="report folder, holding the gradebook (default: grades/)")
    p.add_argument("--rubric", type=Path, metavar="FILE",
                   help="rubric file defining RUBRIC (default: the assignment's exercises in course_utils.exercises)")
    p.add_argument("--regrade", action="store_true",
                   help="grade every submission again, not only those missing from the gradebook or changed")
    p.add_argument("--unsandboxed", action="store_true",
                   help="grade without a sandbox tool (bubblewrap): student code runs as you; recorded in the report")
    p.add_argument("--jobs", type=int, default=1,
                   help="submissions graded in parallel on this machine (default: 1; not with a cluster)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on a running dask.distributed cluster, one task per submission")
    where.add_argument("--cluster", metavar="local:N", help="grade on a Dask cluster of N local worker processes")
    p.add_argument("--timeout-cell", type=float, default=300, help="seconds per notebook cell (default: 300)")
    p.add_argument("--timeout-total", type=float, default=1800, help="seconds per notebook (default: 1800)")
    p.add_argument("--timeout-check", type=float, default=60,
                   help="seconds for one exercise's hidden checks (default: 60)")
    p.add_argument("--max-output-bytes", type=int, default=1_000_000,
                   help="outputs stored per executed notebook (default: 1000000)")
    p.add_argument("--max-memory-mb", type=int, default=4096, help="heap memory per student process (default: 4096)")
    p.add_argument("--seed", type=int, default=0, help="the notebook's seed parameter (default: 0)")
    p.add_argument("--data-dir", type=Path, help="data_dir parameter (default: the data home, core.paths.data_home)")
    p.add_argument("--hmt-dir", type=Path, help="hmt_dir parameter (default: None = the notebook's search)")
    p.add_argument("--no-execute", action="store_true", help="score only; do not run the notebooks")
    p.add_argument("--secret-seed", type=int,
                   help="fix the hidden test inputs (default: new secret inputs for a new gradebook, the gradebook's "
                        "on a resume; keep it private)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    parameters = {"seed": args.seed, "fast": True, "data_dir": str(data_home(args.data_dir).resolve()),
                  "hmt_dir": str(args.hmt_dir.resolve()) if args.hmt_dir else None}
    return Settings(submissions=args.submissions, assignment=args.assignment, out=args.out, rubric=args.rubric,
                    jobs=args.jobs, timeout_cell=args.timeout_cell, timeout_total=args.timeout_total,
                    timeout_check=args.timeout_check, max_output_bytes=args.max_output_bytes,
                    memory_bytes=args.max_memory_mb * 2**20, parameters=parameters,
                    run_notebooks=not args.no_execute, secret_seed=args.secret_seed, progress=not args.quiet,
                    scheduler=args.scheduler, cluster=args.cluster, unsandboxed=args.unsandboxed)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        graded = grade_all(settings_from(args), regrade=args.regrade)
    except ValueError as err:
        print(f"course-grade: {err}", file=sys.stderr)
        return 2
    failed = sum(not g.status.ran_cleanly for g in graded.grades)
    kept = len(graded.grades) - len(graded.graded_now)
    print(f"graded {len(graded.graded_now)} submission(s) now, {kept} already in the gradebook; "
          f"{failed} of {len(graded.grades)} did not run cleanly; {graded.mode}; report in {args.out / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
