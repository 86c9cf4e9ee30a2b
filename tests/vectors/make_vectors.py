"""Regenerate the golden vectors: `python -m tests.vectors.make_vectors` from the repo root.

Run only with a protocol version bump (tests/vectors/README.md): the vectors pin what
version 1 bytes look like, so an accidental wire change fails the tests.

Vectors whose sealing is deterministic (batch, receipt, passphrase recovery kit,
state digest, HTTP bodies) are rewritten byte for byte from the fixed inputs
below.  Four seal with randomness the API does not take as an input (the
snapshot's secretstream header, the key delivery's sealed-box ephemeral key,
the shared kit's nonce and SLIP-39 shares, the backup file's kit box and
secretstream header): they are kept as they are unless `--reseal` is given, so
a plain run changes no file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import nacl.pwhash
import nacl.signing

from cloud_hub.api.messages import (
    CreateEnrollmentToken,
    EnrollmentTokenOut,
    EnrollRequest,
    EnrollResponse,
    GapIn,
    HeartbeatIn,
    HubKeyOut,
    MailOut,
    SiteOut,
)
from cloud_hub.api.problem import error_body
from cloud_hub.errors import ChainMismatch
from sync_protocol.backup_file import BackupAbout, BackupSealer, KitSlot, PassphraseSlot
from sync_protocol.batch import seal_batch
from sync_protocol.canonical import canonical_json
from sync_protocol.digest import StateDigest, record_hash
from sync_protocol.key_delivery import seal_keys_for_site
from sync_protocol.keys import Keyring, PracticeKey, SiteKeyPair
from sync_protocol.kit_keys import KitKeyPair, seal_epoch_for_kit
from sync_protocol.models import (
    DELETED,
    Change,
    ChangeOp,
    Dot,
    HubReceipt,
    PulledBatch,
    PushAck,
)
from sync_protocol.pull_wire import encode_pull_response, encode_pulled
from sync_protocol.push_wire import encode_push_many
from sync_protocol.receipt import sign_receipt
from sync_protocol.recovery import create_recovery_kit, create_shared_recovery_kit
from sync_protocol.roster import EntryKind, SignedEntry, fold, genesis_entry, sign_entry
from sync_protocol.snapshot import SnapshotSealer
from sync_protocol.snapshot_signature import (
    SnapshotClaim,
    SnapshotDigest,
    attest_snapshot,
    attestation_headers,
)
from sync_protocol.version import PROTOCOL_VERSION

HERE = Path(__file__).parent
PRACTICE = UUID("01936d2e-0000-7000-8000-0000000000aa")
SITE = UUID("01936d2e-0000-7000-8000-0000000000b1")
OTHER = UUID("01936d2e-0000-7000-8000-0000000000b2")
BATCH = UUID("01936d2e-0000-7000-8000-0000000000c1")
KEY_SECRET = bytes(range(32))
SITE_SEED = bytes(range(64, 128))
NONCE = bytes(range(200, 224))
KEY2_SECRET = bytes(range(32, 64))
RECIPIENT = UUID("01936d2e-0000-7000-8000-0000000000b3")
RECIPIENT_SEED = bytes(range(128, 192))
HUB_SEED = bytes(range(160, 192))
LOG_ID = UUID("01936d2e-0000-7000-8000-0000000000f1")
SNAPSHOT = UUID("01936d2e-0000-7000-8000-0000000000d1")
MAIL = UUID("01936d2e-0000-7000-8000-0000000000e1")
BATCH_HASH = bytes(range(96, 128))
HUB_SEQ = 42
#: Small enough that the snapshot's records span several chunks (MESSAGE and FINAL tags).
SNAPSHOT_CHUNK_BYTES = 96
SNAPSHOT_CREATED_HLC = 1_732_406_402_000 << 16
PASSPHRASE = "correct horse battery staple 7!"
KIT_CREATED = "2024-11-24T00:00:00Z"
KIT_SALT = bytes(range(16))
KIT_NONCE = bytes(range(100, 124))
KIT_KEY = bytes(range(224, 256))
KIT_SEED = bytes(range(48, 80))
#: The cheapest Argon2id the kit accepts: the vector pins the format, not the cost.
KIT_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MIN
KIT_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MIN


def vector_changes(*, with_base: bool = True) -> list[Change]:
    """The vector's three changes; `with_base=False` gives them as protocol 1.0 wrote them."""
    patient = {"name": [{"family": "山田", "given": ["太郎"]}], "birthDate": "1980-04-01",
               "gender": "male"}
    elements: dict[str, bytes | None] = {k: canonical_json(v) for k, v in patient.items()}
    return [
        Change(resource_type="Patient", resource_id="01936d2e-0000-7000-8000-000000000001",
               op=ChangeOp.SET, elements={**elements, DELETED: b"false"}, replaces={},
               hlc=(1_732_406_400_000 << 16), origin=SITE, seq=7, user="clerk-1",
               base={} if with_base else None),
        Change(resource_type="Patient", resource_id="01936d2e-0000-7000-8000-000000000001",
               op=ChangeOp.SET, elements={"birthDate": canonical_json("1980-04-02"),
                                          DELETED: b"false"},
               replaces={"birthDate": (Dot(SITE, 7), Dot(OTHER, 3)), DELETED: (Dot(SITE, 7),)},
               hlc=(1_732_406_400_500 << 16) | 1, origin=SITE, seq=8, user="dr-sato",
               device="tablet-2",
               base={"gender": elements["gender"] or b"", "name": elements["name"] or b""}
               if with_base else None),
        Change(resource_type="Observation", resource_id="01936d2e-0000-7000-8000-000000000002",
               op=ChangeOp.DELETE, elements={DELETED: b"true"},
               replaces={DELETED: (Dot(OTHER, 2),)}, hlc=(1_732_406_401_000 << 16),
               origin=SITE, seq=9, user="dr-sato", base={} if with_base else None),
    ]


def change_json(change: Change) -> dict[str, Any]:
    return {
        "resource_type": change.resource_type, "resource_id": change.resource_id,
        "op": change.op.value,
        "elements": {k: None if v is None else v.decode() for k, v in change.elements.items()},
        "replaces": {k: [[str(d.site), d.seq] for d in v] for k, v in change.replaces.items()},
        "hlc": change.hlc, "origin": str(change.origin), "seq": change.seq,
        "user": change.user, "device": change.device,
        **({} if change.base is None else
           {"base": {k: v.decode() for k, v in change.base.items()}}),
    }


def batch_vector() -> dict[str, Any]:
    sealed = seal_batch(
        practice_id=PRACTICE, site_id=SITE, site_keys=SiteKeyPair.generate(SITE_SEED),
        key=PracticeKey(1, KEY_SECRET), changes=vector_changes(), prev_hash=bytes([9]) * 32,
        batch_id=BATCH, nonce=NONCE)
    return {
        "about": "A protocol 1.1 sealed batch of 3 changes (create, concurrent-aware update "
                 "with the base its author saw, delete) from site b1 of practice aa, epoch 1; "
                 "keys and nonce are fixed test values.",
        "protocol": list(PROTOCOL_VERSION),
        "practice_id": str(PRACTICE), "site_id": str(SITE), "batch_id": str(BATCH),
        "key_epoch": 1, "key_secret": KEY_SECRET.hex(), "site_seed": SITE_SEED.hex(),
        "nonce": NONCE.hex(), "prev_hash": (bytes([9]) * 32).hex(),
        "sealed": sealed.hex(),
        "changes": [change_json(c) for c in vector_changes()],
    }


# --- snapshot ---------------------------------------------------------------------------


def snapshot_records() -> list[Any]:
    """Records of the shapes an edge writes (msgpack-able, JSON-representable here)."""
    return [
        ["meta", {"practice": str(PRACTICE), "hub_seq": HUB_SEQ, "format": 1}],
        ["resource", "Patient", "01936d2e-0000-7000-8000-000000000001",
         {"birthDate": '"1980-04-02"', "gender": '"male"', "@deleted": "false"}],
        ["resource", "Observation", "01936d2e-0000-7000-8000-000000000002",
         {"@deleted": "true"}],
        ["cursor", str(SITE), 9],
        ["cursor", str(OTHER), 3],
    ]


def snapshot_vector() -> dict[str, Any]:
    sealer = SnapshotSealer(
        practice_id=PRACTICE, site_id=SITE, snapshot_id=SNAPSHOT, hub_seq=HUB_SEQ,
        created_hlc=SNAPSHOT_CREATED_HLC, key=PracticeKey(1, KEY_SECRET),
        site_keys=SiteKeyPair.generate(SITE_SEED), chunk_bytes=SNAPSHOT_CHUNK_BYTES)
    sealed = sealer.begin() + b"".join(sealer.add(r) for r in snapshot_records())
    sealed += sealer.finish()
    header_len = int.from_bytes(sealed[4:8], "big")
    stream_header = sealed[8 + header_len:8 + header_len + 24]
    return {
        "about": "A v1 sealed snapshot of practice aa by site b1 up to hub seq 42, epoch 1, "
                 f"in chunks of {SNAPSHOT_CHUNK_BYTES} plain bytes (several chunks, the last "
                 "one FINAL). The secretstream header is random at sealing; it is recorded "
                 "so the test can rebuild every other byte.",
        "protocol": list(PROTOCOL_VERSION),
        "practice_id": str(PRACTICE), "site_id": str(SITE), "snapshot_id": str(SNAPSHOT),
        "hub_seq": HUB_SEQ, "created_hlc": SNAPSHOT_CREATED_HLC, "key_epoch": 1,
        "key_secret": KEY_SECRET.hex(), "site_seed": SITE_SEED.hex(),
        "chunk_bytes": SNAPSHOT_CHUNK_BYTES, "stream_header": stream_header.hex(),
        "sealed": sealed.hex(), "records": snapshot_records(),
    }


def snapshot_signature_vector(sealed: bytes) -> dict[str, Any]:
    """The attestation of `snapshot_v1.json`'s sealed bytes by site b1 (deterministic)."""
    digest = SnapshotDigest()
    for i in range(0, len(sealed), 100):  # fed in pieces, as a stream
        digest.update(sealed[i:i + 100])
    claim = SnapshotClaim(practice_id=PRACTICE, site_id=SITE, snapshot_id=SNAPSHOT,
                          hub_seq=HUB_SEQ, key_epoch=1, digest=digest.digest())
    attestation = attest_snapshot(claim, SiteKeyPair.generate(SITE_SEED))
    return {
        "about": "The attestation (sync_protocol/snapshot_signature.py) of snapshot_v1.json's "
                 "sealed bytes: BLAKE2b-256 digest, the signed message, site b1's Ed25519 "
                 "signature and the HTTP headers carrying it. Deterministic.",
        "practice_id": str(PRACTICE), "site_id": str(SITE), "snapshot_id": str(SNAPSHOT),
        "hub_seq": HUB_SEQ, "key_epoch": 1, "site_seed": SITE_SEED.hex(),
        "sealed_file": "snapshot_v1.json", "size": len(sealed),
        "digest": claim.digest.hex(), "message": claim.message().hex(),
        "signature": attestation.signature.hex(), "headers": attestation_headers(attestation),
    }


# --- hub receipt ------------------------------------------------------------------------


def hub_signing_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(HUB_SEED)


def vector_receipt() -> HubReceipt:
    return sign_receipt(hub_signing_key(), practice_id=PRACTICE, site_id=SITE,
                        batch_hash=BATCH_HASH, hub_seq=HUB_SEQ)


def receipt_vector() -> dict[str, Any]:
    receipt = vector_receipt()
    return {
        "about": "The hub's Ed25519 receipt for a batch of site b1 stored at hub seq 42; "
                 "the hub key is a fixed test seed.",
        "hub_seed": HUB_SEED.hex(),
        "hub_verify_key": bytes(hub_signing_key().verify_key).hex(),
        "practice_id": str(PRACTICE), "site_id": str(SITE), "batch_hash": BATCH_HASH.hex(),
        "hub_seq": HUB_SEQ, "signature": receipt.signature.hex(),
    }


# --- key delivery -----------------------------------------------------------------------


def vector_keyring() -> Keyring:
    return Keyring(PRACTICE, {1: PracticeKey(1, KEY_SECRET), 2: PracticeKey(2, KEY2_SECRET)})


def key_delivery_vector() -> dict[str, Any]:
    recipient = SiteKeyPair.generate(RECIPIENT_SEED).public(RECIPIENT)
    sealed = seal_keys_for_site(vector_keyring().keys.values(), practice_id=PRACTICE,
                                sender_id=SITE, sender_keys=SiteKeyPair.generate(SITE_SEED),
                                recipient=recipient)
    return {
        "about": "Key epochs 1 and 2 of practice aa, sealed by site b1 to site b3's X25519 "
                 "key and signed by b1. The sealed box's ephemeral key is random at "
                 "sealing; every other byte is rebuilt by the test.",
        "practice_id": str(PRACTICE), "sender_id": str(SITE), "sender_seed": SITE_SEED.hex(),
        "recipient_id": str(RECIPIENT), "recipient_seed": RECIPIENT_SEED.hex(),
        "keys": [[1, KEY_SECRET.hex()], [2, KEY2_SECRET.hex()]],
        "sealed": sealed.hex(),
    }


# --- recovery kits ----------------------------------------------------------------------


def passphrase_kit() -> str:
    return create_recovery_kit(vector_keyring(), PASSPHRASE, kit=KitKeyPair.from_seed(KIT_SEED),
                               created=KIT_CREATED,
                               opslimit=KIT_OPSLIMIT, memlimit=KIT_MEMLIMIT, salt=KIT_SALT,
                               nonce=KIT_NONCE)


def recovery_kit_vector() -> dict[str, Any]:
    shared, shares = create_shared_recovery_kit(vector_keyring(), kit=KitKeyPair.from_seed(
        KIT_SEED), threshold=2, shares=3, created=KIT_CREATED, kit_key=KIT_KEY)
    return {
        "about": "Recovery kits (format 2) of practice aa holding kit seed KIT_SEED and key "
                 "epochs 1 and 2: one under a "
                 "passphrase (Argon2id at its minimum cost, fixed salt and nonce: "
                 "deterministic), one opened by any 2 of 3 SLIP-39 shares of a fixed kit key "
                 "(its nonce and shares are random at creation).",
        "practice_id": str(PRACTICE), "created": KIT_CREATED,
        "keys": [[1, KEY_SECRET.hex()], [2, KEY2_SECRET.hex()]],
        "passphrase": PASSPHRASE, "opslimit": KIT_OPSLIMIT, "memlimit": KIT_MEMLIMIT,
        "salt": KIT_SALT.hex(), "nonce": KIT_NONCE.hex(), "passphrase_kit": passphrase_kit(),
        "kit_key": KIT_KEY.hex(), "threshold": 2, "shares": shares, "shared_kit": shared,
        "kit_seed": KIT_SEED.hex(),
        "kit_fingerprint": KitKeyPair.from_seed(KIT_SEED).public().fingerprint,
    }


# --- roster and kit-sealed epoch keys ---------------------------------------------------

ROSTER_AT_MS = 1_732_406_400_000


def roster_entries() -> list[SignedEntry]:
    """Genesis by b1 (kit KIT_SEED), b3 approved by b1, b1 revoked by b3 (epoch 2), and a
    kit-signed approval of b2."""
    kit = KitKeyPair.from_seed(KIT_SEED)
    b1, b3 = SiteKeyPair.generate(SITE_SEED), SiteKeyPair.generate(RECIPIENT_SEED)
    b2 = SiteKeyPair.generate(bytes(range(192, 256)))
    signed = [sign_entry(genesis_entry(PRACTICE, b1.public(SITE), kit.public(),
                                       at_ms=ROSTER_AT_MS), b1)]
    steps: list[tuple[EntryKind, Any, UUID | None, Any, int | None]] = [
        (EntryKind.APPROVE, b3.public(RECIPIENT), SITE, b1, None),
        (EntryKind.REVOKE, b1.public(SITE), RECIPIENT, b3, 2),
        (EntryKind.APPROVE, b2.public(OTHER), None, kit, None)]
    for kind, subject, signer, key, epoch in steps:
        roster = fold(PRACTICE, [e.raw for e in signed])
        signed.append(sign_entry(roster.next_entry(
            kind, signer=signer, at_ms=ROSTER_AT_MS + len(signed), site=subject,
            epoch=epoch), key))
    return signed


def roster_vector() -> dict[str, Any]:
    entries = roster_entries()
    roster = fold(PRACTICE, [e.raw for e in entries])
    return {
        "about": "A practice roster (sync_protocol/roster.py) of practice aa: genesis by "
                 "site b1 naming the kit of KIT_SEED; b3 approved by b1; b1 revoked by b3 "
                 "(key epoch 2); b2 approved by the recovery kit. Ed25519 signatures are "
                 "deterministic: every byte is rebuilt from the seeds.",
        "practice_id": str(PRACTICE), "kit_seed": KIT_SEED.hex(),
        "site_seeds": {str(SITE): SITE_SEED.hex(), str(RECIPIENT): RECIPIENT_SEED.hex(),
                       str(OTHER): bytes(range(192, 256)).hex()},
        "entries": [{"raw": e.raw.hex(), "hash": e.hash.hex(), "kind": e.entry.kind.value}
                    for e in entries],
        "approved": sorted(str(m.site_id) for m in roster.approved()), "epoch": roster.epoch,
    }


def kit_epoch_vector() -> dict[str, Any]:
    kit = KitKeyPair.from_seed(KIT_SEED)
    sealed = seal_epoch_for_kit(PracticeKey(2, KEY2_SECRET), practice_id=PRACTICE,
                                sender_id=SITE, sender_keys=SiteKeyPair.generate(SITE_SEED),
                                kit=kit.public())
    return {
        "about": "Key epoch 2 of practice aa sealed by site b1 to the recovery kit of "
                 "KIT_SEED (sync_protocol/kit_keys.py). The sealed box's ephemeral key is "
                 "random at sealing; the envelope around it and its plaintext are rebuilt "
                 "by the test.",
        "practice_id": str(PRACTICE), "sender_id": str(SITE), "sender_seed": SITE_SEED.hex(),
        "kit_seed": KIT_SEED.hex(), "kit_fingerprint": kit.public().fingerprint,
        "epoch": 2, "key": KEY2_SECRET.hex(), "sealed": sealed.sealed.hex(),
    }


# --- backup file ------------------------------------------------------------------------

BACKUP_FILE_KEY = bytes(range(8, 40))
BACKUP_SALT = bytes(range(40, 56))
BACKUP_NONCE = bytes(range(56, 80))
BACKUP_CREATED_MS = 1_732_406_403_000
#: Small enough that the database bytes span several chunks (MESSAGE and FINAL tags).
BACKUP_CHUNK_BYTES = 64
#: Stands in for the SQLite file: the format does not look inside it.
BACKUP_PLAIN = b"SQLite format 3\0" + bytes(range(256))[:150]


def backup_file_vector() -> dict[str, Any]:
    about = BackupAbout(practice_id=PRACTICE, site_id=SITE, created_ms=BACKUP_CREATED_MS,
                        schema_version=5)
    kit = KitKeyPair.from_seed(KIT_SEED)
    sealer = BackupSealer(about, [PassphraseSlot(PASSPHRASE, opslimit=KIT_OPSLIMIT,
                                                 memlimit=KIT_MEMLIMIT, salt=BACKUP_SALT,
                                                 nonce=BACKUP_NONCE),
                                  KitSlot(kit.public())],
                          file_key=BACKUP_FILE_KEY, chunk_bytes=BACKUP_CHUNK_BYTES)
    sealed = sealer.begin() + sealer.add(BACKUP_PLAIN) + sealer.finish()
    return {
        "about": "An encrypted backup file (format 1) of site b1 of practice aa, schema 5: "
                 "a passphrase slot (Argon2id at its minimum cost, fixed salt and nonce) and "
                 "a slot sealed to the kit of KIT_SEED, both wrapping file_key; plain bytes "
                 "in chunks of 64 (several MESSAGE chunks and a FINAL one). The kit slot's "
                 "box and the secretstream header are random at creation.",
        "practice_id": str(PRACTICE), "site_id": str(SITE), "created_ms": BACKUP_CREATED_MS,
        "schema_version": 5, "chunk_bytes": BACKUP_CHUNK_BYTES,
        "passphrase": PASSPHRASE, "opslimit": KIT_OPSLIMIT, "memlimit": KIT_MEMLIMIT,
        "salt": BACKUP_SALT.hex(), "nonce": BACKUP_NONCE.hex(),
        "kit_seed": KIT_SEED.hex(), "kit_fingerprint": kit.public().fingerprint,
        "file_key": BACKUP_FILE_KEY.hex(), "plain": BACKUP_PLAIN.hex(), "sealed": sealed.hex(),
    }


# --- state digest -----------------------------------------------------------------------


def digest_records() -> list[tuple[bytes, bytes]]:
    """(record key, canonical state) pairs as an edge feeds them (`Type/id`, state bytes)."""
    return [
        (b"Patient/01936d2e-0000-7000-8000-000000000001",
         canonical_json({"birthDate": "1980-04-02", "gender": "male"})),
        (b"Observation/01936d2e-0000-7000-8000-000000000002", canonical_json({"@deleted": True})),
        (b"AllergyIntolerance/a-1", canonical_json({"code": "penicillin", "criticality": "high"})),
    ]


DIGEST_REPLACEMENT = canonical_json({"birthDate": "1980-04-03", "gender": "male"})


def digest_vector() -> dict[str, Any]:
    key = PracticeKey(1, KEY_SECRET).digest_key
    digest = StateDigest(key)
    for record_key, state in digest_records():
        digest.add(record_key, state)
    after_add = digest.hexdigest()
    first_key, first_state = digest_records()[0]
    digest.replace(first_key, first_state, DIGEST_REPLACEMENT)
    after_replace = digest.hexdigest()
    digest.remove(*digest_records()[1])
    return {
        "about": "The keyed state digest (key: the digest sub-key of epoch 1 of key_secret) "
                 "of 3 records; then after replacing the first record's state, then after "
                 "removing the second record.",
        "key_secret": KEY_SECRET.hex(), "digest_key": key.hex(),
        "records": [{"record_key": k.decode(), "state": s.hex(),
                     "hash": f"{record_hash(key, k, s):064x}"} for k, s in digest_records()],
        "replacement_state": DIGEST_REPLACEMENT.hex(),
        "after_add": after_add, "after_replace": after_replace,
        "after_remove": digest.hexdigest(), "count_after_remove": digest.count,
    }


# --- HTTP bodies ------------------------------------------------------------------------


def json_text(value: Any) -> str:
    """A JSON body as the hub's `web.json_response` and the edge's `json=` write it."""
    return json.dumps(value)


def http_models() -> dict[str, tuple[str, Any]]:
    """The JSON bodies that a pydantic model of the hub API reads: name → (route, model)."""
    site_keys = SiteKeyPair.generate(RECIPIENT_SEED)
    public = site_keys.public(RECIPIENT)
    verify_key = bytes(hub_signing_key().verify_key)
    return {
        "heartbeat_request": ("POST /v1/heartbeat", HeartbeatIn(
            cursor=HUB_SEQ, outbox_depth=3, oldest_unpushed_age_s=1.5,
            software_version="0.1.0", protocol_version="1.0", state_digest="ab" * 32,
            held_batches=1, dead_letters=0,
            gaps=[GapIn(origin=OTHER, missing_from=4, missing_to=6)],
            last_error="hub unreachable: connection refused", clock_offset_ms=-120)),
        "enrollment_token_request": ("POST /v1/practices/{pid}/enrollment-tokens",
                                     CreateEnrollmentToken(ttl_s=3600)),
        "enrollment_token_answer": ("POST /v1/practices/{pid}/enrollment-tokens",
                                    EnrollmentTokenOut(practice_id=PRACTICE,
                                                       token="enr-0123456789abcdef",
                                                       expires_ms=1_732_410_000_000)),
        "enroll_request": ("POST /v1/enroll", EnrollRequest(
            token="enr-0123456789abcdef", name="Reception PC", verify_key=public.verify_key,
            box_key=public.box_key)),
        "enroll_answer": ("POST /v1/enroll", EnrollResponse(
            practice_id=PRACTICE, site_id=RECIPIENT, credential="site-credential-b3",
            status="pending", fingerprint=public.fingerprint, hub_verify_key=verify_key)),
        "site_entry": ("GET /v1/me", SiteOut(
            site_id=RECIPIENT, name="Reception PC", verify_key=public.verify_key,
            box_key=public.box_key, fingerprint=public.fingerprint, status="approved",
            approved_by=SITE, created_ms=1_732_406_400_000)),
        "hub_key_answer": ("GET /v1/hub-key", HubKeyOut(
            verify_key=verify_key, fingerprint="AAAA-BBBB-CCCC-DDDD-EEEE", log_id=LOG_ID)),
    }


def chain_refusal() -> dict[str, Any]:
    """The problem body refusing the second batch of a pipelined push."""
    return error_body(ChainMismatch(
        f"batch of site {SITE} does not continue its chain at seq 10",
        expected_seq=10, expected_prev_hash=bytes([7]) * 32))


def http_plain_json(sealed_key_delivery: bytes) -> dict[str, tuple[str, Any]]:
    """The JSON bodies without a pydantic model of their own: name → (route, value)."""
    ack = PushAck(hub_seq=HUB_SEQ, receipt=vector_receipt())
    mail = MailOut(mail_id=MAIL, from_site=SITE, sealed=sealed_key_delivery,
                   created_ms=1_732_406_400_000)
    return {
        "push_answer": ("POST /v1/batches", ack.to_json()),
        "push_many_answer": ("POST /v1/batches",
                             {"acks": [ack.to_json()], "refused": chain_refusal()}),
        "mail_post_answer": ("POST /v1/mailbox/{id}", {"mail_id": str(MAIL)}),
        "mail_list_answer": ("GET /v1/mailbox", {"items": [mail.model_dump(mode="json")]}),
    }


def http_msgpack(sealed_batch: bytes) -> dict[str, tuple[str, bytes]]:
    """The msgpack bodies: name → (route, bytes)."""
    return {
        "push_request_many": ("POST /v1/batches", encode_push_many([sealed_batch])),
        "pull_answer": ("GET /v1/batches?after=41&limit=100&wait_s=25", encode_pull_response(
            [PulledBatch(hub_seq=HUB_SEQ, site_id=SITE, sealed=sealed_batch)],
            head=HUB_SEQ + 1, log_id=LOG_ID)),
        "stream_frame": ("GET /v1/stream (one WebSocket frame)", encode_pulled(
            hub_seq=HUB_SEQ, site_id=SITE, sealed=sealed_batch, log_id=LOG_ID)),
    }


def http_vector(sealed_batch: bytes, sealed_key_delivery: bytes) -> dict[str, Any]:
    bodies: dict[str, Any] = {}
    for name, (route, model) in http_models().items():
        bodies[name] = {"route": route, "model": type(model).__name__,
                        "body": json_text(model.model_dump(mode="json"))}
    for name, (route, value) in http_plain_json(sealed_key_delivery).items():
        bodies[name] = {"route": route, "body": json_text(value)}
    for name, (route, raw) in http_msgpack(sealed_batch).items():
        bodies[name] = {"route": route, "body_hex": raw.hex()}
    return {
        "about": "Request and answer bodies of the sync API (JSON as text, msgpack as hex). "
                 "Batches inside are batch_v1_1.json's sealed batch; the mailbox item is "
                 "key_delivery_v1.json's sealed bytes; the receipt is receipt_v1.json's.",
        "protocol": list(PROTOCOL_VERSION),
        "bodies": bodies,
    }


# --- writing ----------------------------------------------------------------------------


def _write(name: str, vector: dict[str, Any]) -> None:
    (HERE / name).write_text(json.dumps(vector, indent=1, ensure_ascii=False) + "\n")


def _randomized(name: str, build: Any, reseal: bool) -> dict[str, Any]:
    """The stored vector `name`, or a fresh one if there is none or `reseal` is set."""
    path = HERE / name
    if path.exists() and not reseal:
        stored: dict[str, Any] = json.loads(path.read_text())
        return stored
    vector: dict[str, Any] = build()
    _write(name, vector)
    return vector


def main(argv: list[str]) -> None:
    reseal = "--reseal" in argv
    batch = batch_vector()
    # batch_v1.json (protocol 1.0) is never rewritten: readers must keep opening it.
    _write("batch_v1_1.json", batch)
    snapshot = _randomized("snapshot_v1.json", snapshot_vector, reseal)
    _write("snapshot_signature_v1.json",
           snapshot_signature_vector(bytes.fromhex(snapshot["sealed"])))
    _write("receipt_v1.json", receipt_vector())
    delivery = _randomized("key_delivery_v1.json", key_delivery_vector, reseal)
    _randomized("recovery_kit_v2.json", recovery_kit_vector, reseal)
    _write("roster_v1.json", roster_vector())
    _randomized("kit_epoch_v1.json", kit_epoch_vector, reseal)
    _randomized("backup_file_v1.json", backup_file_vector, reseal)
    _write("state_digest_v1.json", digest_vector())
    _write("http_bodies_v1.json", http_vector(bytes.fromhex(batch["sealed"]),
                                              bytes.fromhex(delivery["sealed"])))


if __name__ == "__main__":
    main(sys.argv[1:])
