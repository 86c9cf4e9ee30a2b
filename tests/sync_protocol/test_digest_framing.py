"""State digest and framing helpers."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.digest import StateDigest
from sync_protocol.errors import MalformedInput, TooLarge
from sync_protocol.framing import BUCKETS, bucket_size, decompress, pad, unpad

records = st.dictionaries(st.binary(min_size=1, max_size=20), st.binary(max_size=50), max_size=30)


@given(records=records, seed=st.integers())
def test_digest_depends_on_the_set_not_the_order(records: dict[bytes, bytes], seed: int) -> None:
    items = list(records.items())
    a, b = StateDigest(b"k" * 32), StateDigest(b"k" * 32)
    for key, state in items:
        a.add(key, state)
    random.Random(seed).shuffle(items)
    for key, state in items:
        b.add(key, state)
    assert a.hexdigest() == b.hexdigest() and a.count == b.count == len(items)


@given(records=records, updates=st.dictionaries(st.binary(min_size=1, max_size=20),
                                                st.binary(max_size=50), max_size=10))
def test_incremental_update_equals_recomputing(records: dict[bytes, bytes],
                                               updates: dict[bytes, bytes]) -> None:
    live = StateDigest(b"k" * 32)
    for key, state in records.items():
        live.add(key, state)
    for key, state in updates.items():
        live.replace(key, records.get(key), state)
    fresh = StateDigest(b"k" * 32)
    for key, state in (records | updates).items():
        fresh.add(key, state)
    assert live.hexdigest() == fresh.hexdigest()


def test_digest_tells_states_and_keys_apart() -> None:
    one, two, other_key = StateDigest(b"k" * 32), StateDigest(b"k" * 32), StateDigest(b"j" * 32)
    one.add(b"Patient/1", b"state-a")
    two.add(b"Patient/1", b"state-b")
    other_key.add(b"Patient/1", b"state-a")
    assert len({one.hexdigest(), two.hexdigest(), other_key.hexdigest()}) == 3


@given(st.binary(max_size=70_000))
def test_padding_round_trips_into_a_bucket(payload: bytes) -> None:
    padded = pad(payload)
    assert unpad(padded) == payload
    assert len(padded) in BUCKETS or len(padded) % (1 << 20) == 0
    assert len(padded) == bucket_size(len(payload) + 4)


def test_unpad_refuses_a_lying_length() -> None:
    with pytest.raises(MalformedInput):
        unpad((10_000).to_bytes(4, "big") + b"x" * 10)


def test_decompress_refuses_frames_past_the_limit_even_without_a_declared_size() -> None:
    data = bytes(10_000_000)
    declared = zstandard.ZstdCompressor().compress(data)
    with pytest.raises(TooLarge, match="would expand"):
        decompress(declared, max_bytes=1_000_000, what="t")
    undeclared = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    with pytest.raises(TooLarge, match="expands past"):
        decompress(undeclared, max_bytes=1_000_000, what="t")
    assert decompress(undeclared, max_bytes=len(data), what="t") == data
    with pytest.raises(MalformedInput):
        decompress(b"not zstd at all", max_bytes=100, what="t")


_THREADED_COMPRESS = """
import os, threading
from sync_protocol.framing import compress, decompress
data = [os.urandom(1000) * 500 + os.urandom(200_000) for _ in range(4)]
wrong = []
def work(i):
    for n in range(150):
        d = data[(i + n) % 4]
        if decompress(compress(d), max_bytes=10**8, what="t") != d:
            wrong.append(i)
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("wrong", len(wrong))
"""


def test_compress_is_safe_from_many_threads_at_once() -> None:
    """A snapshot export on a worker thread compresses while the loop thread seals: one
    shared zstd compressor crashed the whole process (SIGSEGV).  In a child process, so
    a crash fails this test instead of killing the test run."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _THREADED_COMPRESS], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["wrong", "0"]
