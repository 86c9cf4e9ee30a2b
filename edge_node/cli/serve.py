"""`chartsync edge serve --data DIR --host H --port P`: the FHIR API on the LAN.

Prints `listening http://H:PORT` once accepting (PORT is the real one when
--port 0), then serves until SIGTERM or SIGINT, committing everything queued
before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Final

from aiohttp import web

from edge_node.api.app import AccessLogger, build_app
from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.config import EdgeConfig, parse_edge_config
from edge_node.errors import EdgeError
from edge_node.hub_link.settings import SyncSettings, parse_sync_settings
from edge_node.node import Edge
from edge_node.store.data_lock import data_dir_owner
from edge_node.sync.loop import SyncLoop

#: The cyclic garbage collector's thresholds for a serving edge.  Merging allocates
#: several small tuples per change, almost none of them in cycles (reference counting
#: frees them); with CPython's default (700, 10, 10) the collector ran 1,500 times
#: and scanned the whole heap 10 times while applying 20,000 pulled changes: 0.7-0.9 s
#: of a 2.4 s catch-up.  With these, 80 young collections and no full one
#: (0.2-0.3 s); catch-up went from 7,800-8,600 to 9,800-11,700 changes/s.
GC_THRESHOLDS: Final = (10_000, 10, 10)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "serve", help_text="serve the FHIR API on the LAN",
                   description="Serve FHIR R4 at /fhir, the audit log at /audit and the "
                   "status at /status. Works with no hub and no internet.",
                   examples="  chartsync edge serve --data /var/lib/chartsync --host 0.0.0.0 "
                   "--port 8080\n")
    add_data_option(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024)
    p.add_argument("--require-if-match", action="store_true",
                   help="answer 428 to updates without If-Match")
    p.add_argument("--access-log", action="store_true",
                   help="log method, route, status and duration of every request (ids and "
                   "query strings are never logged); costs ~10%% of throughput")
    p.add_argument("--sync-option", action="append", default=[], metavar="KEY=VALUE",
                   help="tune the sync loop, e.g. heartbeat_s=10 guard_share=0.2 "
                   "(see edge_node/hub_link/settings.py)")
    p.set_defaults(handler=run)


def sync_options(args: argparse.Namespace) -> dict[str, float | int]:
    """The `--sync-option KEY=VALUE` flags as numbers, for `parse_sync_settings`."""
    out: dict[str, float | int] = {}
    for item in args.sync_option:
        key, _, value = item.partition("=")
        out[key.strip()] = float(value) if "." in value else int(value)
    return out


async def serve(args: argparse.Namespace) -> None:
    config = parse_edge_config({"data_dir": args.data, "max_body_bytes": args.max_body_bytes,
                                "require_if_match": args.require_if_match})
    sync_settings = parse_sync_settings(sync_options(args))
    with data_dir_owner(config.data_dir, "serve"):
        await _serve(args, config, sync_settings)


async def _serve(args: argparse.Namespace, config: EdgeConfig,
                 sync_settings: SyncSettings) -> None:
    async with Edge.open(config, clock=wall_ms, entropy=os.urandom) as edge, \
            SyncLoop.open(edge, sync_settings) as sync:
        if sync is None:
            logging.getLogger(__name__).info("not enrolled with a hub: serving locally only")
        runner = web.AppRunner(
            build_app(edge, sync), access_log_class=AccessLogger, handle_signals=False,
            access_log=logging.getLogger("edge_node.access") if args.access_log else None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, args.host, args.port)
            await site.start()
            port = runner.addresses[0][1]
            gc.freeze()  # what start-up made lives as long as the process: never scan it
            print(f"listening http://{args.host}:{port}", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        _event_loop_runner()(serve(args))
    except EdgeError as err:
        return fail(err)
    return EXIT_OK


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop where it is installed (Linux, macOS): the edge spends about a quarter of its
    CPU in the event loop's transports under load; asyncio's own loop elsewhere."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run
