"""Encrypted backup files (sync_protocol/backup_file.py): either slot opens, nothing else does.

Real crypto throughout; the passphrase slot uses Argon2id's minimum cost so the
every-byte sweeps stay fast (the cost is read from the header, as in production).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from uuid import UUID

import msgpack
import nacl.bindings as sodium
import nacl.public
import nacl.pwhash
import pytest

from sync_protocol.backup_file import (
    PRELUDE_BYTES,
    BackupAbout,
    BackupHeader,
    BackupOpener,
    BackupSealer,
    KitSlot,
    PassphraseSlot,
    header_length,
    parse_header,
    unlock_with_kit,
    unlock_with_passphrase,
)
from sync_protocol.canonical import canonical_pack
from sync_protocol.errors import (
    MalformedInput,
    ProtocolError,
    SealedKeyUnreadable,
    TamperedBatch,
    UnsupportedVersion,
    WrongPassphrase,
)
from sync_protocol.kit_keys import KitKeyPair

PASSPHRASE = "a backup passphrase 2026!"
KIT = KitKeyPair.from_seed(bytes(range(32)))
OTHER_KIT = KitKeyPair.from_seed(bytes(range(1, 33)))
ABOUT = BackupAbout(practice_id=UUID("01936d2e-0000-7000-8000-0000000000aa"),
                    site_id=UUID("01936d2e-0000-7000-8000-0000000000b1"),
                    created_ms=1_764_700_000_000, schema_version=5)


def fast(passphrase: str = PASSPHRASE) -> PassphraseSlot:
    return PassphraseSlot(passphrase, opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
                          memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN)


def seal(data: bytes, *, slots: list[PassphraseSlot | KitSlot] | None = None,
         chunk_bytes: int = 64, piece: int = 100) -> bytes:
    sealer = BackupSealer(ABOUT, slots or [fast(), KitSlot(KIT.public())],
                          chunk_bytes=chunk_bytes)
    out = sealer.begin()
    for i in range(0, len(data), piece):
        out += sealer.add(data[i:i + piece])
    return out + sealer.finish()


def header_of(blob: bytes) -> BackupHeader:
    return parse_header(blob[:PRELUDE_BYTES + header_length(blob[:PRELUDE_BYTES])])


def open_all(blob: bytes, file_key: bytes | None = None, piece: int = 37) -> bytes:
    header = header_of(blob)
    opener = BackupOpener(header, file_key or unlock_with_kit(header, KIT))
    plain = b""
    for i in range(header.size, len(blob), piece):
        plain += opener.feed(blob[i:i + piece])
    opener.finish()
    return plain


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 1000])
def test_either_slot_opens_every_byte_in_any_split(size: int) -> None:
    data = os.urandom(size)
    blob = seal(data)
    header = header_of(blob)
    assert header.about == ABOUT and header.slot_kinds == ("passphrase", "kit")
    assert header.kit_fingerprints == (KIT.public().fingerprint,)
    by_passphrase = unlock_with_passphrase(header, PASSPHRASE)
    assert by_passphrase == unlock_with_kit(header, KIT)
    for piece in (1, 37, 1 << 20):
        assert open_all(blob, by_passphrase, piece) == data


def test_the_database_bytes_are_not_in_the_file() -> None:
    data = b"Yamada Taro 1980-04-01 " * 40
    assert b"Yamada" not in seal(data)


def test_a_wrong_passphrase_or_another_kit_does_not_open_it() -> None:
    header = header_of(seal(b"charts"))
    with pytest.raises(WrongPassphrase, match=str(ABOUT.site_id)):
        unlock_with_passphrase(header, PASSPHRASE + "x")
    with pytest.raises(SealedKeyUnreadable, match=KIT.public().fingerprint):
        unlock_with_kit(header, OTHER_KIT)


def test_a_missing_slot_names_the_one_that_exists() -> None:
    kit_only = header_of(seal(b"charts", slots=[KitSlot(KIT.public())]))
    with pytest.raises(SealedKeyUnreadable) as no_passphrase:
        unlock_with_passphrase(kit_only, PASSPHRASE)
    assert "--recovery-kit" in no_passphrase.value.hint
    passphrase_only = header_of(seal(b"charts", slots=[fast()]))
    with pytest.raises(SealedKeyUnreadable) as no_kit:
        unlock_with_kit(passphrase_only, KIT)
    assert "--backup-passphrase-file" in no_kit.value.hint


def test_no_slot_or_a_short_passphrase_is_refused_when_writing() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        BackupSealer(ABOUT, [])
    with pytest.raises(ValueError, match="13"):
        BackupSealer(ABOUT, [fast("too short")])


def test_a_backup_cut_anywhere_is_refused() -> None:
    blob = seal(os.urandom(300))
    header = header_of(blob)
    key = unlock_with_kit(header, KIT)
    for end in range(header.size, len(blob)):
        with pytest.raises(TamperedBatch):
            open_all(blob[:end], key)


def test_every_flipped_byte_is_refused() -> None:
    blob = seal(os.urandom(150))
    for i in range(len(blob)):
        altered = blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1:]
        with pytest.raises(ProtocolError):
            header = header_of(altered)
            open_all(altered, unlock_with_passphrase(header, PASSPHRASE))


def test_bytes_after_the_last_chunk_are_refused() -> None:
    with pytest.raises(MalformedInput, match="after the last chunk"):
        open_all(seal(b"charts") + b"\0")


def test_not_a_backup_and_a_newer_format_are_named() -> None:
    with pytest.raises(MalformedInput, match="bad magic"):
        header_length(b"SQLite format 3\0"[:PRELUDE_BYTES])
    blob = seal(b"charts")
    raw = header_of(blob).raw
    newer = raw.replace(b"\xa1v\x01", b"\xa1v\x02")
    assert newer != raw
    with pytest.raises(UnsupportedVersion, match="format 2"):
        parse_header(blob[:PRELUDE_BYTES] + newer + header_of(blob).stream_header)


# --- golden vector (tests/vectors/backup_file_v1.json) -------------------------------------

VECTOR = json.loads((Path(__file__).parent.parent / "vectors" / "backup_file_v1.json")
                    .read_text())


def test_the_vector_opens_with_its_passphrase_and_its_kit() -> None:
    sealed = bytes.fromhex(VECTOR["sealed"])
    header = header_of(sealed)
    assert (str(header.about.practice_id), str(header.about.site_id), header.about.created_ms,
            header.about.schema_version, header.chunk_bytes) == (
        VECTOR["practice_id"], VECTOR["site_id"], VECTOR["created_ms"],
        VECTOR["schema_version"], VECTOR["chunk_bytes"])
    kit = KitKeyPair.from_seed(bytes.fromhex(VECTOR["kit_seed"]))
    assert header.kit_fingerprints == (VECTOR["kit_fingerprint"],)
    key = unlock_with_passphrase(header, VECTOR["passphrase"])
    assert key.hex() == VECTOR["file_key"] == unlock_with_kit(header, kit).hex()
    for piece in (1, 7, 1 << 20):
        opener = BackupOpener(header, key)
        plain = b"".join(opener.feed(sealed[i:i + piece])
                         for i in range(header.size, len(sealed), piece))
        opener.finish()
        assert plain.hex() == VECTOR["plain"]


def test_the_vector_rebuilds_byte_for_byte_from_its_random_parts() -> None:
    # An independent writer of the format in backup_file.py's docstring and PROTOCOL.md:
    # only the kit slot's sealed box and the secretstream header come from the vector.
    sealed = bytes.fromhex(VECTOR["sealed"])
    n = int.from_bytes(sealed[4:8], "big")
    stored = msgpack.unpackb(sealed[8:8 + n], raw=False)
    stream_header = sealed[8 + n:8 + n + 24]
    file_key = bytes.fromhex(VECTOR["file_key"])
    kit = KitKeyPair.from_seed(bytes.fromhex(VECTOR["kit_seed"]))
    about = {"v": 1, "practice": UUID(VECTOR["practice_id"]).bytes,
             "site": UUID(VECTOR["site_id"]).bytes, "created_ms": VECTOR["created_ms"],
             "schema": VECTOR["schema_version"]}
    slot_key = nacl.pwhash.argon2id.kdf(32, VECTOR["passphrase"].encode(),
                                        bytes.fromhex(VECTOR["salt"]),
                                        opslimit=VECTOR["opslimit"], memlimit=VECTOR["memlimit"])
    passphrase_box = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        file_key, b"chartsync/backup-slot/v1\0" + canonical_pack(about),
        bytes.fromhex(VECTOR["nonce"]), slot_key)
    kit_box = stored["slots"][1]["box"]
    assert nacl.public.SealedBox(kit.box_key).decrypt(kit_box) == file_key
    header = canonical_pack({**about, "chunk": VECTOR["chunk_bytes"], "slots": [
        {"kind": "passphrase", "kdf": "argon2id", "ops": VECTOR["opslimit"],
         "mem": VECTOR["memlimit"], "salt": bytes.fromhex(VECTOR["salt"]),
         "nonce": bytes.fromhex(VECTOR["nonce"]), "box": passphrase_box},
        {"kind": "kit", "fp": VECTOR["kit_fingerprint"], "box_key": kit.public().box_key,
         "box": kit_box}]})
    stream_key = hashlib.blake2b(b"CSB1" + header, digest_size=32, key=file_key,
                                 person=b"cs-backup-enc".ljust(16, b"\0")).digest()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, stream_key)
    plain, size = bytes.fromhex(VECTOR["plain"]), VECTOR["chunk_bytes"]
    chunks = [plain[i:i + size] for i in range(0, len(plain), size)]
    assert len(chunks) > 2, "the vector should span several chunks"
    frames = b""
    for i, chunk in enumerate(chunks):
        tag = (sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL if i == len(chunks) - 1
               else sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        cipher = sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, None, tag)
        frames += len(cipher).to_bytes(4, "big") + cipher
    rebuilt = b"CSB1" + len(header).to_bytes(4, "big") + header + stream_header + frames
    assert rebuilt.hex() == VECTOR["sealed"]


def test_every_byte_of_the_vector_is_checked() -> None:
    sealed = bytes.fromhex(VECTOR["sealed"])
    for i in range(len(sealed)):
        altered = sealed[:i] + bytes([sealed[i] ^ 0x01]) + sealed[i + 1:]
        with pytest.raises(ProtocolError):
            header = header_of(altered)
            open_all(altered, unlock_with_passphrase(header, VECTOR["passphrase"]))
