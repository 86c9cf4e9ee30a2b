"""What every handler needs, built once at startup and stored under one typed `AppKey`."""

from __future__ import annotations

from collections.abc import Callable
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

    @property
    def push_policy(self) -> PushPolicy:
        return PushPolicy(self.config.limits, self.config.max_drift_ms)


HUB: web.AppKey[HubContext] = web.AppKey("hub", HubContext)


def hub(request: web.Request) -> HubContext:
    return request.app[HUB]
