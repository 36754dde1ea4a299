"""course_utils.core.batching: the automatic rows per pass follow the cache size read from sysfs."""
import torch

from course_utils.core import batching


def _fake_cache(tmp_path, sizes):
    for i, (kind, size) in enumerate(sizes):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    return tmp_path


def test_cache_bytes_is_the_largest_data_cache(tmp_path):
    root = _fake_cache(tmp_path, [("Data", "32K"), ("Instruction", "64M"), ("Unified", "512K"), ("Unified", "32768K")])
    assert batching.cache_bytes(root) == 32 * 2**20


def test_unreadable_cache_falls_back(tmp_path):
    assert batching.cache_bytes(tmp_path / "missing") == batching.FALLBACK_CACHE_BYTES


def test_auto_rows_scales_with_the_cache(monkeypatch):
    tile = torch.zeros(2, 3, 64, 64)                       # 48 KiB a row in float32
    monkeypatch.setattr(batching, "cache_bytes", lambda: 32 * 2**20)
    assert batching.auto_rows(tile) == 32 * 2**20 // (batching.ACTIVATION_FACTOR * 3 * 64 * 64 * 4) == 42
    assert batching.auto_rows(tile.double()) == 21         # twice the bytes, half the rows
    assert batching.auto_rows(torch.zeros(4, 1, 40)) == batching.MAX_ROWS
    monkeypatch.setattr(batching, "cache_bytes", lambda: 1)
    assert batching.auto_rows(tile) == 1
