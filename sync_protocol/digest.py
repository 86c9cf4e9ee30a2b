"""State digest: a short value two sites compare to prove they hold the same charts.

The digest of a state is the sum, modulo 2^256, of a keyed BLAKE2b hash of
every record's canonical state (resource registers with all heads, so also
its conflicts).  A sum is order-free and updates in O(1) per changed record:
subtract the record's old hash, add its new one.  The key (from the practice
key) means the hub, which only sees the digest, cannot confirm a guess about
any chart, and cannot craft records that cancel out.
"""

from __future__ import annotations

import hashlib
from typing import Final

_MOD: Final = 1 << 256
_PERSON: Final = b"cs-digest-item".ljust(16, b"\0")


def record_hash(key: bytes, record_key: bytes, state: bytes) -> int:
    """Keyed hash of one record (its stable key and canonical state) as an integer."""
    data = len(record_key).to_bytes(4, "big") + record_key + state
    return int.from_bytes(hashlib.blake2b(data, digest_size=32, key=key, person=_PERSON).digest(),
                          "big")


class StateDigest:
    """Incremental digest of a set of records.  Equal sets give equal digests."""

    __slots__ = ("_key", "_value", "count")

    def __init__(self, key: bytes, value: int = 0, count: int = 0) -> None:
        self._key = key
        self._value = value % _MOD
        self.count = count

    def add(self, record_key: bytes, state: bytes) -> None:
        self._value = (self._value + record_hash(self._key, record_key, state)) % _MOD
        self.count += 1

    def remove(self, record_key: bytes, state: bytes) -> None:
        self._value = (self._value - record_hash(self._key, record_key, state)) % _MOD
        self.count -= 1

    def replace(self, record_key: bytes, old: bytes | None, new: bytes) -> None:
        """Record `record_key` changed from `old` (None: new record) to `new`."""
        if old is not None:
            self.remove(record_key, old)
        self.add(record_key, new)

    @property
    def value(self) -> int:
        return self._value

    def copy(self) -> StateDigest:
        """An independent digest of the same set, to step while this one stays as it is."""
        return StateDigest(self._key, self._value, self.count)

    def hexdigest(self) -> str:
        return self._value.to_bytes(32, "big").hex()

    def __repr__(self) -> str:
        return f"StateDigest({self.hexdigest()[:16]}…, records={self.count})"
