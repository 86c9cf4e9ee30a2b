"""`chartsync edge approve SITE --fingerprint FP`: approve a pending site, send it the keys."""

from __future__ import annotations

import argparse
import asyncio
from uuid import UUID

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.sync.enroll import approve


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "approve", help_text="approve a pending site after its fingerprint",
                   description="Compare FP (read from the new site's screen) with the keys "
                   "the site registered; if they match, approve it at the hub and send it the "
                   "practice keys sealed to its own key. A wrong fingerprint is refused.",
                   examples="  chartsync edge approve 0190... --fingerprint ABCD-EFGH-IJKL-"
                   "MNOP-QRST --data /var/lib/chartsync\n")
    add_data_option(p)
    p.add_argument("site", type=UUID)
    p.add_argument("--fingerprint", required=True)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        name = asyncio.run(approve(args.data, args.site, args.fingerprint))
    except EdgeError as err:
        return fail(err)
    print(f"site {args.site} ({name}) approved; practice keys sent sealed to it")
    return EXIT_OK
