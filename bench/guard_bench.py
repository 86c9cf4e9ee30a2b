"""The blast-radius guard's scan: what one pusher round pays to count this site's
destructive changes of the last hour (`edge_node.sync.guard.guard_scan`).

A fresh edge database gets synthetic history rows of this site: old ones spread over
30 days, and some within the last hour (every fifth an update of an old record, so
the guard has destructive changes to count), each with ~750 bytes of JSON.  The timed
region is one `guard_scan`, best of 5 runs of 20 calls, in microseconds.

Since schema v3 (index history(origin, recorded_ms)) the cost follows the rows of the
last hour, not the history: 20,000 or 100,000 rows of history with a quiet hour stay
well under 1 ms (the query of schema v2, which walked every row of the site, took 6.7
and 36 ms on the 2-core reference VM); an hour with 20,000 writes of this site (a bulk
import) still costs a scan of those rows (~19 ms, as before).

    python -m bench --only guard
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from edge_node.node import init_data_dir
from edge_node.store.schema import db_path
from edge_node.sync.guard import WINDOW_MS, guard_scan

#: (metric, history rows, of which within the last hour)
CASES: Final = (("scan_20k_history_us", 20_000, 50),
                ("scan_100k_history_us", 100_000, 50),
                ("scan_busy_hour_20k_us", 20_000, 20_000))
NOW_MS: Final = 1_714_000_000_000
DAYS_MS: Final = 30 * 86_400_000
#: A version's JSON, about the size of a small chart entry (rows are read page by page).
JSON: Final = b'{"resourceType":"Patient","text":"' + b"x" * 700 + b'"}'


def _database(root: Path, rows: int, recent: int) -> tuple[sqlite3.Connection, str]:
    data = root / f"e{rows}-{recent}"
    init_data_dir(data, now_ms=NOW_MS, entropy=os.urandom, admin_name="admin")
    conn = sqlite3.connect(db_path(data), isolation_level=None)
    site = str(conn.execute("SELECT site_id FROM site").fetchone()[0])
    old = rows - recent
    history = []
    for i in range(rows):
        if i < old:
            at = NOW_MS - WINDOW_MS - 1 - (old - i) * (DAYS_MS // old)
            rid, version = f"r{i}", 1
        else:
            j = i - old
            at = NOW_MS - WINDOW_MS + 1 + j * (WINDOW_MS - 2) // recent
            rid, version = (f"r{j}", 2) if j % 5 == 0 and j < old else (f"n{j}", 1)
        history.append(("Patient", rid, version, site, i + 1, "u", "d", 0, at, 0, JSON))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO history (type, id, version, origin, seq, user, device, hlc, "
                     "recorded_ms, deleted, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     history)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    return conn, site


def _best_us(call: Callable[[], object], repeat: int = 20) -> float:
    call()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        runs.append((time.perf_counter() - started) / repeat)
    return min(runs) * 1e6


def run_guard_bench() -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="chartsync-bench-") as tmp:
        for metric, rows, recent in CASES:
            conn, site = _database(Path(tmp), rows, recent)
            try:
                out[metric] = _best_us(functools.partial(guard_scan, conn, site, NOW_MS, 50))
            finally:
                conn.close()
    return out


if __name__ == "__main__":
    print(run_guard_bench())
