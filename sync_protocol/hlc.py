"""Hybrid logical clock: 64-bit stamps that order edits across sites.

A stamp packs milliseconds since the Unix epoch (upper 48 bits) and a logical
counter (lower 16 bits) into one unsigned 64-bit integer, so stamps compare as
plain integers and never go backwards on a site even when its wall clock does.
Ties between sites are settled by the site id: `order_key(hlc, site)`.

A remote stamp further ahead of our wall clock than `max_drift_ms` is refused
with `ClockTooFarAhead` instead of being absorbed; otherwise one site with a
clock years ahead would win every conflict forever and drag every clock along.

Time is an input (`now_ms`): the real clock is read at the entry point.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

from sync_protocol.errors import ClockTooFarAhead, MalformedInput

LOGICAL_BITS: Final = 16
LOGICAL_MASK: Final = (1 << LOGICAL_BITS) - 1
MAX_HLC: Final = (1 << 64) - 1
#: Default tolerance for a remote clock ahead of ours.
DEFAULT_MAX_DRIFT_MS: Final = 5 * 60 * 1000


def pack(physical_ms: int, logical: int = 0) -> int:
    """Return the stamp for (`physical_ms`, `logical`)."""
    if not 0 <= physical_ms < 1 << (64 - LOGICAL_BITS) or not 0 <= logical <= LOGICAL_MASK:
        raise ValueError(f"HLC parts out of range: {physical_ms}, {logical}")
    return physical_ms << LOGICAL_BITS | logical


def physical_ms(stamp: int) -> int:
    """Return the wall-clock part of `stamp` in milliseconds."""
    return stamp >> LOGICAL_BITS


def logical(stamp: int) -> int:
    """Return the logical counter of `stamp`."""
    return stamp & LOGICAL_MASK


def encode(stamp: int) -> bytes:
    """Return `stamp` as 8 big-endian bytes (sorts like the integer)."""
    return stamp.to_bytes(8, "big")


def decode(raw: bytes) -> int:
    """Return the stamp in 8 big-endian bytes; raises `MalformedInput` otherwise."""
    if len(raw) != 8:
        raise MalformedInput(f"an HLC stamp is 8 bytes, got {len(raw)}")
    return int.from_bytes(raw, "big")


def order_key(stamp: int, site: UUID) -> tuple[int, bytes]:
    """Total order of edits: stamp first, the site id settles every tie."""
    return (stamp, site.bytes)


def check_drift(remote: int, now_ms: int, max_drift_ms: int, *, source: str) -> None:
    """Raise `ClockTooFarAhead` if `remote` is more than `max_drift_ms` ahead of `now_ms`."""
    ahead_ms = physical_ms(remote) - now_ms
    if ahead_ms > max_drift_ms:
        raise ClockTooFarAhead(
            f"{source} carries a clock {ahead_ms / 1000:.1f} s ahead of ours "
            f"(allowed {max_drift_ms / 1000:.0f} s)",
            hint="fix the clock (NTP) on the site that wrote it, or on this machine "
            "if ours is behind; the input is refused, not absorbed",
        )


class HybridClock:
    """One site's clock state.  Not thread-safe: one owner per site.

    `now` stamps a local event; `observe` absorbs a remote stamp.  Both return
    a stamp strictly greater than every stamp returned or observed before.
    """

    __slots__ = ("_last", "max_drift_ms")

    def __init__(self, last: int = 0, *, max_drift_ms: int = DEFAULT_MAX_DRIFT_MS) -> None:
        self._last = last
        self.max_drift_ms = max_drift_ms

    @property
    def last(self) -> int:
        """The greatest stamp issued or observed so far (persist it to resume)."""
        return self._last

    def now(self, now_ms: int) -> int:
        """Return a fresh stamp for a local event at wall time `now_ms`."""
        stamp = max(pack(now_ms), self._last + 1)
        if stamp > MAX_HLC:
            raise ValueError("HLC overflow")
        self._last = stamp
        return stamp

    def observe(self, remote: int, now_ms: int, *, source: str = "remote stamp") -> int:
        """Absorb `remote` seen at wall time `now_ms`; return a stamp after both.

        Raises `ClockTooFarAhead` (and leaves the clock untouched) if `remote`
        is further ahead of `now_ms` than `max_drift_ms`.
        """
        if not 0 <= remote <= MAX_HLC:
            raise MalformedInput(f"{source}: HLC {remote} is not an unsigned 64-bit value")
        check_drift(remote, now_ms, self.max_drift_ms, source=source)
        stamp = max(pack(now_ms), self._last + 1, remote + 1)
        self._last = stamp
        return stamp
