"""`chartsync edge check --data DIR`: do rows, history, outbox and audit agree?"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from edge_node.cli.common import EXIT_FAILURE, EXIT_OK, fail, parser_for
from edge_node.errors import EdgeError, StoreError
from edge_node.store.check import CheckReport, check_store
from edge_node.store.schema import check_version, db_path


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "check", help_text="verify rows, history, outbox and audit chain",
                   description="Verify the database read-only: SQLite quick_check, the audit "
                   "hash chain, resources against history, the outbox against history, an "
                   "outbox replay against the stored states, and an audit row per write. "
                   "--data may also name a backup file.",
                   examples="  chartsync edge check --data /var/lib/chartsync\n"
                   "  chartsync edge check --data /mnt/usb/edge.sqlite3\n")
    p.add_argument("--data", type=Path, required=True, metavar="DIR|FILE")
    p.set_defaults(handler=run)


def check_path(path: Path) -> CheckReport:
    """Check the database in a data directory, or a database file (a backup)."""
    file = db_path(path) if path.is_dir() else path
    if not file.exists():
        raise StoreError(f"{path} holds no edge database", hint="check the --data path")
    check_version(file)
    try:
        conn = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            return check_store(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{file} could not be read: {exc}",
                         hint="restore it from a backup") from exc


def run(args: argparse.Namespace) -> int:
    try:
        report = check_path(args.data)
    except EdgeError as err:
        return fail(err)
    print(f"{report.resources} resources, {report.history} versions, {report.outbox} outbox "
          f"changes, {report.audit} audit rows")
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    if report.ok:
        print("ok")
        return EXIT_OK
    return EXIT_FAILURE
