"""What every handler needs, built once at startup and stored under one typed `AppKey`.

`PushFaults` are the push path's fault points: tests of the sites' pushers inject
them (`serve(..., push_faults=)`) to hold a request in flight, to answer as a hub of
another release, or to sign a receipt with another key.  Production never sets them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nacl.signing
from aiohttp import web

from cloud_hub.config import HubConfig
from cloud_hub.feed import Feed
from cloud_hub.ingest import PushPolicy
from cloud_hub.metrics import HubMetrics
from cloud_hub.notifier import Notifier
from cloud_hub.store.base import HubStore


@dataclass(frozen=True)
class PushFaults:
    """Fault points in the push path, for tests (the defaults change nothing)."""

    #: Awaited once per push request, after the site is authenticated and before the
    #: body is read: it may wait (the request stays in flight) or raise a `HubError` /
    #: `ProtocolError`, answered and counted as that push's refusal.
    before_push: Callable[[web.Request], Awaitable[None]] | None = None
    #: `receipt_key(hub_seq, hub_key)`: the key that signs the receipt of `hub_seq`.
    receipt_key: Callable[[int, nacl.signing.SigningKey], nacl.signing.SigningKey] | None = None


@dataclass(frozen=True)
class HubContext:
    """The hub's collaborators; time and randomness are inputs, so tests pass fixed ones."""

    config: HubConfig
    store: HubStore
    notifier: Notifier
    feed: Feed
    signing_key: nacl.signing.SigningKey
    now_ms: Callable[[], int]
    random_bytes: Callable[[int], bytes]
    metrics: HubMetrics = field(default_factory=HubMetrics)
    faults: PushFaults = field(default_factory=PushFaults)

    @property
    def push_policy(self) -> PushPolicy:
        return PushPolicy(self.config.limits, self.config.max_drift_ms)


HUB: web.AppKey[HubContext] = web.AppKey("hub", HubContext)


def hub(request: web.Request) -> HubContext:
    return request.app[HUB]
