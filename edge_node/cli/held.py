"""`chartsync edge held [list|approve|discard]`: held batches and the blast-radius guard."""

from __future__ import annotations

import argparse
import json

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.store.connection import open_sync
from edge_node.store.guard_counts import approve_guard, discard_guard
from edge_node.store.received import held_batches


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "held", help_text="held batches; approve or discard a guard hold",
                   description="List incoming batches held back (gap, upgrade needed, key "
                   "epoch missing, ...). `approve` releases this site's own destructive "
                   "changes held by the blast-radius guard; `discard` restores the affected "
                   "records to their content before the hour and releases both together.",
                   examples="  chartsync edge held --data /var/lib/chartsync\n"
                   "  chartsync edge held approve --data /var/lib/chartsync\n")
    add_data_option(p)
    p.add_argument("action", nargs="?", choices=("list", "approve", "discard"), default="list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        conn = open_sync(args.data)
    except EdgeError as err:
        return fail(err)
    try:
        if args.action in ("approve", "discard"):
            if args.action == "approve":
                approve_guard(conn)
            else:
                discard_guard(conn)
            print(f"guard hold: {args.action} recorded; the sync loop carries it out")
            return EXIT_OK
        held = held_batches(conn)
    finally:
        conn.close()
    if args.json:
        print(json.dumps([{"origin": h.origin, "seq_from": h.seq_from, "seq_to": h.seq_to,
                            "hub_seq": h.hub_seq, "reason": h.reason, "detail": h.detail}
                           for h in held]))
    else:
        for h in held:
            print(f"site {h.origin} seq {h.seq_from}-{h.seq_to} (hub {h.hub_seq}) "
                  f"{h.reason}: {h.detail}")
        if not held:
            print("nothing held")
    return EXIT_OK
