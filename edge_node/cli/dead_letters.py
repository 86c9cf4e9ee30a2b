"""`chartsync edge dead-letters [list|retry]`: batches the hub refused, and a retry."""

from __future__ import annotations

import argparse
import json

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.errors import EdgeError
from edge_node.store.connection import open_sync
from edge_node.store.ledger import dead_letters, release_dead_letters


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "dead-letters", help_text="batches the hub refused",
                   description="List batches the hub refused (with its reason); after fixing "
                   "the cause, `retry` lets the running sync loop push them again.",
                   examples="  chartsync edge dead-letters --data /var/lib/chartsync\n"
                   "  chartsync edge dead-letters retry --data /var/lib/chartsync\n")
    add_data_option(p)
    p.add_argument("action", nargs="?", choices=("list", "retry"), default="list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        conn = open_sync(args.data)
    except EdgeError as err:
        return fail(err)
    try:
        if args.action == "retry":
            release_dead_letters(conn, wall_ms())
            print("dead letters released; the sync loop pushes them again")
            return EXIT_OK
        letters = dead_letters(conn)
    finally:
        conn.close()
    if args.json:
        print(json.dumps([d.as_json() for d in letters]))
    else:
        for d in letters:
            print(f"#{d.id} seq {d.seq_from}-{d.seq_to} {d.code}: {d.message}\n"
                  f"    next step: {d.hint}")
        if not letters:
            print("no dead letters")
    return EXIT_OK
