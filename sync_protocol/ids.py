"""Identifiers: what each id is, and time-ordered UUIDs (v7).

Ids are minted at the edge from a time and random bytes that the caller passes
in (no clock reads here), so sites never collide and B-tree inserts stay
append-mostly.
"""

from __future__ import annotations

from typing import NewType
from uuid import UUID

PracticeId = NewType("PracticeId", UUID)
SiteId = NewType("SiteId", UUID)
BatchId = NewType("BatchId", UUID)
UserId = NewType("UserId", str)
#: Per-origin change sequence number, starting at 1, without gaps.
ChangeSeq = NewType("ChangeSeq", int)
#: The practice-wide order the hub gives to accepted batches, starting at 1.
HubSeq = NewType("HubSeq", int)
#: Practice key generation, starting at 1; revoking a site starts a new one.
KeyEpoch = NewType("KeyEpoch", int)


def uuid7(now_ms: int, random_bytes: bytes) -> UUID:
    """Return an RFC 9562 version-7 UUID for `now_ms` and 10 random bytes."""
    return UUID(int=_uuid7_int(now_ms, random_bytes))


def uuid7_text(now_ms: int, random_bytes: bytes) -> str:
    """`str(uuid7(now_ms, random_bytes))` without building the UUID object: the edge mints
    one per created resource (1.5 µs instead of 7 µs)."""
    h = f"{_uuid7_int(now_ms, random_bytes):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uuid7_int(now_ms: int, random_bytes: bytes) -> int:
    if len(random_bytes) < 10:
        raise ValueError("uuid7 needs 10 random bytes")
    if not 0 <= now_ms < 1 << 48:
        raise ValueError("uuid7 time must fit in 48 bits of milliseconds")
    rand = int.from_bytes(random_bytes[:10], "big")
    rand_a = rand >> 68 & 0xFFF  # 12 bits
    rand_b = rand & ((1 << 62) - 1)  # 62 bits
    return now_ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
