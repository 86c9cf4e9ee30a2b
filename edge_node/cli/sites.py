"""`chartsync edge sites --data DIR [--json]`: the practice's sites as this site last saw
them at the hub (ids, names, status, public keys).

After losing the hub, a site lost with it can be registered on the rebuilt hub under
its old id and keys (`chartsync hub site register-former --from` this command's
`--json` output, or `POST /v1/practices/{pid}/sites` with an entry's `register`
object), so that the batches it signed, relayed by the others, verify there.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.store.connection import with_database
from edge_node.store.practice_sites import practice_sites


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "sites", help_text="the practice's sites and their public keys",
                   description="List the practice's sites as this site last saw them at the "
                   "hub: id, name, status and public keys (never a secret). With --json, "
                   "the output is what `chartsync hub site register-former --from FILE` reads "
                   "to register the sites lost with the hub on a rebuilt one (each entry's "
                   "`register` object is also the body of POST /v1/practices/{pid}/sites).",
                   examples="  chartsync edge sites --data /var/lib/chartsync\n"
                   "  chartsync edge sites --data /var/lib/chartsync --json > sites.json\n")
    add_data_option(p)
    p.add_argument("--json", action="store_true", help="stable JSON output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        sites = with_database(args.data, practice_sites)
    except EdgeError as err:
        return fail(err)
    if args.json:
        print(json.dumps([{
            "status": s.status, "last_seen_ms": s.seen_ms,
            "register": {"site_id": s.site_id, "name": s.name,
                         "verify_key": base64.b64encode(s.verify_key).decode(),
                         "box_key": base64.b64encode(s.box_key).decode()}}
            for s in sites], indent=1))
        return EXIT_OK
    if not sites:
        print("no sites seen yet (the list fills in once `edge serve` has reached the hub)")
    for s in sites:
        when = dt.datetime.fromtimestamp(s.seen_ms / 1000, dt.UTC)
        print(f"{s.site_id}  {s.status:<9} {s.name}  (seen {when:%Y-%m-%d %H:%M} UTC)")
    return EXIT_OK
