"""Pieces every edge subcommand shares: the --data option, the real clock, error printing."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import Final

from edge_node.errors import EdgeError

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="the edge's data directory (holds edge.sqlite3 and site.key)")


def wall_ms() -> int:
    """The real clock, read only here at the entry points; everything below takes `now_ms`
    so tests can pass plain integers."""
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


__all__ = ["EXIT_FAILURE", "EXIT_OK", "add_data_option", "fail", "os_user", "parser_for",
           "wall_ms"]


def os_user() -> str:
    """Who runs this command, for the audit log: the operating-system account."""
    try:
        return f"os:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"os-uid:{os.getuid()}"
