"""Sealing and opening batches: round trip, tamper detection, keys, limits, fuzzing."""

from __future__ import annotations

import contextlib
import uuid

import msgpack
import nacl.utils
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_protocol.batch import (
    batch_hash,
    check_follows,
    open_batch,
    read_sealed,
    seal_batch,
)
from sync_protocol.canonical import canonical_pack
from sync_protocol.errors import (
    BadSignature,
    ChainBroken,
    MalformedInput,
    ProtocolError,
    TamperedBatch,
    TooLarge,
    UnknownKeyEpoch,
    UnknownSite,
    UnsupportedVersion,
    UpgradeRequired,
    WrongPracticeKey,
)
from sync_protocol.framing import MAGIC, NONCE_BYTES, SIGNATURE_BYTES, Limits
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair
from sync_protocol.models import Change
from tests.sync_protocol.conftest import Practice, Site


def seal(p: Practice, site: Site, changes: list[Change],
         key: PracticeKey | None = None) -> bytes:
    sealed = seal_batch(practice_id=p.practice_id, site_id=site.site_id, site_keys=site.keys,
                        key=key if key is not None else p.keyring.current,
                        changes=changes, prev_hash=site.prev_hash, batch_id=uuid.uuid4())
    site.prev_hash = batch_hash(sealed)
    return sealed


def test_round_trip_returns_the_same_changes(practice: Practice) -> None:
    changes = practice.changes(practice.a, 50)
    sealed = seal(practice, practice.a, changes)
    header, opened = open_batch(sealed, practice.keyring, practice.directory)
    assert opened == changes
    assert (header.seq_from, header.seq_to) == (1, 50)
    assert header.site_id == practice.a.site_id
    assert header.max_hlc == max(c.hlc for c in changes)
    assert [m.replaces for m in header.changes] == [c.all_replaced for c in changes]


def test_hub_reads_the_header_without_any_key(practice: Practice) -> None:
    sealed = seal(practice, practice.a, practice.changes(practice.a, 3))
    batch = read_sealed(sealed)
    batch.verify_signature(practice.directory)
    assert batch.header.change_count == 3
    assert batch.hash == batch_hash(sealed)


def test_no_content_appears_in_the_sealed_bytes(practice: Practice) -> None:
    changes = practice.changes(practice.a, 20)
    sealed = seal(practice, practice.a, changes)
    for needle in ("蕁麻疹", "さば", "Patient/", "AllergyIntolerance", changes[0].resource_id):
        assert needle.encode() not in sealed


def test_size_is_padded_to_a_bucket(practice: Practice) -> None:
    one = read_sealed(seal(practice, practice.a, practice.changes(practice.a, 1, seed=1)))
    two = read_sealed(seal(practice, practice.a, practice.changes(practice.a, 2, seed=2)))
    assert one.header.body_bytes == two.header.body_bytes == 1024 + 16


def _regions(sealed: bytes) -> dict[str, range]:
    header_len = int.from_bytes(sealed[4:8], "big")
    body = 8 + header_len + NONCE_BYTES
    return {
        "magic": range(0, 4), "length": range(4, 8), "header": range(8, 8 + header_len),
        "nonce": range(8 + header_len, body), "ciphertext": range(body, len(sealed) - 64),
        "signature": range(len(sealed) - SIGNATURE_BYTES, len(sealed)),
    }


def test_every_single_byte_flip_is_rejected_with_a_specific_error(practice: Practice) -> None:
    sealed = seal(practice, practice.a, practice.changes(practice.a, 3))
    expected = {
        "magic": (MalformedInput,),
        "length": (MalformedInput, TooLarge),
        # a flipped header byte either no longer parses or no longer matches the signature
        "header": (MalformedInput, BadSignature, UnknownSite, UnsupportedVersion,
                   UpgradeRequired, TooLarge),
        "nonce": (BadSignature,), "ciphertext": (BadSignature,), "signature": (BadSignature,),
    }
    for region, positions in _regions(sealed).items():
        for pos in positions:
            tampered = bytearray(sealed)
            tampered[pos] ^= 0x01
            with pytest.raises(ProtocolError) as caught:
                open_batch(bytes(tampered), practice.keyring, practice.directory)
            assert type(caught.value) in expected[region], (region, pos, caught.value)
            assert type(caught.value) is not ProtocolError


def test_a_lying_header_with_a_valid_signature_is_tampered(practice: Practice) -> None:
    """A site that signs a header which misdescribes its content is caught."""
    from sync_protocol import batch as batch_module
    from sync_protocol.keys import record_token

    changes = practice.changes(practice.a, 2)
    real_token = record_token
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch_module, "record_token",
                      lambda key, t, i: real_token(key, t, i + "x"))
        sealed = seal(practice, practice.a, changes)
    with pytest.raises(TamperedBatch, match="record token"):
        open_batch(sealed, practice.keyring, practice.directory)


def test_unknown_epoch_wrong_key_and_wrong_site_key_each_have_their_error(
        practice: Practice) -> None:
    sealed = seal(practice, practice.a, practice.changes(practice.a, 2))
    newer = Keyring(practice.practice_id, {2: PracticeKey.generate(2, nacl.utils.random(32))})
    with pytest.raises(UnknownKeyEpoch, match="epoch 1"):
        open_batch(sealed, newer, practice.directory)

    impostor = Keyring(practice.practice_id, {1: PracticeKey.generate(1, nacl.utils.random(32))})
    with pytest.raises(WrongPracticeKey):
        open_batch(sealed, impostor, practice.directory)

    other_practice = Keyring(uuid.uuid4(), dict(practice.keyring.keys))
    with pytest.raises(WrongPracticeKey, match="belongs to practice"):
        open_batch(sealed, other_practice, practice.directory)

    wrong_site_key = SiteDirectory(
        [SiteKeyPair.generate(nacl.utils.random(64)).public(practice.a.site_id)])
    with pytest.raises(BadSignature, match=str(practice.a.site_id)):
        open_batch(sealed, practice.keyring, wrong_site_key)

    with pytest.raises(UnknownSite):
        open_batch(sealed, practice.keyring, SiteDirectory())


def test_old_epochs_stay_readable_after_rotation(practice: Practice) -> None:
    old = seal(practice, practice.a, practice.changes(practice.a, 1))
    rotated = practice.keyring.with_key(PracticeKey.generate(2, nacl.utils.random(32)))
    new = seal(practice, practice.a, practice.changes(practice.a, 1, seed=9),
               key=rotated.current)
    assert read_sealed(new).header.key_epoch == 2
    open_batch(old, rotated, practice.directory)
    open_batch(new, rotated, practice.directory)
    with pytest.raises(UnknownKeyEpoch):
        open_batch(new, practice.keyring, practice.directory)


def test_chain_links_batches_and_names_gaps_and_forks(practice: Practice) -> None:
    first = read_sealed(seal(practice, practice.a, practice.changes(practice.a, 2)))
    second = read_sealed(seal(practice, practice.a, practice.changes(practice.a, 2, seed=3)))
    check_follows(first.header, next_seq=1, prev_hash=bytes(32))
    check_follows(second.header, next_seq=3, prev_hash=first.hash)
    with pytest.raises(ChainBroken, match="expected 5"):
        check_follows(second.header, next_seq=5, prev_hash=first.hash)
    with pytest.raises(ChainBroken, match="fork"):
        check_follows(second.header, next_seq=3, prev_hash=bytes(32))


def _reseal_header(p: Practice, sealed: bytes, **changes: object) -> bytes:
    """Rewrite header fields and re-sign, as a faulty but keyed site could."""
    from sync_protocol.batch import signed_message

    batch = read_sealed(sealed)
    wire = batch.header.to_wire() | changes
    header = canonical_pack(wire)
    signature = p.a.keys.sign(signed_message(header, batch.parts.nonce, batch.parts.ciphertext))
    return (MAGIC + len(header).to_bytes(4, "big") + header + batch.parts.nonce
            + batch.parts.ciphertext + signature)


def test_other_major_version_names_both_versions(practice: Practice) -> None:
    sealed = _reseal_header(practice, seal(practice, practice.a, practice.changes(practice.a, 1)),
                            v=[2, 0])
    with pytest.raises(UnsupportedVersion, match=r"protocol 2\.0.*speaks 1\.1"):
        read_sealed(sealed)


def test_newer_minor_version_is_held_for_an_upgrade(practice: Practice) -> None:
    sealed = _reseal_header(practice, seal(practice, practice.a, practice.changes(practice.a, 1)),
                            v=[1, 7])
    with pytest.raises(UpgradeRequired, match=r"1\.7") as caught:
        read_sealed(sealed)
    assert caught.value.retryable


def test_limits_are_checked_before_anything_is_expanded(practice: Practice) -> None:
    sealed = seal(practice, practice.a, practice.changes(practice.a, 20))
    with pytest.raises(TooLarge):
        read_sealed(sealed, Limits(max_sealed_bytes=len(sealed) - 1))
    with pytest.raises(TooLarge):
        read_sealed(sealed, Limits(max_changes=19))
    with pytest.raises(TooLarge, match="expand"):
        open_batch(sealed, practice.keyring, practice.directory, Limits(max_plain_bytes=1000))


def test_decompression_bomb_is_refused_without_expanding(practice: Practice) -> None:
    """A keyed site seals 1 GiB of zeros (a few KiB compressed): refused by size."""
    import zstandard

    from sync_protocol import batch as batch_module

    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(1 << 30))
    assert len(bomb) < 100_000
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch_module, "compress", lambda data: bomb)
        sealed = seal(practice, practice.a, practice.changes(practice.a, 1))
    with pytest.raises(TooLarge, match="expand"):
        open_batch(sealed, practice.keyring, practice.directory)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096))
def test_fuzzed_bytes_raise_only_protocol_errors(data: bytes) -> None:
    from tests.sync_protocol.conftest import new_site

    site = new_site()
    keyring = Keyring(uuid.uuid4(), {1: PracticeKey(1, bytes(32))})
    for candidate in (data, MAGIC + data):
        with contextlib.suppress(ProtocolError):
            open_batch(candidate, keyring, SiteDirectory([site.keys.public(site.site_id)]))


@settings(max_examples=200, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(positions=st.lists(st.integers(min_value=0), min_size=1, max_size=8),
       values=st.lists(st.integers(min_value=1, max_value=255), min_size=8, max_size=8),
       cut=st.integers(min_value=0, max_value=64))
def test_mutated_batches_raise_only_protocol_errors(practice: Practice, positions: list[int],
                                                    values: list[int], cut: int) -> None:
    sealed = bytearray(seal(practice, practice.a, practice.changes(practice.a, 2)))
    for pos, value in zip(set(p % len(sealed) for p in positions), values, strict=False):
        sealed[pos] ^= value
    for candidate in (bytes(sealed), bytes(sealed[:-cut or None])):
        with pytest.raises(ProtocolError):
            open_batch(candidate, practice.keyring, practice.directory)


@settings(max_examples=200, deadline=None)
@given(content=st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1)
    | st.binary(max_size=20) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=5),
    max_leaves=30))
def test_fuzzed_content_inside_a_valid_seal_raises_only_protocol_errors(content: object) -> None:
    """A keyed but buggy site seals garbage: every reader error is a ProtocolError."""
    from sync_protocol.wire import decode_changes

    with contextlib.suppress(ProtocolError):
        decode_changes(msgpack.unpackb(msgpack.packb(content), raw=False),
                       origin=uuid.uuid4(), seq_from=1)
