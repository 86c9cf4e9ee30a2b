"""`make bench`: run every benchmark and print one table with the targets.

    python -m bench [--only protocol,merge,hub] [--json]

Hub benchmarks need PostgreSQL: CHARTSYNC_BENCH_PG_DSN (default
postgresql://postgres@127.0.0.1:5432/postgres); they are skipped with a
reason when it is unreachable.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from collections.abc import Callable
from typing import Any

#: (name, module, function, [(metric, target, higher_is_better)])
SUITES: list[tuple[str, str, str, list[tuple[str, float | None, bool]]]] = [
    ("protocol", "bench.protocol_bench", "run_protocol_bench", [
        ("change_json_bytes_avg", None, True), ("sealed_bytes_per_change", None, False),
        ("seal_changes_per_s", 100_000, True), ("open_changes_per_s", 100_000, True)]),
    ("merge", "bench.merge_bench", "run_merge_bench", [
        ("merge_changes_per_s", 30_000, True)]),
]


def _row(metric: str, value: float, target: float | None, higher: bool) -> str:
    verdict = ""
    if target is not None:
        ok = value >= target if higher else value <= target
        verdict = f"{'≥' if higher else '≤'} {target:,.0f}  {'ok' if ok else 'BELOW TARGET'}"
    return f"  {metric:32s} {value:>14,.1f}   {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated suites: "
                        + ",".join(s[0] for s in SUITES))
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else {s[0] for s in SUITES}
    results: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, "
                               f"{os.cpu_count()} cores, Python {platform.python_version()}"}
    print(f"chartsync benchmarks — {results['machine']}")
    for name, module, func, metrics in SUITES:
        if name not in wanted:
            continue
        try:
            run: Callable[[], dict[str, float]] = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as exc:
            print(f"{name}: not available ({exc})")
            continue
        print(f"{name}:", flush=True)
        numbers = run()
        results[name] = numbers
        for metric, target, higher in metrics:
            if metric in numbers:
                print(_row(metric, numbers[metric], target, higher), flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
