"""Run the benchmarks side by side with their references: `python bench/run.py [name ...]`.

Each benchmark module in bench/ named `bench_<name>.py` has a `run(config) -> list[Result]`.
Settings come from the environment (see bench/README.md): BENCH_ROUNDS, BENCH_SECONDS,
BENCH_CONNECTIONS. Results are printed and written to bench/results/<name>.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchConfig, Result

BENCH_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {available()})"
    )
    args = parser.parse_args()
    config = BenchConfig.from_env()
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    collected: list[Result] = []
    for name in args.names or available():
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        results: list[Result] = module.run(config)
        for index, result in enumerate(results, start=1):
            result.key = result.key or f"{name}.{index}"
            print(result.report(), flush=True)
            print(result.result_line(), flush=True)
        collected += results
        (results_dir / f"{name}.json").write_text(
            json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False)
        )
    print(table(collected), flush=True)
    return 0


def table(results: list[Result]) -> str:
    """Every result of the run, one row each (the RESULT lines, aligned)."""
    rows = [("result", "project", "reference", "ratio", "target", "")]
    for result in results:
        fields = dict(part.split("=", 1) for part in result.result_line().split()[2:-1])
        rows.append(
            (
                result.key,
                fields["project"],
                fields["reference"],
                fields["ratio"],
                fields["target"],
                result.verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n== all results\n" + "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":
    raise SystemExit(main())
