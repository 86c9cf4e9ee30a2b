"""`chartsync edge dead-letters [list|retry]`: batches the hub refused, and a retry."""

from __future__ import annotations

import argparse
import json

from edge_node.cli.common import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.errors import EdgeError
from edge_node.node import open_sync


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
            conn.execute("UPDATE dead_letters SET resolved_ms = ? WHERE resolved_ms IS NULL",
                         (wall_ms(),))
            print("dead letters released; the sync loop pushes them again")
            return EXIT_OK
        rows = conn.execute("SELECT id, seq_from, seq_to, code, message, hint, at_ms FROM "
                            "dead_letters WHERE resolved_ms IS NULL ORDER BY id").fetchall()
    finally:
        conn.close()
    if args.json:
        print(json.dumps([dict(zip(("id", "seq_from", "seq_to", "code", "message", "hint",
                                    "at_ms"), r, strict=True)) for r in rows]))
    else:
        for r in rows:
            print(f"#{r[0]} seq {r[1]}-{r[2]} {r[3]}: {r[4]}\n    next step: {r[5]}")
        if not rows:
            print("no dead letters")
    return EXIT_OK
