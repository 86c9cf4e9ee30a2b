"""`chartsync edge revoke SITE`: revoke a site and rotate the practice key."""

from __future__ import annotations

import argparse
import asyncio
import os
from uuid import UUID

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.sync.enroll import revoke


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "revoke", help_text="revoke a site and rotate the practice key",
                   description="Revoke SITE at the hub and start a new practice key epoch, "
                   "sealed to every remaining approved site. The revoked site cannot read "
                   "anything written after this.",
                   examples="  chartsync edge revoke 0190... --data /var/lib/chartsync\n")
    add_data_option(p)
    p.add_argument("site", type=UUID)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        epoch = asyncio.run(revoke(args.data, args.site, os.urandom))
    except EdgeError as err:
        return fail(err)
    print(f"site {args.site} revoked; practice key epoch {epoch} sent to the remaining sites")
    return EXIT_OK
