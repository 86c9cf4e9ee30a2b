"""Snapshot attestations: the golden vector both ways, and every refusal a reader relies on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from uuid import UUID, uuid4

import nacl.signing
import pytest

from sync_protocol.errors import BadSignature, MalformedInput, TamperedBatch
from sync_protocol.keys import SiteKeyPair
from sync_protocol.snapshot_signature import (
    SIGNATURE,
    SnapshotAttestation,
    SnapshotClaim,
    SnapshotDigest,
    attest_snapshot,
    attestation_from_headers,
    attestation_headers,
    check_digest,
    verify_attestation,
)

VECTORS = Path(__file__).parents[1] / "vectors"
VECTOR = json.loads((VECTORS / "snapshot_signature_v1.json").read_text())
SEALED = bytes.fromhex(json.loads((VECTORS / VECTOR["sealed_file"]).read_text())["sealed"])


def _vector_keys() -> SiteKeyPair:
    return SiteKeyPair.generate(bytes.fromhex(VECTOR["site_seed"]))


def test_vector_message_and_signature_rebuild_from_the_documented_layout() -> None:
    # An independent writer of PROTOCOL.md's layout: nothing from snapshot_signature.py.
    digest = hashlib.blake2b(SEALED, digest_size=32).digest()
    message = (b"chartsync/snapshot-attestation/v1\0" + UUID(VECTOR["practice_id"]).bytes
               + UUID(VECTOR["site_id"]).bytes + UUID(VECTOR["snapshot_id"]).bytes
               + VECTOR["hub_seq"].to_bytes(8, "big") + VECTOR["key_epoch"].to_bytes(4, "big")
               + digest)
    assert (len(SEALED), digest.hex(), message.hex()) == (
        VECTOR["size"], VECTOR["digest"], VECTOR["message"])
    signing = nacl.signing.SigningKey(_vector_keys().to_wire()["sign"])
    assert signing.sign(message).signature.hex() == VECTOR["signature"]


def test_vector_reads_and_verifies_from_its_headers() -> None:
    att = attestation_from_headers(VECTOR["headers"], UUID(VECTOR["practice_id"]))
    assert att.claim.message().hex() == VECTOR["message"]
    assert attestation_headers(att) == VECTOR["headers"]
    verify_attestation(att, _vector_keys().public(UUID(VECTOR["site_id"])))
    streamed = SnapshotDigest()
    for i in range(0, len(SEALED), 7):
        streamed.update(SEALED[i:i + 7])
    check_digest(att, streamed.digest(), streamed.size)
    assert streamed.size == VECTOR["size"]


def _attested(keys: SiteKeyPair, site: UUID, body: bytes = b"sealed") -> SnapshotAttestation:
    claim = SnapshotClaim(practice_id=uuid4(), site_id=site, snapshot_id=uuid4(), hub_seq=7,
                          key_epoch=2, digest=hashlib.blake2b(body, digest_size=32).digest())
    return attest_snapshot(claim, keys)


def test_a_changed_field_or_another_key_does_not_verify() -> None:
    keys, site = SiteKeyPair.generate(bytes(range(64))), uuid4()
    att = _attested(keys, site)
    verify_attestation(att, keys.public(site))
    for change in ({"hub_seq": 8}, {"key_epoch": 3}, {"snapshot_id": uuid4()},
                   {"practice_id": uuid4()}, {"digest": bytes(32)}):
        forged = SnapshotAttestation(claim=att.claim.model_copy(update=change),
                                     signature=att.signature)
        with pytest.raises(BadSignature):
            verify_attestation(forged, keys.public(site))
    other = SiteKeyPair.generate(bytes(range(1, 65)))
    with pytest.raises(BadSignature):  # signed by another site's key, claiming this one
        verify_attestation(_attested(other, site), keys.public(site))
    with pytest.raises(BadSignature):  # checked against another site than it claims
        verify_attestation(att, keys.public(uuid4()))


def test_corrupted_bytes_are_refused_by_the_digest() -> None:
    att = _attested(SiteKeyPair.generate(bytes(range(64))), uuid4(), b"sealed")
    check_digest(att, hashlib.blake2b(b"sealed", digest_size=32).digest(), 6)
    with pytest.raises(TamperedBatch, match="do not match the signed digest"):
        check_digest(att, hashlib.blake2b(b"sealeD", digest_size=32).digest(), 6)


def test_unsigned_or_malformed_headers_are_refused_by_name() -> None:
    headers = dict(VECTOR["headers"])
    del headers[SIGNATURE]
    with pytest.raises(MalformedInput, match="X-Snapshot-Signature"):
        attestation_from_headers(headers, uuid4())
    for bad in ({"X-Snapshot-Hub-Seq": "-1"}, {"X-Snapshot-Digest": "00"},
                {"X-Snapshot-Signature": "zz"}, {"X-Site-Id": "site-1"}):
        with pytest.raises(MalformedInput):
            attestation_from_headers({**VECTOR["headers"], **bad}, uuid4())
