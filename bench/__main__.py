"""`make bench`: run every benchmark and print one table with the targets.

    python -m bench [--only protocol,merge,guard,edge,hub] [--json]

Hub benchmarks need PostgreSQL: CHARTSYNC_BENCH_PG_DSN (default
postgresql://postgres@127.0.0.1:5432/postgres); a suite that cannot run says
why and the others go on.  Numbers are for this machine only: compare
ratios measured in one run (see docs/performance.md on noise).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

Target = tuple[str, float | None, bool]  # (metric, target, higher is better)
T = TypeVar("T")


def _protocol() -> dict[str, float]:
    from bench.protocol_bench import run_protocol_bench
    return run_protocol_bench()


def _merge() -> dict[str, float]:
    from bench.merge_bench import run_merge_bench
    return run_merge_bench()


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a suite's client on uvloop where installed, as the servers run: the client
    shares the 2 cores with the processes it measures, so a cheaper client leaves
    them more."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _edge() -> dict[str, float]:
    from bench.edge_bench import run_edge_bench
    with tempfile.TemporaryDirectory(prefix="chartsync-bench-") as tmp:
        return _run_loop(run_edge_bench(Path(tmp)))


def _hub() -> dict[str, float]:
    from bench.hub_bench import run_hub_bench_sync
    return run_hub_bench_sync()


def _optional(module: str, function: str) -> Callable[[], dict[str, float]]:
    """A suite whose module may not exist yet in this checkout."""
    def run() -> dict[str, float]:
        runner = getattr(importlib.import_module(module), function)
        if asyncio.iscoroutinefunction(runner):
            with tempfile.TemporaryDirectory(prefix="chartsync-bench-") as tmp:
                return _run_loop(runner(Path(tmp)))
        return runner()  # type: ignore[no-any-return]
    return run


SUITES: list[tuple[str, Callable[[], dict[str, float]], list[Target]]] = [
    ("protocol", _protocol, [
        ("change_json_bytes_avg", None, True), ("sealed_bytes_per_change", None, False),
        ("seal_changes_per_s", 100_000, True), ("open_changes_per_s", 100_000, True)]),
    ("merge", _merge, [("merge_changes_per_s", 30_000, True)]),
    ("guard", _optional("bench.guard_bench", "run_guard_bench"), [
        ("scan_20k_history_us", 1_000, False), ("scan_100k_history_us", 1_000, False),
        ("scan_busy_hour_20k_us", None, False)]),
    ("edge", _edge, [
        ("reference_bare_http_posts_per_s", None, True),
        ("reference_sqlite_full_txn_per_s", None, True),
        ("creates_per_s", 3_000, True), ("creates_vs_bare_http", None, True),
        ("create_p99_ms", 25, False),
        ("updates_per_s", 3_000, True), ("update_p99_ms", 25, False),
        ("bundle_resources_per_s", None, True), ("reads_per_s", 5_000, True),
        ("search_patient_p99_ms", 20, False)]),
    ("hub", _hub, [
        ("push_changes_per_s", 50_000, True), ("pull_changes_per_s", None, True),
        ("fanout_p50_ms", None, False), ("fanout_p99_ms", 1_000, False)]),
    ("e2e", _optional("bench.e2e_bench", "run_e2e_bench"), [
        ("propagation_p50_ms", 15, False), ("propagation_p99_ms", 50, False),
        ("throughput_changes_per_s", 10_000, True), ("catchup_50k_s", 10, False)]),
    ("bootstrap", _optional("bench.bootstrap_bench", "run_bootstrap_bench"), [
        ("bootstrap_s", 15, False), ("bootstrap_resources_per_s", None, True)]),
]


def _row(metric: str, value: float, target: float | None, higher: bool) -> str:
    verdict = ""
    if target is not None:
        ok = value >= target if higher else value <= target
        verdict = f"{'≥' if higher else '≤'} {target:,.0f}  {'ok' if ok else 'BELOW TARGET'}"
    shown = f"{value:>14,.2f}" if abs(value) < 10 else f"{value:>14,.1f}"
    return f"  {metric:32s} {shown}   {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated suites: "
                        + ",".join(s[0] for s in SUITES))
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    names = {s[0] for s in SUITES}
    wanted = set(args.only.split(",")) if args.only else names
    if wanted - names:
        parser.error(f"unknown suite(s): {', '.join(sorted(wanted - names))}")
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                               f"Python {platform.python_version()}"}
    print(f"chartsync benchmarks — {results['machine']}")
    for name, run, metrics in SUITES:
        if name not in wanted:
            continue
        print(f"{name}:", flush=True)
        try:
            numbers = run()
        except ModuleNotFoundError as exc:
            print(f"  not available in this checkout ({exc.name})")
            continue
        except OSError as exc:  # e.g. PostgreSQL unreachable for the hub suite
            print(f"  could not run: {exc}")
            continue
        results[name] = numbers
        for metric, target, higher in metrics:
            if metric in numbers:
                print(_row(metric, numbers[metric], target, higher), flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
