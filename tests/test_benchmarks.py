"""Each benchmark module runs in quick mode and returns well-formed rows (speed itself is not tested here)."""
import importlib
import math
from pathlib import Path

import pytest

NAMES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("name", NAMES)
def test_quick_run_returns_rows(name):
    rows = importlib.import_module(f"benchmarks.{name}").run(quick=True)
    assert rows
    for r in rows:
        assert r["benchmark"]
        numbers = [v for k, v in r.items() if k not in ("benchmark", "baseline", "batch", "max_abs_diff")]
        assert numbers and all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in numbers)
        assert 0 <= r.get("max_abs_diff", 0.0) < 1e-3      # a layout changes float rounding only


def test_main_writes_the_markdown_tables(tmp_path):
    from benchmarks.__main__ import main

    out = tmp_path / "speed.md"
    main(["--quick", "--out", str(out), "bench_layout"])
    text = out.read_text()
    assert text.startswith("# Speed") and "## bench_layout" in text
    assert "| benchmark | ours_s | baseline | baseline_s | ratio | max_abs_diff |" in text


def test_timed_rounds_alternates_the_functions_round_by_round():
    from benchmarks.common import timed_rounds

    calls = []
    rounds = timed_rounds([lambda: calls.append("a"), lambda: calls.append("b")], repeat=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert len(rounds) == 2 and all(len(r) == 3 and min(r) >= 0 for r in rounds)


def test_row_ratio_is_the_median_of_the_ratios_within_rounds():
    from benchmarks.common import row

    # round 2 was slow for both; min/min would give 1.0 / 2.0 = 0.5, the rounds say 0.5, 0.6, 0.25 → 0.5
    r = row("x", [1.0, 3.0, 1.0], "peer", [2.0, 5.0, 4.0])
    assert (r["ours_s"], r["baseline_s"], r["ratio"]) == (1.0, 2.0, 0.5)
    r = row("x", [1.0, 1.2, 1.1], "peer", [1.0, 1.0, 0.5])
    assert r["ratio"] == 1.2
