"""In-process wake-ups per practice: a pushed batch (or a registry change) wakes its waiters.

Waiters take a ticket *before* they look at the store and wait on it after,
so a publish between the look and the wait is never missed.  Publishing
comes from the push handler after commit and, on PostgreSQL, from the
LISTEN connection for commits of other hub processes.  Hub sequence 0 means
"the practice's site registry changed" (approval, revocation).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sync_protocol.ids import HubSeq, PracticeId

REGISTRY_CHANGED = HubSeq(0)


@dataclass(frozen=True, slots=True)
class NotifierStats:
    practices_waiting: int
    publishes: int
    wake_alls: int


class Notifier:
    """Per-practice events, replaced on every publish.  Loop-bound; not thread-safe."""

    __slots__ = ("_events", "_per_practice", "_publishes", "_registry", "_wake_alls")

    def __init__(self) -> None:
        self._events: dict[PracticeId, asyncio.Event] = {}
        self._registry: dict[PracticeId, int] = {}
        self._per_practice: dict[PracticeId, int] = {}
        self._publishes = 0
        self._wake_alls = 0

    def published(self, practice_id: PracticeId) -> int:
        """Grows with every publish for `practice_id` (and every wake-all): a read that
        started when this had the same value as now has missed no commit announced since."""
        return self._per_practice.get(practice_id, 0) + self._wake_alls

    def ticket(self, practice_id: PracticeId) -> asyncio.Event:
        """The event the next publish for `practice_id` sets."""
        event = self._events.get(practice_id)
        if event is None:
            event = self._events[practice_id] = asyncio.Event()
        return event

    def publish(self, practice_id: PracticeId, hub_seq: HubSeq) -> None:
        """Wake every waiter of `practice_id` (idempotent; duplicates only cost a re-check)."""
        self._publishes += 1
        self._per_practice[practice_id] = self._per_practice.get(practice_id, 0) + 1
        if hub_seq == REGISTRY_CHANGED:
            self._registry[practice_id] = self._registry.get(practice_id, 0) + 1
        event = self._events.pop(practice_id, None)
        if event is not None:
            event.set()

    def has_waiters(self, practice_id: PracticeId) -> bool:
        """Whether someone holds a ticket of `practice_id` that no publish has set yet."""
        return practice_id in self._events

    def registry_generation(self, practice_id: PracticeId) -> int:
        """Changes each time the practice's site registry changes (seen by this process)."""
        return self._registry.get(practice_id, 0)

    def wake_all(self) -> None:
        """Wake everyone: after a lost LISTEN connection, anything may have been missed."""
        self._wake_alls += 1
        for practice_id in list(self._events):
            self._registry[practice_id] = self._registry.get(practice_id, 0) + 1
            self._events.pop(practice_id).set()

    def statistics(self) -> NotifierStats:
        return NotifierStats(len(self._events), self._publishes, self._wake_alls)
