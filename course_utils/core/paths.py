"""Where the kit's files are: the source checkout (when there is one) and the one data home.

The data home is, in this order: the folder passed explicitly (``root=``/``data_dir=``), the environment variable
``COURSE_DATA_DIR``, and otherwise a per-user cache folder (``pooch.os_cache("course-utils")``, e.g.
``~/.cache/course-utils`` on Linux). It does not depend on the folder a kernel or a script starts in.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VARIABLE = "COURSE_DATA_DIR"


PACKAGE_PARENT = Path(__file__).resolve().parents[2]
"""The folder that holds the ``course_utils`` package: the checkout, or ``site-packages`` for an installed wheel."""


def _source_root() -> Path | None:
    """The repository root when the package runs from a source checkout (``pip install -e``), else ``None``."""
    root = PACKAGE_PARENT
    return root if (root / "pyproject.toml").is_file() and (root / "course_utils").is_dir() else None


SOURCE_ROOT: Path | None = _source_root()


def data_home(explicit: str | os.PathLike | None = None) -> Path:
    """The folder the kit reads and writes data in: ``explicit``, else ``$COURSE_DATA_DIR``, else the user cache."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if os.environ.get(DATA_DIR_VARIABLE):
        return Path(os.environ[DATA_DIR_VARIABLE]).expanduser()
    import pooch

    return Path(pooch.os_cache("course-utils"))
