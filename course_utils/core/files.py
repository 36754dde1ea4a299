"""How the kit writes a file: atomically, with the user's normal permissions, never over a file it did not write.

A file appears complete or not at all (written to a temporary file beside it, then ``os.replace``); it gets the
permissions any new file of the user gets (``0o666`` minus the umask, as ``open(..., "w")`` gives), not the
``0o600`` of :mod:`tempfile`. An existing file is replaced only when ``ours(path)`` says the kit wrote it;
anything else (the user's own data, a file of the same name from elsewhere) raises :class:`FileExistsError`.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


class NotOurFileError(FileExistsError):
    """The kit was asked to replace a file it did not write."""


def refuse_unless_ours(path: str | os.PathLike, ours: Callable[[Path], bool] | None, what: str = "file") -> None:
    """Raise :class:`NotOurFileError` if ``path`` exists and ``ours`` (None: nothing is ours) does not claim it."""
    path = Path(path)
    if path.exists() and (ours is None or not ours(path)):
        raise NotOurFileError(
            f"{path} already exists and was not written by course_utils, so it is left as it is. Move it away (or "
            f"delete it) if the kit may write its {what} there, or choose another folder.")


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None],
                 ours: Callable[[Path], bool] | None = None, what: str = "file") -> Path:
    """Create or replace ``path`` with what ``write(handle)`` writes to a binary handle; returns ``path``.

    ``ours(existing_path)`` says whether an existing file is one the kit wrote (and may replace); without it an
    existing file is never replaced.
    """
    path = Path(path)
    refuse_unless_ours(path, ours, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def user_permissions(path: str | os.PathLike) -> None:
    """Give ``path`` the permissions of a new file of this user (``0o666`` minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
