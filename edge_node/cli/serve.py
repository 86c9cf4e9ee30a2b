"""`chartsync edge serve --data DIR --host H --port P`: the FHIR API on the LAN.

Prints `listening http://H:PORT` (`https://` with `--tls-cert`/`--tls-key`) once
accepting (PORT is the real one when --port 0), then serves until SIGTERM or SIGINT,
committing everything queued before it exits.  Plain HTTP on an address other than
loopback is served, but with a warning in the log and on the status page: tokens and
charts cross the LAN readable by anyone on it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from edge_node.api.app import AccessLogger, build_app, runner_options
from edge_node.api.http_guard import GuardedAppRunner
from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.config import LIMIT_OPTIONS, EdgeConfig, parse_edge_config
from edge_node.errors import EdgeError, StoreError
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
PLAIN_HTTP_WARNING: Final = (
    "This server speaks plain HTTP on the clinic network: staff tokens and charts can be "
    "read by anyone on it. Make a certificate with `chartsync edge tls-cert` and restart "
    "`edge serve` with --tls-cert and --tls-key.")
log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "serve", help_text="serve the FHIR API on the LAN",
                   description="Serve FHIR R4 at /fhir, the audit log at /audit and the "
                   "status at /status. Works with no hub and no internet.",
                   examples="  chartsync edge serve --data /var/lib/chartsync --host 0.0.0.0 "
                   "--port 8443 \\\n      --tls-cert /var/lib/chartsync/tls-cert.pem "
                   "--tls-key /var/lib/chartsync/tls-key.pem\n"
                   "  chartsync edge serve --data DIR --limit-option rate_per_s=20 "
                   "--limit-option lockout_s=60\n")
    add_data_option(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024)
    p.add_argument("--tls-cert", type=Path, metavar="FILE",
                   help="PEM certificate: serve HTTPS (TLS 1.2 at least); with --tls-key. "
                   "`chartsync edge tls-cert` makes one")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    p.add_argument("--limit-option", action="append", default=[], metavar="KEY=VALUE",
                   help="abuse limits: " + ", ".join(LIMIT_OPTIONS) +
                   " (see edge_node/config.py)")
    p.add_argument("--require-if-match", action="store_true",
                   help="answer 428 to updates without If-Match")
    p.add_argument("--access-log", action="store_true",
                   help="log method, route, status and duration of every request (ids and "
                   "query strings are never logged); costs ~10%% of throughput")
    p.add_argument("--sync-option", action="append", default=[], metavar="KEY=VALUE",
                   help="tune the sync loop, e.g. heartbeat_s=10 guard_share=0.2 "
                   "(see edge_node/hub_link/settings.py)")
    p.set_defaults(handler=run)


def key_values(items: list[str], flag: str) -> dict[str, float | int]:
    """`KEY=VALUE` flags as numbers; raises `StoreError` naming a value that is none."""
    out: dict[str, float | int] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = float(value) if "." in value else int(value)
        except ValueError:
            raise StoreError(f"{flag} {item!r} is not KEY=NUMBER",
                             hint=f"example: {flag} heartbeat_s=10") from None
    return out


def sync_options(args: argparse.Namespace) -> dict[str, float | int]:
    """The `--sync-option KEY=VALUE` flags as numbers, for `parse_sync_settings`."""
    return key_values(args.sync_option, "--sync-option")


def edge_config(args: argparse.Namespace) -> EdgeConfig:
    """The `EdgeConfig` of the command line; raises `StoreError` naming a bad option."""
    limits = key_values(args.limit_option, "--limit-option")
    unknown = set(limits) - set(LIMIT_OPTIONS)
    if unknown:
        raise StoreError(f"unknown --limit-option {sorted(unknown)[0]!r}",
                         hint="options: " + ", ".join(LIMIT_OPTIONS))
    return parse_edge_config({"data_dir": args.data, "max_body_bytes": args.max_body_bytes,
                              "require_if_match": args.require_if_match,
                              "tls_cert": args.tls_cert, "tls_key": args.tls_key, **limits})


def tls_context(config: EdgeConfig) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 at least), or None for plain HTTP."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise StoreError(f"cannot use the TLS certificate {config.tls_cert} with key "
                         f"{config.tls_key}: {exc.strerror or type(exc).__name__}",
                         hint="check both paths and that the key belongs to the certificate; "
                         "`chartsync edge tls-cert` makes a pair") from exc
    return context


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: an address no other machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_warnings(host: str, tls: ssl.SSLContext | None) -> tuple[str, ...]:
    """What staff must be told about this server (plain HTTP off loopback)."""
    return (PLAIN_HTTP_WARNING,) if tls is None and not is_loopback(host) else ()


async def serve(args: argparse.Namespace) -> None:
    config = edge_config(args)
    sync_settings = parse_sync_settings(sync_options(args))
    tls = tls_context(config)
    with data_dir_owner(config.data_dir, "serve"):
        await _serve(args, config, sync_settings, tls)


async def _serve(args: argparse.Namespace, config: EdgeConfig,
                 sync_settings: SyncSettings, tls: ssl.SSLContext | None) -> None:
    warnings = server_warnings(args.host, tls)
    async with Edge.open(config, clock=wall_ms, entropy=os.urandom) as edge, \
            SyncLoop.open(edge, sync_settings) as sync:
        if sync is None:
            log.info("not enrolled with a hub: serving locally only")
        for warning in warnings:
            log.warning(warning)
        runner = GuardedAppRunner(
            build_app(edge, sync, warnings=warnings), access_log_class=AccessLogger,
            handle_signals=False, **runner_options(config),
            access_log=logging.getLogger("edge_node.access") if args.access_log else None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, args.host, args.port, ssl_context=tls)
            await site.start()
            port = runner.addresses[0][1]
            gc.freeze()  # what start-up made lives as long as the process: never scan it
            scheme = "https" if tls is not None else "http"
            print(f"listening {scheme}://{args.host}:{port}", flush=True)
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
