"""The course notebooks that come with the kit, and ``course-notebooks``: copy them into a folder of your choice,
then run or check the course there.

    course-notebooks copy DEST               # the student notebooks (exercises as stubs) into DEST
    course-notebooks copy DEST --solutions   # the instructor's solution notebooks (answer keys) instead
    course-notebooks run DEST [--fast]       # execute every NN_*.ipynb of DEST into DEST/executed
    course-notebooks check DEST              # the same in fast mode: does the course run here, top to bottom?

In a source checkout the notebooks are ``notebooks/`` (student) and ``solutions/``; the wheel carries copies of
both in ``course_utils/course_notebooks/`` (put there by the build, see ``setup.py``). Copying never replaces a
file: a notebook already in DEST with the same content is left, one with other content stops the copy.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils.core.files import NotOurFileError, write_atomic
from course_utils.core.paths import SOURCE_ROOT

PACKAGED = Path(__file__).resolve().parents[1] / "course_notebooks"
"""Where the wheel keeps its copies: ``notebooks/`` (student) and ``solutions/``."""
PATTERN = "[0-9][0-9]_*.ipynb"


def notebook_folders(solutions: bool = False) -> list[Path]:
    """The folders searched for the shipped notebooks, in order: the checkout's, then the wheel's."""
    name = "solutions" if solutions else "notebooks"
    return ([SOURCE_ROOT / name] if SOURCE_ROOT is not None else []) + [PACKAGED / name]


def shipped_notebooks(solutions: bool = False) -> list[Path]:
    """The student notebooks (or with ``solutions`` the solution notebooks) of the course, in course order."""
    folders = notebook_folders(solutions)
    for folder in folders:
        found = sorted(folder.glob(PATTERN))
        if found:
            return found
    raise FileNotFoundError(f"no course notebooks ({PATTERN}) in {' or '.join(map(str, folders))}: this installation "
                            "of course_utils is incomplete. Reinstall it from the wheel, or work in a source "
                            "checkout of the course.")


def copy_notebooks(dest: str | Path, solutions: bool = False) -> list[Path]:
    """Copy the course notebooks into ``dest`` (created if needed); returns the paths now there.

    A notebook already in ``dest`` with the same content is kept; one with other content (the user's work) raises
    :class:`~course_utils.core.files.NotOurFileError` before anything is written.
    """
    dest = Path(dest)
    sources = shipped_notebooks(solutions)
    different = [dest / s.name for s in sources if (dest / s.name).exists()
                 and (dest / s.name).read_bytes() != s.read_bytes()]
    if different:
        raise NotOurFileError(f"{', '.join(map(str, different))} already exist with other content (your work?), so "
                              f"nothing was copied. Copy into another folder, or move those files away first.")
    for source in sources:
        if not (dest / source.name).exists():
            data = source.read_bytes()
            write_atomic(dest / source.name, lambda handle, data=data: handle.write(data), what="notebook")
    return [dest / s.name for s in sources]


def main(argv: list[str] | None = None) -> int:
    from course_utils.authoring import course

    parser = argparse.ArgumentParser(prog="course-notebooks", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser("copy", help="copy the student (or solution) notebooks into DEST")
    copy.add_argument("dest", type=Path)
    copy.add_argument("--solutions", action="store_true", help="the solution notebooks (answer keys) instead")
    for name, text in (("run", "execute every NN_*.ipynb of FOLDER with papermill"),
                       ("check", "execute every NN_*.ipynb of FOLDER in fast mode; exit 1 if one fails")):
        command = commands.add_parser(name, help=text)
        command.add_argument("folder", type=Path)
        command.add_argument("--only", action="append", metavar="NN", help="only notebook NN (repeatable)")
        command.add_argument("--out", type=Path, help="folder for the executed notebooks (default: FOLDER/executed)")
        if name == "run":
            command.add_argument("--fast", action="store_true", help="fast mode: small samples, fewer iterations")
    args = parser.parse_args(argv)
    if args.command == "copy":
        try:
            paths = copy_notebooks(args.dest, args.solutions)
        except (FileNotFoundError, NotOurFileError) as error:
            print(error, file=sys.stderr)
            return 2
        kind = "solution" if args.solutions else "student"
        print(f"{len(paths)} {kind} notebooks in {args.dest}: " + ", ".join(p.name for p in paths))
        print(f"Open them with `jupyter lab {args.dest}`, or run them all with `course-notebooks run {args.dest}`.")
        return 0
    return course.run_course(args.folder, args.out or args.folder / "executed",
                             fast=args.command == "check" or args.fast, only=args.only)


if __name__ == "__main__":
    sys.exit(main())
