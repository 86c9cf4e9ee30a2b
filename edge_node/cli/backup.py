"""`chartsync edge backup --data DIR --to FILE`: consistent online copy of the database."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.store.backup import backup


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "backup", help_text="consistent online backup of the database",
                   description="Copy the live database with SQLite's online backup API "
                   "(safe while the server runs). Keep DIR/site.key apart: the copy holds the "
                   "site keys sealed under it.",
                   examples="  chartsync edge backup --data DIR --to /mnt/usb/edge.sqlite3\n")
    add_data_option(p)
    p.add_argument("--to", type=Path, required=True, metavar="FILE")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        target = backup(args.data, args.to)
    except EdgeError as err:
        return fail(err)
    print(f"backup written to {target}")
    return EXIT_OK
