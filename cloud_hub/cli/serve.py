"""`chartsync hub serve`: run the hub on a store until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
import tomllib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import nacl.utils

from cloud_hub.cli.store_arg import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from cloud_hub.config import ConfigError, HubConfig, parse_hub_config
from cloud_hub.errors import HubError
from cloud_hub.server import serve

_EXAMPLES = """\
examples:
  chartsync hub serve --store sqlite:/var/lib/chartsync/hub.db
  chartsync hub serve --store postgresql://hub@127.0.0.1/chartsync --host 0.0.0.0 --port 8443 \\
      --hub-key-file /var/lib/chartsync-hub/hub-signing.key \\
      --tls-cert /etc/chartsync/hub.pem --tls-key /etc/chartsync/hub.key
  chartsync hub serve --config /etc/chartsync/hub.toml     # keys of the [hub] table
"""


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "serve", help="run the hub", description="Run the hub. An empty store gets the "
        "schema; a store written by a newer hub is refused.", epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="TOML file with a [hub] table")
    parser.add_argument("--store", help="sqlite:PATH or postgresql://USER@HOST/DB")
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 8443; 0 = any free)")
    parser.add_argument("--tls-cert", help="PEM certificate (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key (with --tls-cert)")
    parser.add_argument("--max-drift-ms", type=int, help="allowed clock lead of a batch")
    parser.add_argument("--max-batch-bytes", type=int, help="largest sealed batch")
    parser.add_argument("--retention-batches", type=int,
                        help="keep at least N latest batches per practice; older ones are "
                        "trimmed once a verified snapshot covers them (default 0: keep all)")
    parser.add_argument("--snapshots-kept", type=int, help="verified snapshot generations "
                        "kept per practice (default 3)")
    parser.add_argument("--hub-key-file", help="file with the hub's signing seed, made "
                        "(mode 0600) on first start (default: hub-signing.key next to a "
                        "sqlite: store; required for PostgreSQL)")
    parser.add_argument("--metrics-token", help="a bearer token that may scrape /metrics "
                        "(besides the operator credential); prefer the config file")
    parser.set_defaults(handler=run)


def raw_options(args: argparse.Namespace) -> dict[str, Any]:
    """The [hub] table of --config, overridden by the command-line options given."""
    raw: dict[str, Any] = {}
    if args.config is not None:
        raw.update(tomllib.loads(args.config.read_text(encoding="utf-8")).get("hub", {}))
    for key in ("store", "host", "port", "tls_cert", "tls_key", "max_drift_ms",
                "max_batch_bytes", "retention_batches", "snapshots_kept", "metrics_token",
                "hub_key_file"):
        if getattr(args, key) is not None:
            raw[key] = getattr(args, key)
    return raw


def run(args: argparse.Namespace) -> int:
    try:
        config = parse_hub_config(raw_options(args))
    except (ConfigError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                        "%(message)s")
    try:
        _event_loop_runner()(_main(config))
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


async def _main(config: HubConfig) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)

    def ready(url: str, fingerprint: str) -> None:
        print(f"chartsync hub listening on {url} (hub key {fingerprint})", flush=True)

    # SIGINT/SIGTERM cancel this task: the normal way to stop a server, not an error.
    with contextlib.suppress(asyncio.CancelledError):
        await serve(config, now_ms=lambda: int(time.time() * 1000),
                    random_bytes=nacl.utils.random, on_ready=ready)


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop where it is installed (Linux, macOS), asyncio's own loop elsewhere: fan-out
    to hundreds of sockets is transport work, which uvloop does in C."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run
