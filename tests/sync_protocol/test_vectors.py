"""Golden vectors: today's code still opens v1 bytes, and seals them the same way.

Each vector in `tests/vectors/` is checked both ways: its fixed inputs encode to
exactly the stored bytes (around the random part, where sealing draws one), and
the stored bytes decode to the stored values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any
from uuid import UUID

import msgpack
import nacl.bindings as sodium
import nacl.public
import nacl.signing
import pytest
import shamir_mnemonic

from sync_protocol.batch import open_batch, read_sealed, seal_batch
from sync_protocol.canonical import canonical_pack
from sync_protocol.digest import StateDigest, record_hash
from sync_protocol.errors import BadRecoveryShares, BadSignature, ProtocolError, WrongPassphrase
from sync_protocol.framing import compress
from sync_protocol.key_delivery import open_keys_for_site
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair
from sync_protocol.kit_keys import KitKeyPair, open_epoch_for_kit
from sync_protocol.models import HubReceipt
from sync_protocol.receipt import sign_receipt, verify_receipt
from sync_protocol.recovery import (
    create_recovery_kit,
    create_shared_recovery_kit,
    open_recovery_kit,
    open_shared_recovery_kit,
)
from sync_protocol.roster import fold
from sync_protocol.snapshot import SnapshotHeader, SnapshotOpener
from sync_protocol.wire import encode_changes
from tests.vectors.make_vectors import change_json, roster_entries, vector_changes

VECTORS = Path(__file__).parent.parent / "vectors"
VECTOR_1_0 = json.loads((VECTORS / "batch_v1.json").read_text())
VECTOR = json.loads((VECTORS / "batch_v1_1.json").read_text())


def _keys() -> tuple[Keyring, SiteDirectory, SiteKeyPair]:
    site_keys = SiteKeyPair.generate(bytes.fromhex(VECTOR["site_seed"]))
    keyring = Keyring(UUID(VECTOR["practice_id"]),
                      {1: PracticeKey(1, bytes.fromhex(VECTOR["key_secret"]))})
    return keyring, SiteDirectory([site_keys.public(UUID(VECTOR["site_id"]))]), site_keys


def test_v1_0_vector_still_opens_to_the_recorded_changes_without_a_base() -> None:
    keyring, directory, _ = _keys()
    header, changes = open_batch(bytes.fromhex(VECTOR_1_0["sealed"]), keyring, directory)
    assert [change_json(c) for c in changes] == VECTOR_1_0["changes"]
    assert all(c.base is None for c in changes)
    assert changes == vector_changes(with_base=False)
    assert list(header.protocol) == VECTOR_1_0["protocol"] == [1, 0]


def test_v1_1_vector_opens_to_the_recorded_changes_with_their_base() -> None:
    keyring, directory, _ = _keys()
    header, changes = open_batch(bytes.fromhex(VECTOR["sealed"]), keyring, directory)
    assert [change_json(c) for c in changes] == VECTOR["changes"]
    assert changes == vector_changes()
    assert changes[1].base is not None and set(changes[1].base) == {"gender", "name"}
    assert (header.seq_from, header.seq_to, header.key_epoch) == (7, 9, 1)
    assert list(header.protocol) == VECTOR["protocol"] == [1, 1]


def test_sealing_the_vector_inputs_gives_the_same_header_and_content() -> None:
    keyring, _, site_keys = _keys()
    sealed = seal_batch(
        practice_id=UUID(VECTOR["practice_id"]), site_id=UUID(VECTOR["site_id"]),
        site_keys=site_keys, key=keyring.current, changes=vector_changes(),
        prev_hash=bytes.fromhex(VECTOR["prev_hash"]), batch_id=UUID(VECTOR["batch_id"]),
        nonce=bytes.fromhex(VECTOR["nonce"]))
    recorded = read_sealed(bytes.fromhex(VECTOR["sealed"]))
    assert read_sealed(sealed).parts.header == recorded.parts.header
    # The ciphertext also matches unless the zstd library's output changed.
    assert encode_changes(vector_changes())["sites"] == sorted(
        {UUID(s).bytes for c in VECTOR["changes"] for v in c["replaces"].values() for s, _ in v})


# --- snapshot ---------------------------------------------------------------------------

SNAPSHOT = json.loads((VECTORS / "snapshot_v1.json").read_text())


def _snapshot_keys() -> tuple[PracticeKey, SiteKeyPair]:
    return (PracticeKey(SNAPSHOT["key_epoch"], bytes.fromhex(SNAPSHOT["key_secret"])),
            SiteKeyPair.generate(bytes.fromhex(SNAPSHOT["site_seed"])))


def _open_snapshot(sealed: bytes, piece: int) -> tuple[SnapshotHeader, list[Any]]:
    key, site_keys = _snapshot_keys()
    opener = SnapshotOpener(Keyring(UUID(SNAPSHOT["practice_id"]), {key.epoch: key}),
                            SiteDirectory([site_keys.public(UUID(SNAPSHOT["site_id"]))]))
    records = [r for i in range(0, len(sealed), piece) for r in opener.feed(sealed[i:i + piece])]
    return opener.finish(), records


def test_snapshot_vector_opens_to_the_recorded_records() -> None:
    for piece in (1, 7, 1 << 20):  # any split of the stream reads the same
        header, records = _open_snapshot(bytes.fromhex(SNAPSHOT["sealed"]), piece)
        assert records == SNAPSHOT["records"]
        assert (list(header.protocol), str(header.snapshot_id), header.hub_seq,
                header.created_hlc, header.key_epoch) == (
            SNAPSHOT["protocol"], SNAPSHOT["snapshot_id"], SNAPSHOT["hub_seq"],
            SNAPSHOT["created_hlc"], SNAPSHOT["key_epoch"])


def test_snapshot_vector_rebuilds_byte_for_byte_from_its_stream_header() -> None:
    # An independent writer of the format in snapshot.py's docstring: only the random
    # secretstream header is taken from the vector.
    key, site_keys = _snapshot_keys()
    header = canonical_pack(SnapshotHeader(
        protocol=tuple(SNAPSHOT["protocol"]), practice_id=UUID(SNAPSHOT["practice_id"]),
        site_id=UUID(SNAPSHOT["site_id"]), snapshot_id=UUID(SNAPSHOT["snapshot_id"]),
        hub_seq=SNAPSHOT["hub_seq"], key_epoch=key.epoch, key_id=key.key_id,
        created_hlc=SNAPSHOT["created_hlc"]).to_wire())
    stream_header = bytes.fromhex(SNAPSHOT["stream_header"])
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header,
                                                           key.snapshot_key)
    chunks: list[bytes] = []
    plain = b""
    for record in SNAPSHOT["records"]:  # a chunk closes once it holds chunk_bytes or more
        plain += msgpack.packb(record, use_bin_type=True)
        if len(plain) >= SNAPSHOT["chunk_bytes"]:
            chunks, plain = [*chunks, plain], b""
    chunks.append(plain)
    assert len(chunks) > 2, "the vector should span several chunks"
    frames = b""
    for i, chunk in enumerate(chunks):
        tag = (sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL if i == len(chunks) - 1
               else sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        cipher = sodium.crypto_secretstream_xchacha20poly1305_push(state, compress(chunk),
                                                                   None, tag)
        frames += len(cipher).to_bytes(4, "big") + cipher
    signature = site_keys.sign(b"chartsync/snapshot/v1\0" + len(header).to_bytes(4, "big")
                               + header + stream_header
                               + hashlib.blake2b(frames, digest_size=32).digest())
    rebuilt = b"CSS1" + len(header).to_bytes(4, "big") + header + stream_header + frames
    assert (rebuilt + signature).hex() == SNAPSHOT["sealed"]


def test_every_byte_of_the_snapshot_vector_is_checked() -> None:
    sealed = bytes.fromhex(SNAPSHOT["sealed"])
    for i in range(len(sealed)):
        altered = sealed[:i] + bytes([sealed[i] ^ 0x01]) + sealed[i + 1:]
        with pytest.raises(ProtocolError):
            _open_snapshot(altered, 1 << 20)


# --- hub receipt ------------------------------------------------------------------------

RECEIPT = json.loads((VECTORS / "receipt_v1.json").read_text())


def _stored_receipt() -> HubReceipt:
    return HubReceipt(practice_id=UUID(RECEIPT["practice_id"]), site_id=UUID(RECEIPT["site_id"]),
                      batch_hash=bytes.fromhex(RECEIPT["batch_hash"]),
                      hub_seq=RECEIPT["hub_seq"], signature=bytes.fromhex(RECEIPT["signature"]))


def test_signing_the_receipt_inputs_gives_the_recorded_signature() -> None:
    hub_key = nacl.signing.SigningKey(bytes.fromhex(RECEIPT["hub_seed"]))
    assert bytes(hub_key.verify_key).hex() == RECEIPT["hub_verify_key"]
    receipt = sign_receipt(hub_key, practice_id=UUID(RECEIPT["practice_id"]),
                           site_id=UUID(RECEIPT["site_id"]),
                           batch_hash=bytes.fromhex(RECEIPT["batch_hash"]),
                           hub_seq=RECEIPT["hub_seq"])
    assert receipt == _stored_receipt()


def test_receipt_vector_verifies_and_signs_the_documented_message() -> None:
    receipt = _stored_receipt()
    verify_receipt(receipt, bytes.fromhex(RECEIPT["hub_verify_key"]))
    message = b"chartsync/receipt/v1\0" + canonical_pack(
        [receipt.practice_id.bytes, receipt.site_id.bytes, receipt.batch_hash, receipt.hub_seq])
    nacl.signing.VerifyKey(bytes.fromhex(RECEIPT["hub_verify_key"])).verify(
        message, receipt.signature)
    for i in range(len(receipt.signature)):
        sig = bytearray(receipt.signature)
        sig[i] ^= 0x01
        with pytest.raises(BadSignature):
            verify_receipt(receipt.model_copy(update={"signature": bytes(sig)}),
                           bytes.fromhex(RECEIPT["hub_verify_key"]))
    with pytest.raises(BadSignature):
        verify_receipt(receipt.model_copy(update={"hub_seq": receipt.hub_seq + 1}),
                       bytes.fromhex(RECEIPT["hub_verify_key"]))


# --- key delivery -----------------------------------------------------------------------

DELIVERY = json.loads((VECTORS / "key_delivery_v1.json").read_text())


def _open_delivery(raw: bytes) -> Keyring:
    sender = SiteKeyPair.generate(bytes.fromhex(DELIVERY["sender_seed"]))
    return open_keys_for_site(
        raw, practice_id=UUID(DELIVERY["practice_id"]), site_id=UUID(DELIVERY["recipient_id"]),
        site_keys=SiteKeyPair.generate(bytes.fromhex(DELIVERY["recipient_seed"])),
        directory=SiteDirectory([sender.public(UUID(DELIVERY["sender_id"]))]))


def test_key_delivery_vector_opens_to_the_recorded_keys() -> None:
    keyring = _open_delivery(bytes.fromhex(DELIVERY["sealed"]))
    assert keyring.practice_id == UUID(DELIVERY["practice_id"])
    assert [[e, k.secret.hex()] for e, k in sorted(keyring.keys.items())] == DELIVERY["keys"]


def test_key_delivery_vector_rebuilds_byte_for_byte_around_its_sealed_box() -> None:
    # The sealed box's ephemeral key is random; everything around it is fixed.
    sealed = bytes.fromhex(DELIVERY["sealed"])
    outer = msgpack.unpackb(sealed)
    box = msgpack.unpackb(outer["envelope"])["box"]
    practice, sender_id = UUID(DELIVERY["practice_id"]), UUID(DELIVERY["sender_id"])
    recipient = UUID(DELIVERY["recipient_id"])
    envelope = canonical_pack({"v": 1, "practice": practice.bytes, "from": sender_id.bytes,
                               "to": recipient.bytes, "box": box})
    sender = SiteKeyPair.generate(bytes.fromhex(DELIVERY["sender_seed"]))
    signature = sender.sign(b"chartsync/key-delivery/v1\0" + envelope)
    assert canonical_pack({"envelope": envelope, "sig": signature}) == sealed
    recipient_keys = SiteKeyPair.generate(bytes.fromhex(DELIVERY["recipient_seed"]))
    inner = nacl.public.SealedBox(recipient_keys.box_key).decrypt(box)
    assert inner == canonical_pack({"practice": practice.bytes, "to": recipient.bytes, "keys": [
        [e, bytes.fromhex(s)] for e, s in DELIVERY["keys"]]})


def test_every_byte_of_the_key_delivery_vector_is_checked() -> None:
    sealed = bytes.fromhex(DELIVERY["sealed"])
    for i in range(len(sealed)):
        altered = sealed[:i] + bytes([sealed[i] ^ 0x01]) + sealed[i + 1:]
        with pytest.raises(ProtocolError):
            _open_delivery(altered)


# --- recovery kits ----------------------------------------------------------------------

KIT = json.loads((VECTORS / "recovery_kit_v2.json").read_text())
KIT_V1 = json.loads((VECTORS / "recovery_kit_v1.json").read_text())
KIT_KEYS = KitKeyPair.from_seed(bytes.fromhex(KIT["kit_seed"]))


def _kit_keyring() -> Keyring:
    return Keyring(UUID(KIT["practice_id"]),
                   {e: PracticeKey(e, bytes.fromhex(s)) for e, s in KIT["keys"]})


def test_creating_the_passphrase_kit_from_its_inputs_gives_the_recorded_text() -> None:
    assert create_recovery_kit(
        _kit_keyring(), KIT["passphrase"], kit=KIT_KEYS, created=KIT["created"],
        opslimit=KIT["opslimit"],
        memlimit=KIT["memlimit"], salt=bytes.fromhex(KIT["salt"]),
        nonce=bytes.fromhex(KIT["nonce"])) == KIT["passphrase_kit"]


def test_passphrase_kit_vector_opens_to_the_recorded_keys() -> None:
    opened = open_recovery_kit(KIT["passphrase_kit"], KIT["passphrase"])
    assert opened.keyring == _kit_keyring()
    assert opened.keys is not None and opened.keys.seed == KIT_KEYS.seed
    assert opened.keys.public().fingerprint == KIT["kit_fingerprint"]
    with pytest.raises(WrongPassphrase):
        open_recovery_kit(KIT["passphrase_kit"], KIT["passphrase"] + "x")


def test_format_1_kits_still_open_without_kit_keys() -> None:
    ring = Keyring(UUID(KIT_V1["practice_id"]),
                   {e: PracticeKey(e, bytes.fromhex(s)) for e, s in KIT_V1["keys"]})
    opened = open_recovery_kit(KIT_V1["passphrase_kit"], KIT_V1["passphrase"])
    assert (opened.keyring, opened.keys) == (ring, None)
    shared = open_shared_recovery_kit(KIT_V1["shared_kit"], KIT_V1["shares"][:2])
    assert (shared.keyring, shared.keys) == (ring, None)


def test_shared_kit_vector_opens_with_any_threshold_of_its_shares() -> None:
    shares = KIT["shares"]
    for chosen in ([shares[0], shares[1]], [shares[1], shares[2]], [shares[2], shares[0]]):
        assert open_shared_recovery_kit(KIT["shared_kit"], chosen).keyring == _kit_keyring()
        assert shamir_mnemonic.combine_mnemonics(chosen).hex() == KIT["kit_key"]
    with pytest.raises(BadRecoveryShares):
        open_shared_recovery_kit(KIT["shared_kit"], shares[:1])


def _kit_parts(text: str) -> tuple[list[str], dict[str, Any]]:
    lines = text.splitlines()
    blank = lines.index("")
    return lines[:blank], msgpack.unpackb(base64.b64decode("".join(lines[blank + 1:-1])))


def test_shared_kit_vector_is_what_its_inputs_give_but_for_its_random_nonce() -> None:
    fresh, _ = create_shared_recovery_kit(_kit_keyring(), kit=KIT_KEYS,
                                          threshold=KIT["threshold"],
                                          shares=len(KIT["shares"]), created=KIT["created"],
                                          kit_key=bytes.fromhex(KIT["kit_key"]))
    stored_head, stored = _kit_parts(KIT["shared_kit"])
    fresh_head, made = _kit_parts(fresh)
    assert stored_head == fresh_head
    assert KIT["shared_kit"].splitlines()[-1] == fresh.splitlines()[-1]
    nonce, box = stored.pop("nonce"), stored.pop("box")
    assert set(made) - set(stored) == {"nonce", "box"}
    assert stored == {k: v for k, v in made.items() if k not in ("nonce", "box")}
    plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        box, canonical_pack(stored), nonce, bytes.fromhex(KIT["kit_key"]))
    assert plain == canonical_pack({"seed": KIT_KEYS.seed, "keyring": _kit_keyring().to_wire()})
    text = KIT["shared_kit"]
    assert text == "\n".join([*stored_head, "", *textwrap.wrap(
        base64.b64encode(canonical_pack({**stored, "nonce": nonce, "box": box})).decode(), 64),
        text.splitlines()[-1]]) + "\n"


# --- state digest -----------------------------------------------------------------------

DIGEST = json.loads((VECTORS / "state_digest_v1.json").read_text())


def test_state_digest_vector_is_what_the_digest_computes() -> None:
    key = PracticeKey(1, bytes.fromhex(DIGEST["key_secret"])).digest_key
    assert key.hex() == DIGEST["digest_key"]
    records = [(r["record_key"].encode(), bytes.fromhex(r["state"])) for r in DIGEST["records"]]
    digest = StateDigest(key)
    for (record_key, state), stored in zip(records, DIGEST["records"], strict=True):
        assert f"{record_hash(key, record_key, state):064x}" == stored["hash"]
        digest.add(record_key, state)
    assert digest.hexdigest() == DIGEST["after_add"]
    digest.replace(records[0][0], records[0][1], bytes.fromhex(DIGEST["replacement_state"]))
    assert digest.hexdigest() == DIGEST["after_replace"]
    digest.remove(*records[1])
    assert (digest.hexdigest(), digest.count) == (DIGEST["after_remove"],
                                                  DIGEST["count_after_remove"])


def test_state_digest_vector_follows_the_documented_formula() -> None:
    # digest.py's docstring: the sum mod 2^256 of keyed BLAKE2b-256 of len32 | key | state.
    key = bytes.fromhex(DIGEST["digest_key"])
    total = 0
    for r in DIGEST["records"]:
        record_key, state = r["record_key"].encode(), bytes.fromhex(r["state"])
        item = hashlib.blake2b(len(record_key).to_bytes(4, "big") + record_key + state,
                               digest_size=32, key=key, person=b"cs-digest-item").hexdigest()
        assert item == r["hash"]
        total += int(item, 16)
    assert f"{total % (1 << 256):064x}" == DIGEST["after_add"]


# --- roster and kit-sealed epoch keys ----------------------------------------------------

ROSTER = json.loads((VECTORS / "roster_v1.json").read_text())
KIT_EPOCH = json.loads((VECTORS / "kit_epoch_v1.json").read_text())


def test_roster_vector_is_rebuilt_byte_for_byte_and_folds_to_the_recorded_members() -> None:
    made = roster_entries()
    assert [e.raw.hex() for e in made] == [e["raw"] for e in ROSTER["entries"]]
    assert [e.hash.hex() for e in made] == [e["hash"] for e in ROSTER["entries"]]
    raws = [bytes.fromhex(e["raw"]) for e in ROSTER["entries"]]
    roster = fold(UUID(ROSTER["practice_id"]), raws)
    assert sorted(str(m.site_id) for m in roster.approved()) == ROSTER["approved"]
    assert roster.epoch == ROSTER["epoch"] and roster.ignored == ()
    assert roster.kit == KitKeyPair.from_seed(bytes.fromhex(ROSTER["kit_seed"])).public()


def test_kit_epoch_vector_opens_with_the_kit_and_only_from_its_sealer() -> None:
    practice, sender = UUID(KIT_EPOCH["practice_id"]), UUID(KIT_EPOCH["sender_id"])
    kit = KitKeyPair.from_seed(bytes.fromhex(KIT_EPOCH["kit_seed"]))
    sender_keys = SiteKeyPair.generate(bytes.fromhex(KIT_EPOCH["sender_seed"]))
    sealed = bytes.fromhex(KIT_EPOCH["sealed"])
    key = open_epoch_for_kit(sealed, practice_id=practice, kit=kit,
                             directory=SiteDirectory([sender_keys.public(sender)]))
    assert (key.epoch, key.secret.hex()) == (KIT_EPOCH["epoch"], KIT_EPOCH["key"])
    assert kit.public().fingerprint == KIT_EPOCH["kit_fingerprint"]
    outer = msgpack.unpackb(sealed)
    envelope = msgpack.unpackb(outer["envelope"])
    assert envelope == {"v": 1, "practice": practice.bytes, "from": sender.bytes,
                        "epoch": KIT_EPOCH["epoch"], "kit": kit.public().box_key,
                        "box": envelope["box"]}
    assert outer["envelope"] == canonical_pack(envelope)
    nacl.signing.VerifyKey(sender_keys.public(sender).verify_key).verify(
        b"chartsync/kit-epoch/v1\0" + outer["envelope"], outer["sig"])
    plain = nacl.public.SealedBox(kit.box_key).decrypt(envelope["box"])
    assert plain == canonical_pack({"practice": practice.bytes, "epoch": KIT_EPOCH["epoch"],
                                    "key": bytes.fromhex(KIT_EPOCH["key"])})
