"""Sealed snapshots: streamed round trip, and truncation, splicing, tampering refused."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_protocol.errors import (
    BadSignature,
    MalformedInput,
    ProtocolError,
    TamperedBatch,
    UnknownKeyEpoch,
)
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory
from sync_protocol.snapshot import SnapshotOpener, SnapshotSealer
from tests.sync_protocol.conftest import Practice, new_site


def _records(n: int) -> list[Any]:
    rnd = random.Random(n)
    return [["state", "AllergyIntolerance", str(uuid.UUID(int=rnd.getrandbits(128))),
             rnd.randbytes(rnd.randint(50, 400))] for _ in range(n)]


def _seal(p: Practice, records: list[Any], chunk_bytes: int = 4096) -> bytes:
    sealer = SnapshotSealer(practice_id=p.practice_id, site_id=p.a.site_id,
                            snapshot_id=uuid.uuid4(), hub_seq=42, created_hlc=7,
                            key=p.keyring.current, site_keys=p.a.keys, chunk_bytes=chunk_bytes)
    parts = [sealer.begin(), *(sealer.add(r) for r in records), sealer.finish()]
    return b"".join(parts)


def _open(p: Practice, data: bytes, piece: int = 1000,
          directory: SiteDirectory | None = None) -> list[Any]:
    opener = SnapshotOpener(p.keyring, directory or p.directory)
    out: list[Any] = []
    for i in range(0, len(data), piece):
        out.extend(opener.feed(data[i:i + piece]))
    header = opener.finish()
    assert header.hub_seq == 42 and header.site_id == p.a.site_id
    return out


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 300), piece=st.integers(1, 5000))
def test_records_come_back_in_order_whatever_the_read_sizes(practice: Practice, n: int,
                                                            piece: int) -> None:
    records = _records(n)
    assert _open(practice, _seal(practice, records), piece) == records


def _frames(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    header_end = 8 + int.from_bytes(data[4:8], "big") + 24
    frames, pos = [], header_end
    while pos < len(data) - 64:
        n = int.from_bytes(data[pos:pos + 4], "big")
        frames.append((pos, pos + 4 + n))
        pos += 4 + n
    return header_end, frames


def test_truncation_and_reordering_are_detected(practice: Practice) -> None:
    data = _seal(practice, _records(200))
    _, frames = _frames(data)
    assert len(frames) >= 3
    cut = data[:frames[1][1]]  # stop after the second chunk: no final tag
    with pytest.raises(TamperedBatch, match="truncated"):
        _open(practice, cut)
    (a0, a1), (b0, b1) = frames[0], frames[1]
    swapped = data[:a0] + data[b0:b1] + data[a0:a1] + data[b1:]
    with pytest.raises(TamperedBatch, match="reordered"):
        _open(practice, swapped)
    dropped = data[:a0] + data[a1:]
    with pytest.raises(TamperedBatch):
        _open(practice, dropped)


def test_every_flipped_byte_is_refused(practice: Practice) -> None:
    data = _seal(practice, _records(30), chunk_bytes=512)
    for pos in range(0, len(data), max(1, len(data) // 400)):
        tampered = bytearray(data)
        tampered[pos] ^= 0x20
        with pytest.raises(ProtocolError):
            _open(practice, bytes(tampered))


def test_the_writer_site_must_have_signed_it(practice: Practice) -> None:
    data = _seal(practice, _records(5))
    impostor = SiteDirectory([new_site().keys.public(practice.a.site_id)])
    with pytest.raises(BadSignature):
        _open(practice, data, directory=impostor)


def test_a_site_without_the_epoch_cannot_read_it(practice: Practice) -> None:
    data = _seal(practice, _records(5))
    other = Keyring(practice.practice_id, {2: PracticeKey(2, bytes(32))})
    with pytest.raises(UnknownKeyEpoch):
        list(SnapshotOpener(other, practice.directory).feed(data))


def test_garbage_is_malformed(practice: Practice) -> None:
    with pytest.raises(MalformedInput):
        list(SnapshotOpener(practice.keyring, practice.directory).feed(b"CSB1" + bytes(100)))
