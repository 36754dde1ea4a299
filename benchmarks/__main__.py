"""``python -m benchmarks [--quick] [names…]``: run every ``bench_*.py`` module and print one table each."""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> None:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("only", nargs="*", help=f"modules to run, from {names} (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        parser.error(f"unknown benchmark {unknown}; choose from {names}")
    for name in args.only or names:
        rows = importlib.import_module(f"benchmarks.{name}").run(quick=args.quick)
        print(f"\n## {name}\n")
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"), flush=True)


if __name__ == "__main__":
    main()
