"""`chartsync edge reenroll`: this site, under its old id and keys, on a rebuilt hub.

    chartsync edge reenroll --data DIR --hub URL --token TOKEN --name NAME

When the hub was lost and rebuilt empty (README "Hub lost"): stop `edge
serve`, re-enroll, start it again; it pushes its own batches and relays the
ones it received, so the hub gets the practice's log back from the sites.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.errors import EdgeError
from edge_node.hub_link.client import HubSettings
from edge_node.store.data_lock import data_dir_owner
from edge_node.sync.enroll import reenroll


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(
        sub, "reenroll", help_text="enroll this site again with a hub rebuilt after a loss",
        description="Enroll this existing site, under its id and keys, with a hub that was "
        "lost and rebuilt empty (the operator re-created the practice under its id). Stop "
        "`chartsync edge serve` first. The site pins the new hub's key, and once served "
        "again pushes its own changes from the start and passes on the other sites' "
        "changes it holds, so the hub gets the practice's history back. The first site "
        "uses a token from the operator; the others a token from `chartsync edge invite` "
        "on a re-enrolled site, and are approved with `chartsync edge approve`.",
        examples="  chartsync edge reenroll --data /var/lib/chartsync --hub "
        "https://hub.example.jp --token cse_... --name 'Main clinic'\n")
    add_data_option(p)
    p.add_argument("--hub", required=True, help="the rebuilt hub (https://...)")
    p.add_argument("--token", required=True, help="one-time enrollment token of the "
                   "practice on the rebuilt hub")
    p.add_argument("--name", required=True, help="this site's name as the practice sees it")
    p.add_argument("--hub-ca", type=Path, help="PEM CA file the hub's certificate chains to "
                   "(default: the system store)")
    p.add_argument("--insecure-http", action="store_true",
                   help="allow a plain http:// hub (loopback demos only)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = HubSettings.parse(args.hub, ca_file=args.hub_ca,
                                     insecure_http=args.insecure_http)
        with data_dir_owner(args.data, "reenroll"):
            result = asyncio.run(reenroll(args.data, settings, token=args.token,
                                          name=args.name, now_ms=wall_ms()))
    except EdgeError as err:
        return fail(err)
    print(f"site {result.site_id} re-enrolled in practice {result.practice_id} "
          f"({result.status})")
    print(f"site key fingerprint {result.fingerprint}")
    print(f"{result.own_batches} own batches will be pushed again and {result.relays} "
          "received ones passed on once `chartsync edge serve` runs")
    if result.status != "approved":
        print("This site is PENDING. On a re-enrolled, approved site, an admin runs:\n"
              f"  chartsync edge approve {result.site_id} --fingerprint {result.fingerprint}")
    return EXIT_OK
