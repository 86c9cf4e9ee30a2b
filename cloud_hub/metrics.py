"""Prometheus metrics of one hub process: one registry per app, never a global one.

Labels are ids and wire codes only — never practice or site names, nor anything from a chart.

    chartsync_hub_pushes_total{outcome}              stored | duplicate | refused
    chartsync_hub_push_rejections_total{code}        refusals by wire code
    chartsync_hub_batches_accepted_total             new batches stored
    chartsync_hub_changes_accepted_total             changes in those batches
    chartsync_hub_push_seconds                       push handling time (histogram)
    chartsync_hub_subscribers{kind}                  open long-polls and WebSocket streams
    chartsync_hub_practice_head{practice}            latest hub sequence (at scrape time)
    chartsync_hub_site_lag_batches{practice,site}    head minus the site's reported cursor
    chartsync_hub_site_lag_seconds{practice,site}    age of the oldest batch it has not applied
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST as _CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE: Final = _CONTENT_TYPE
_PUSH_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class HubMetrics:
    """The hub's instruments on a private registry (tests and several apps do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pushes = Counter("chartsync_hub_pushes", "Pushes answered, by outcome",
                              ["outcome"], registry=r)
        self.rejections = Counter("chartsync_hub_push_rejections",
                                  "Refused pushes by wire error code", ["code"], registry=r)
        self.batches = Counter("chartsync_hub_batches_accepted", "New batches stored",
                               registry=r)
        self.changes = Counter("chartsync_hub_changes_accepted",
                               "Changes in newly stored batches", registry=r)
        self.push_seconds = Histogram("chartsync_hub_push_seconds", "Push handling time",
                                      buckets=_PUSH_BUCKETS, registry=r)
        self.subscribers = Gauge("chartsync_hub_subscribers",
                                 "Open long-polls and WebSocket streams", ["kind"], registry=r)
        self.head = Gauge("chartsync_hub_practice_head", "Latest hub sequence of a practice",
                          ["practice"], registry=r)
        self.lag_batches = Gauge("chartsync_hub_site_lag_batches",
                                 "Batches a site has not applied (head minus its cursor)",
                                 ["practice", "site"], registry=r)
        self.lag_seconds = Gauge("chartsync_hub_site_lag_seconds",
                                 "Age of the oldest batch a site has not applied",
                                 ["practice", "site"], registry=r)
        for kind in ("long_poll", "stream"):
            self.subscribers.labels(kind)

    def exposition(self) -> bytes:
        """The text format for a scrape."""
        return generate_latest(self.registry)
