"""`chartsync edge request-keys --data DIR`: ask the members to re-send missing key epochs."""

from __future__ import annotations

import argparse
import asyncio

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for
from edge_node.errors import EdgeError
from edge_node.sync.key_requests import request_keys


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "request-keys", help_text="ask the other sites to re-send key epochs "
                   "this site lacks",
                   description="Post a signed request to every approved member of the "
                   "practice; each member's `edge serve` seals the key epochs this site "
                   "lacks to it, and this site's `edge serve` picks them up from its "
                   "mailbox. Use it when the status page or a held batch says a key epoch is "
                   "missing (\"this site holds epochs [1]\").",
                   examples="  chartsync edge request-keys --data /var/lib/chartsync\n")
    add_data_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        asked = asyncio.run(request_keys(args.data))
    except EdgeError as err:
        return fail(err)
    if not asked:
        print("no other approved site to ask: with every other site lost, run "
              "`chartsync edge restore` with the recovery kit")
        return EXIT_OK
    print(f"asked {len(asked)} site(s) for the missing key epochs; they answer while "
          "`edge serve` runs there, and this site's `edge serve` takes the keys in")
    return EXIT_OK
