"""How the kit writes files (core.files): atomic, the user's permissions, never over a file it did not write."""
import os
import stat

import pytest
import torch

from course_utils.core.files import NotOurFileError, write_atomic
from course_utils.models import ShallowCNN1D, load_checkpoint, save_checkpoint


def test_write_atomic_uses_the_umask_and_leaves_no_temporary_file(tmp_path):
    old = os.umask(0o002)
    try:
        path = write_atomic(tmp_path / "sub" / "f.bin", lambda handle: handle.write(b"abc"))
    finally:
        os.umask(old)
    assert path.read_bytes() == b"abc" and stat.S_IMODE(path.stat().st_mode) == 0o664
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_write_atomic_replaces_only_what_it_may_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"the user's")
    with pytest.raises(NotOurFileError, match="not written by course_utils"):
        write_atomic(path, lambda handle: handle.write(b"new"))
    write_atomic(path, lambda handle: handle.write(b"new"), ours=lambda p: p.read_bytes() == b"the user's")
    assert path.read_bytes() == b"new"

    def broken(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(path, broken, ours=lambda p: True)
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_checkpoint_replaces_a_checkpoint_but_not_another_file(tmp_path):
    model = ShallowCNN1D()
    path = save_checkpoint(model, tmp_path / "m.pt", seed=1)
    save_checkpoint(model, path, seed=2)
    assert load_checkpoint(path)[1] == {"seed": 2}
    other = tmp_path / "notes.pt"
    torch.save({"my": "tensor"}, other)
    before = other.read_bytes()
    with pytest.raises(NotOurFileError, match="notes.pt"):
        save_checkpoint(model, other)
    assert other.read_bytes() == before
