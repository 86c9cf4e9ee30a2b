"""`chartsync edge invite --data DIR`: a one-time token for a new site of this practice."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.sync.enroll import invite


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "invite", help_text="issue an enrollment token for a new site",
                   description="Ask the hub for a one-time, expiring enrollment token; the "
                   "new site runs `chartsync edge init --hub URL --token TOKEN --name NAME`.",
                   examples="  chartsync edge invite --data /var/lib/chartsync\n")
    add_data_option(p)
    p.add_argument("--ttl-s", type=int, help="lifetime of the token in seconds")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        token, expires_ms = asyncio.run(invite(args.data, args.ttl_s))
    except EdgeError as err:
        return fail(err)
    print(token)  # alone on stdout, for scripts
    until = dt.datetime.fromtimestamp(expires_ms / 1000, dt.UTC)
    print(f"one-time token, valid until {until:%Y-%m-%d %H:%M} UTC; on the new site run "
          "`chartsync edge init --data DIR --hub URL --token TOKEN --name NAME`",
          file=sys.stderr)
    return EXIT_OK
