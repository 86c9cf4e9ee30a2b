"""Pieces every edge subcommand shares: the --data option, the database, the real clock,
error printing."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from edge_node.errors import EdgeError
from edge_node.node import open_sync

T = TypeVar("T")

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="the edge's data directory (holds edge.sqlite3 and site.key)")


def with_database(data_dir: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn` on the data directory's database (migrated), closed after; raises `EdgeError`
    for a directory without one."""
    conn = open_sync(data_dir)
    try:
        return fn(conn)
    finally:
        conn.close()


def wall_ms() -> int:
    """The real clock, read only at entry points (STYLE.md rule 4)."""
    return time.time_ns() // 1_000_000


def fail(err: EdgeError) -> int:
    """Print a refusal with its next step to stderr; return the failure exit code."""
    print(f"error: {err.message}", file=sys.stderr)
    if err.hint:
        print(f"  next step: {err.hint}", file=sys.stderr)
    return EXIT_FAILURE


def parser_for(sub: argparse._SubParsersAction, name: str, *,  # type: ignore[type-arg]
               help_text: str, description: str, examples: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=description,
        epilog="examples:\n" + examples + "\nexit codes: 0 ok, 1 failure, 2 usage error\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser
