"""Per-credential rate limits and lockout after refused credentials: pure bookkeeping.

`RateLimiter` is a token bucket per key (a site or the operator): `rate_per_s`
requests a second on average, bursts up to `burst`.  `Lockout` counts refused
credentials per key (the account a credential names, and the client address it came
from) within `lockout_s`; at `max_failures` the key is locked for `lockout_s` from the
last failure, then forgotten (the cool-down).  Both take the time as an argument
(`now_s`, seconds of the hub's injected clock), so tests pass plain numbers, and both keep
at most `max_keys` entries (the least recently seen are dropped first): a flood of new
tokens or addresses cannot grow them without bound.

The edge has the same two classes (`edge_node/api/throttle.py`): the edge and the hub
share no code outside `sync_protocol`, which holds only the wire.  `Throttle` is the
pair one hub application keeps, built from `HubConfig`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from aiohttp import web

from cloud_hub.config import HubConfig

K = TypeVar("K")
#: Entries kept per table; beyond it the least recently seen key is dropped.
MAX_KEYS: Final = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float


class RateLimiter(Generic[K]):
    """A token bucket per key; `take` answers 0 (go) or the seconds to wait."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[K, _Bucket] = OrderedDict()

    def take(self, key: K, now_s: float) -> float:
        """Spend one request of `key`'s bucket: 0.0 if allowed, else seconds until allowed."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now_s)
        else:
            elapsed = max(0.0, now_s - bucket.updated_s)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
            bucket.updated_s = now_s
        self._buckets[key] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s


@dataclass(slots=True)
class _Failures:
    count: int
    last_s: float


class Lockout(Generic[K]):
    """Failed logins per key; locked at `max_failures` within `lockout_s`."""

    def __init__(self, max_failures: int, lockout_s: float, max_keys: int = MAX_KEYS) -> None:
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self._failures: OrderedDict[K, _Failures] = OrderedDict()

    def locked_for(self, key: K, now_s: float) -> float:
        """Seconds `key` stays locked out (0.0: not locked); forgets an expired record."""
        record = self._failures.get(key)
        if record is None:
            return 0.0
        left = record.last_s + self.lockout_s - now_s
        if left <= 0:
            del self._failures[key]
            return 0.0
        return left if record.count >= self.max_failures else 0.0

    def failed(self, key: K, now_s: float) -> bool:
        """Record one refused login of `key`; True if it is now locked out."""
        record = self._failures.pop(key, None)
        if record is None or now_s - record.last_s >= self.lockout_s:
            record = _Failures(0, now_s)
        record.count += 1
        record.last_s = now_s
        self._failures[key] = record
        if len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
        return record.count >= self.max_failures

    def succeeded(self, key: K) -> None:
        """A valid login from `key` clears its failures (a typo does not add up)."""
        self._failures.pop(key, None)


def retry_after(wait_s: float) -> int:
    """Whole seconds for a `Retry-After` header (at least 1)."""
    return max(1, math.ceil(wait_s))


class Throttle:
    """The rate limiter (per credential) and lockout (per account and address) of one hub."""

    def __init__(self, config: HubConfig) -> None:
        self.rate: RateLimiter[str] = RateLimiter(float(config.rate_per_s), config.rate_burst)
        self.lockout: Lockout[tuple[str, str]] = Lockout(config.login_failures,
                                                         float(config.lockout_s))


THROTTLE: Final = web.AppKey("throttle", Throttle)
