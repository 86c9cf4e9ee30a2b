"""`chartsync edge check --data DIR`: do rows, history, outbox and audit agree?"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_node.cli.command import EXIT_FAILURE, EXIT_OK, fail, parser_for
from edge_node.errors import EdgeError, StoreError
from edge_node.store.backup_install import is_encrypted_backup
from edge_node.store.check import check_path


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "check", help_text="verify rows, history, outbox and audit chain",
                   description="Verify the database read-only: SQLite quick_check, the audit "
                   "hash chain, resources against history, the outbox against history, an "
                   "outbox replay against the stored states, and an audit row per write. "
                   "--data may also name a --plaintext backup file; an encrypted one is "
                   "checked by restoring it (`edge restore --from-backup`) into a new "
                   "directory and checking that.",
                   examples="  chartsync edge check --data /var/lib/chartsync\n"
                   "  chartsync edge check --data /mnt/usb/edge.sqlite3\n")
    p.add_argument("--data", type=Path, required=True, metavar="DIR|FILE")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.data.is_file() and is_encrypted_backup(args.data):
            raise StoreError(f"{args.data} is an encrypted backup; check reads databases",
                             hint="restore it into a new directory with `chartsync edge "
                             "restore --from-backup` (that verifies it) and check that")
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
