"""`chartsync edge roster --data DIR [--json]`: the practice's members as this site
verified them (the member-signed roster), and the recovery kit it names."""

from __future__ import annotations

import argparse
import json

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.store.connection import with_database
from edge_node.store.roster_store import stored_roster


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "roster", help_text="the practice's members, as the roster proves "
                   "them",
                   description="List the members of the practice as this site verified them "
                   "in the member-signed roster: site id, state, fingerprint, the entry "
                   "that admitted (and revoked) it; the key epoch in force and the "
                   "recovery kit's fingerprint. Keys are sealed only to these members.",
                   examples="  chartsync edge roster --data /var/lib/chartsync\n"
                   "  chartsync edge roster --data /var/lib/chartsync --json\n")
    add_data_option(p)
    p.add_argument("--json", action="store_true", help="stable JSON output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        roster = with_database(args.data, lambda conn: stored_roster(conn, args.data))
    except EdgeError as err:
        return fail(err)
    if roster is None:
        print("this site holds no roster yet (it arrives once `edge serve` reaches the hub)")
        return EXIT_OK
    members = sorted(roster.members.values(), key=lambda m: m.since_seq)
    if args.json:
        print(json.dumps({
            "practice_id": str(roster.practice_id), "epoch": roster.epoch,
            "kit_fingerprint": roster.kit.fingerprint, "entries": roster.head_seq + 1,
            "ignored_entries": list(roster.ignored),
            "members": [{"site_id": str(m.site_id), "approved": m.approved,
                         "fingerprint": m.keys.fingerprint, "since_entry": m.since_seq,
                         "revoked_entry": m.revoked_seq} for m in members]}, indent=1))
        return EXIT_OK
    print(f"practice {roster.practice_id}: key epoch {roster.epoch}, recovery kit "
          f"{roster.kit.fingerprint}, {roster.head_seq + 1} roster entries")
    for m in members:
        state = "approved" if m.approved else f"revoked (entry {m.revoked_seq})"
        print(f"{m.site_id}  {state:<20} {m.keys.fingerprint}  "
              f"(entry {m.since_seq})")
    if roster.ignored:
        print(f"entries without effect (kept, ignored): {list(roster.ignored)}")
    return EXIT_OK
