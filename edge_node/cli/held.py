"""`chartsync edge held [list|approve|discard]`: held batches and the blast-radius guard."""

from __future__ import annotations

import argparse
import json

from edge_node.cli.common import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.node import open_sync


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
                top = conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]
                conn.execute("UPDATE sync_state SET guard_decision = 'approved', "
                             "guard_from_seq = ?", (top,))
            else:
                conn.execute("UPDATE sync_state SET guard_decision = 'discard'")
            print(f"guard hold: {args.action} recorded; the sync loop carries it out")
            return EXIT_OK
        rows = conn.execute("SELECT origin, seq_from, seq_to, hub_seq, reason, detail FROM "
                            "held_batches ORDER BY hub_seq").fetchall()
    finally:
        conn.close()
    if args.json:
        print(json.dumps([dict(zip(("origin", "seq_from", "seq_to", "hub_seq", "reason",
                                    "detail"), r, strict=True)) for r in rows]))
    else:
        for r in rows:
            print(f"site {r[0]} seq {r[1]}-{r[2]} (hub {r[3]}) {r[4]}: {r[5]}")
        if not rows:
            print("nothing held")
    return EXIT_OK
