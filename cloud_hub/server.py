"""Run the hub: open the store, load (or make) the hub key file, serve HTTP(S) until cancelled."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from aiohttp import web

from cloud_hub.api.app import build_app, runner_options
from cloud_hub.api.context import HubContext, PushFaults
from cloud_hub.api.http_guard import GuardedAppRunner
from cloud_hub.config import HubConfig
from cloud_hub.feed import Feed
from cloud_hub.keyprint import hub_fingerprint, load_signing_key
from cloud_hub.notifier import Notifier
from cloud_hub.store.locator import open_store

log = logging.getLogger(__name__)

#: How long open long-polls and streams get to finish on shutdown.
SHUTDOWN_TIMEOUT_S = 2.0


def _tls(config: HubConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


async def serve(config: HubConfig, *, now_ms: Callable[[], int],
                random_bytes: Callable[[int], bytes],
                on_ready: Callable[[str, str], None],
                push_faults: PushFaults | None = None) -> None:
    """Serve until cancelled; calls `on_ready(url, hub key fingerprint)` once listening.

    `push_faults`: fault points of the push path, for tests (`api.context.PushFaults`).

    Raises `SchemaTooNew` or `StoreUnavailable` if the store cannot be opened, and
    `HubKeyRefused` if the hub key file is unsafe or not this store's.
    """
    if config.hub_key_file is None:
        raise ValueError("config.hub_key_file is unset; build the config with "
                         "parse_hub_config")
    async with open_store(config.store, pool_size=config.pool_size) as store:
        signing_key = await load_signing_key(store, config.hub_key_file, random_bytes(32),
                                             now_ms())
        notifier = Notifier()
        ctx = HubContext(config, store, notifier, Feed(store, notifier), signing_key, now_ms,
                         random_bytes, faults=push_faults or PushFaults())
        # auto_decompress=False: the hub never expands a request body (no compression bombs).
        runner = GuardedAppRunner(build_app(ctx), access_log=None, handle_signals=False,
                                  shutdown_timeout=SHUTDOWN_TIMEOUT_S, auto_decompress=False,
                                  **runner_options(config))
        await runner.setup()
        try:
            tls = _tls(config)
            site = web.TCPSite(runner, config.host, config.port, ssl_context=tls,
                               reuse_address=True)
            await site.start()
            port = runner.addresses[0][1]
            url = f"{'https' if tls else 'http'}://{config.host}:{port}"
            on_ready(url, hub_fingerprint(bytes(signing_key.verify_key)))
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
