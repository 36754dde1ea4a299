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
        numbers = [v for k, v in r.items() if k not in ("benchmark", "baseline", "batch")]
        assert numbers and all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in numbers)


def test_best_times_alternates_the_functions_round_by_round():
    from benchmarks.common import best_times

    calls = []
    times = best_times([lambda: calls.append("a"), lambda: calls.append("b")], repeat=3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert len(times) == 2 and all(t >= 0 for t in times)
