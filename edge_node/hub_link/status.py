"""What the sync loop tells the status page: link state, last push/pull, last error.

One mutable record per running loop (owned by `SyncLoop`); `snapshot()` gives
a frozen copy.  A failure is logged once when the link state or the kind of
failure changes, never once per retry (STYLE.md rule 12).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncStatistics:
    online: bool | None
    since_ms: int | None
    last_push_ms: int | None
    last_pull_ms: int | None
    hub_head: int
    last_error: str | None
    last_error_code: str | None
    enrolled_status: str
    have_keys: bool


class SyncStatus:
    def __init__(self, enrolled_status: str, have_keys: bool) -> None:
        self.__s = SyncStatistics(None, None, None, None, 0, None, None, enrolled_status,
                                  have_keys)
        self._changed = asyncio.Event()

    @property
    def _s(self) -> SyncStatistics:
        return self.__s

    @_s.setter
    def _s(self, value: SyncStatistics) -> None:
        self.__s = value
        self.notify()

    def snapshot(self) -> SyncStatistics:
        return self._s

    def notify(self) -> None:
        """Wake every `wait_changed` (the loop made progress or its state changed)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def wait_changed(self) -> Coroutine[Any, Any, bool]:
        """Until the next push ack, pulled batch, hold, key arrival or failure.

        The event is taken when this is called, not when the result is first awaited:
        a caller that checks a condition, then starts a task waiting on this, must not
        miss a change made before that task first runs (seen as a test waiting 10 s for
        a condition already true).
        """
        return self._changed.wait()

    def online(self, now_ms: int) -> None:
        if self._s.online is not True:
            log.info("hub reachable; syncing")
            self._s = replace(self._s, online=True, since_ms=now_ms)

    def failed(self, code: str, message: str, now_ms: int, *, offline: bool) -> None:
        """Record a failure; logs only when the state or the kind of failure changes."""
        changed = code != self._s.last_error_code or (offline and self._s.online is not False)
        if changed:
            log.warning("sync: %s (%s); retrying with backoff", code, message)
        since = now_ms if (offline and self._s.online is not False) else self._s.since_ms
        self._s = replace(self._s, online=False if offline else self._s.online,
                          since_ms=since, last_error=message, last_error_code=code)

    def hub_rewound(self, message: str, head: int) -> None:
        """The hub's log ends before our cursor (restored from an older backup): say so
        (the caller logs it) and take its head as it is now."""
        self._s = replace(self._s, hub_head=head, last_error=message,
                          last_error_code="hub_log_rewound")
        self.notify()

    def pushed(self, now_ms: int) -> None:
        self._s = replace(self._s, last_push_ms=now_ms)

    def pulled(self, now_ms: int, head: int) -> None:
        self._s = replace(self._s, last_pull_ms=now_ms, hub_head=max(head, self._s.hub_head))

    def keys(self, enrolled_status: str, have_keys: bool) -> None:
        self._s = replace(self._s, enrolled_status=enrolled_status, have_keys=have_keys)
