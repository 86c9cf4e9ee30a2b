"""Encrypted backup files: a site's database under a random file key, opened by its slots.

A backup is read back by a person, maybe years later, with no hub and no site
left, so the file names what it holds in its header and carries the file key
once per *recipient slot*: a passphrase (Argon2id, the recovery kit's costs and
13-character minimum) and/or the practice's recovery kit (a sealed box to the
kit's X25519 key).  Either opens it.  The database bytes follow as a
secretstream, so a multi-GB database is written and read chunk by chunk and a
cut-off file is detected (sans-I/O: bytes in, bytes out; the edge owns files):

    "CSB1" | u32 header_len | header (canonical msgpack) | secretstream header (24)
    | chunk*
    chunk = u32 len | XChaCha20-Poly1305 secretstream message of up to `chunk` plain bytes

The stream key is BLAKE2b-256 keyed with the file key over the magic and the
header bytes, so a changed header (ids, slots, anything) fails the first chunk.
The last chunk carries the FINAL tag; bytes after it are refused.

    sealer = BackupSealer(about, [PassphraseSlot(passphrase), KitSlot(kit)])
    out.write(sealer.begin()); out.write(sealer.add(db_bytes)); out.write(sealer.finish())

    header = parse_header(prelude + rest)            # what it is, no secret needed
    opener = BackupOpener(header, unlock_with_passphrase(header, passphrase))
    plain = opener.feed(data); ...; opener.finish()  # raises TamperedBatch if cut short
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final
from uuid import UUID

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.utils
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_protocol.canonical import canonical_pack, unpack
from sync_protocol.errors import (
    MalformedInput,
    SealedKeyUnreadable,
    TamperedBatch,
    TooLarge,
    UnsupportedVersion,
    WrongPassphrase,
)
from sync_protocol.kit_keys import KitKeyPair, KitPublicKeys
from sync_protocol.recovery import MEMLIMIT, MIN_PASSPHRASE_CHARS, OPSLIMIT

MAGIC: Final = b"CSB1"
FORMAT: Final = 1
#: The fixed part before the header: magic and the header's length.
PRELUDE_BYTES: Final = 8
MAX_HEADER_BYTES: Final = 64 * 1024
DEFAULT_CHUNK_BYTES: Final = 1 << 20
MAX_CHUNK_BYTES: Final = 64 << 20
FILE_KEY_BYTES: Final = 32
STREAM_HEADER_BYTES: Final = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_ABYTES: Final = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_TAG_MESSAGE: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_SLOT_DOMAIN: Final = b"chartsync/backup-slot/v1\0"
_STREAM_PERSON: Final = b"cs-backup-enc"
_MAX_MEMLIMIT: Final = 4 << 30


class BackupAbout(BaseModel):
    """What a backup holds, readable without any key (printed before asking for one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: None for a site that never joined a practice (no hub).
    practice_id: UUID | None
    site_id: UUID
    created_ms: Annotated[int, Field(ge=0)]
    #: The edge database's schema version (`PRAGMA user_version`).
    schema_version: Annotated[int, Field(ge=1)]

    def to_wire(self) -> dict[str, Any]:
        return {"v": FORMAT, "practice": None if self.practice_id is None
                else self.practice_id.bytes, "site": self.site_id.bytes,
                "created_ms": self.created_ms, "schema": self.schema_version}


@dataclass(frozen=True, slots=True)
class PassphraseSlot:
    """Open with a passphrase (at least 13 characters).  Costs and salt are inputs for tests."""

    passphrase: str
    opslimit: int = OPSLIMIT
    memlimit: int = MEMLIMIT
    salt: bytes | None = None
    nonce: bytes | None = None

    def __repr__(self) -> str:
        return f"PassphraseSlot(opslimit={self.opslimit}, memlimit={self.memlimit})"


@dataclass(frozen=True, slots=True)
class KitSlot:
    """Open with the practice's recovery kit (its X25519 half)."""

    kit: KitPublicKeys


Slot = PassphraseSlot | KitSlot


@dataclass(frozen=True, slots=True)
class BackupHeader:
    """A parsed header: what the file holds, its slots, and the bytes the stream key binds."""

    about: BackupAbout
    chunk_bytes: int
    slots: tuple[dict[str, Any], ...]
    raw: bytes
    stream_header: bytes

    @property
    def slot_kinds(self) -> tuple[str, ...]:
        return tuple(str(s["kind"]) for s in self.slots)

    @property
    def kit_fingerprints(self) -> tuple[str, ...]:
        return tuple(str(s["fp"]) for s in self.slots if s["kind"] == "kit")

    @property
    def size(self) -> int:
        """Bytes from the start of the file to the first chunk."""
        return PRELUDE_BYTES + len(self.raw) + STREAM_HEADER_BYTES


def _about_ad(about: BackupAbout) -> bytes:
    return _SLOT_DOMAIN + canonical_pack(about.to_wire())


def _kdf(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(FILE_KEY_BYTES, passphrase.encode("utf-8"), salt,
                                    opslimit=ops, memlimit=mem)


def _stream_key(file_key: bytes, raw_header: bytes) -> bytes:
    return hashlib.blake2b(MAGIC + raw_header, digest_size=32, key=file_key,
                           person=_STREAM_PERSON.ljust(16, b"\0")).digest()


def _seal_slot(slot: Slot, file_key: bytes, about: BackupAbout) -> dict[str, Any]:
    if isinstance(slot, KitSlot):
        box = nacl.public.SealedBox(nacl.public.PublicKey(slot.kit.box_key)).encrypt(file_key)
        return {"kind": "kit", "fp": slot.kit.fingerprint, "box_key": slot.kit.box_key,
                "box": bytes(box)}
    if len(slot.passphrase) < MIN_PASSPHRASE_CHARS:
        raise ValueError(f"a backup passphrase needs at least {MIN_PASSPHRASE_CHARS} "
                         "characters (mix letters, digits and symbols)")
    salt = slot.salt if slot.salt is not None else nacl.utils.random(
        nacl.pwhash.argon2id.SALTBYTES)
    nonce = slot.nonce if slot.nonce is not None else nacl.utils.random(24)
    key = _kdf(slot.passphrase, salt, slot.opslimit, slot.memlimit)
    box = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(file_key, _about_ad(about),
                                                           nonce, key)
    return {"kind": "passphrase", "kdf": "argon2id", "ops": slot.opslimit,
            "mem": slot.memlimit, "salt": salt, "nonce": nonce, "box": box}


class BackupSealer:
    """Write side: `begin()`, `add(bytes)` as often as needed, then `finish()`.

    Each call returns the bytes to append to the file (possibly empty); at most
    one chunk of plaintext is held.  Raises `ValueError` for no slot or a
    passphrase shorter than 13 characters.
    """

    def __init__(self, about: BackupAbout, slots: Sequence[Slot], *,
                 file_key: bytes | None = None,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        if not slots:
            raise ValueError("a backup needs at least one slot (passphrase or recovery kit)")
        if not 1 <= chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be 1..{MAX_CHUNK_BYTES}")
        file_key = file_key if file_key is not None else nacl.utils.random(FILE_KEY_BYTES)
        self.about = about
        self._chunk_bytes = chunk_bytes
        self._raw = canonical_pack({**about.to_wire(), "chunk": chunk_bytes,
                                    "slots": [_seal_slot(s, file_key, about) for s in slots]})
        self._key = _stream_key(file_key, self._raw)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._buffer = bytearray()
        self.plain_bytes = 0

    def begin(self) -> bytes:
        stream_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, self._key)
        return MAGIC + len(self._raw).to_bytes(4, "big") + self._raw + stream_header

    def add(self, data: bytes) -> bytes:
        self._buffer += data
        self.plain_bytes += len(data)
        frames = []
        while len(self._buffer) > self._chunk_bytes:  # keep one back: it may be the last
            frames.append(self._frame(bytes(self._buffer[:self._chunk_bytes]), _TAG_MESSAGE))
            del self._buffer[:self._chunk_bytes]
        return b"".join(frames)

    def finish(self) -> bytes:
        last = self._frame(bytes(self._buffer), _TAG_FINAL)
        self._buffer.clear()
        return last

    def _frame(self, plain: bytes, tag: int) -> bytes:
        cipher = sodium.crypto_secretstream_xchacha20poly1305_push(self._state, plain, None, tag)
        return len(cipher).to_bytes(4, "big") + cipher


def header_length(prelude: bytes) -> int:
    """From the first `PRELUDE_BYTES` of a file, the bytes still needed for `parse_header`.

    Raises `MalformedInput` (not a chartsync backup) or `TooLarge`.
    """
    if len(prelude) < PRELUDE_BYTES or prelude[:4] != MAGIC:
        raise MalformedInput("not an encrypted chartsync backup (bad magic)",
                             hint="pass a file written by `chartsync edge backup`")
    n = int.from_bytes(prelude[4:8], "big")
    if n > MAX_HEADER_BYTES:
        raise TooLarge(f"backup header of {n} bytes exceeds {MAX_HEADER_BYTES}")
    return n + STREAM_HEADER_BYTES


def parse_header(head: bytes) -> BackupHeader:
    """Parse the file's first `PRELUDE_BYTES + header_length(...)` bytes.

    Raises `MalformedInput`, `TooLarge` or `UnsupportedVersion`; needs no key.
    """
    need = header_length(head[:PRELUDE_BYTES])
    if len(head) != PRELUDE_BYTES + need:
        raise MalformedInput("backup header is cut short", hint="use another copy of the backup")
    raw = head[PRELUDE_BYTES:-STREAM_HEADER_BYTES]
    wire = unpack(raw, what="backup header", max_len=MAX_HEADER_BYTES)
    if not isinstance(wire, dict) or wire.get("v") != FORMAT:
        version = wire.get("v") if isinstance(wire, dict) else None
        raise UnsupportedVersion(f"backup file format {version}; this chartsync reads "
                                 f"format {FORMAT}",
                                 hint="restore it with the chartsync version that wrote it")
    try:
        about = BackupAbout.model_validate({
            "practice_id": None if wire["practice"] is None else UUID(bytes=wire["practice"]),
            "site_id": UUID(bytes=wire["site"]), "created_ms": wire["created_ms"],
            "schema_version": wire["schema"]})
        chunk = int(wire["chunk"])
        slots = tuple(dict(s) for s in wire["slots"])
        if not 1 <= chunk <= MAX_CHUNK_BYTES or not slots or any(
                s["kind"] not in ("passphrase", "kit") for s in slots):
            raise ValueError("chunk size or slots")
    except (ValidationError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedInput(f"invalid backup header: {type(exc).__name__}",
                             hint="use another copy of the backup") from exc
    return BackupHeader(about, chunk, slots, raw, head[-STREAM_HEADER_BYTES:])


def unlock_with_passphrase(header: BackupHeader, passphrase: str) -> bytes:
    """The file key from the passphrase slot.

    Raises `SealedKeyUnreadable` (no passphrase slot), `MalformedInput` (costs
    out of range) or `WrongPassphrase`.
    """
    slots = [s for s in header.slots if s["kind"] == "passphrase"]
    if not slots:
        raise SealedKeyUnreadable(
            f"backup of site {header.about.site_id} has no passphrase slot",
            hint="it opens with the practice's recovery kit: pass --recovery-kit")
    for slot in slots:
        try:
            ops, mem = int(slot["ops"]), int(slot["mem"])
            salt, nonce, box = bytes(slot["salt"]), bytes(slot["nonce"]), bytes(slot["box"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedInput("damaged backup header: passphrase slot") from exc
        if not (nacl.pwhash.argon2id.OPSLIMIT_MIN <= ops <= nacl.pwhash.argon2id.OPSLIMIT_MAX
                and nacl.pwhash.argon2id.MEMLIMIT_MIN <= mem <= _MAX_MEMLIMIT):
            raise MalformedInput("backup asks for KDF costs outside the allowed range")
        try:
            return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                box, _about_ad(header.about), nonce, _kdf(passphrase, salt, ops, mem)))
        except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError):
            continue
    raise WrongPassphrase(f"the passphrase does not open the backup of site "
                          f"{header.about.site_id} (or its header was altered)",
                          hint="check the passphrase file (case, spaces, keyboard layout); "
                          "if it is right, use another copy of the backup")


def unlock_with_kit(header: BackupHeader, kit: KitKeyPair) -> bytes:
    """The file key from the slot sealed to `kit`.

    Raises `SealedKeyUnreadable` (no kit slot, or sealed to another kit).
    """
    public = bytes(kit.box_key.public_key)
    slots = [s for s in header.slots if s["kind"] == "kit"]
    if not slots:
        raise SealedKeyUnreadable(
            f"backup of site {header.about.site_id} was not sealed to a recovery kit",
            hint="open it with its passphrase: pass --backup-passphrase-file")
    for slot in slots:
        try:
            if bytes(slot["box_key"]) != public:
                continue
            return bytes(nacl.public.SealedBox(kit.box_key).decrypt(bytes(slot["box"])))
        except (KeyError, TypeError, ValueError, nacl.exceptions.CryptoError) as exc:
            raise SealedKeyUnreadable(f"backup of site {header.about.site_id}: its recovery "
                                      "kit slot does not open with this kit") from exc
    raise SealedKeyUnreadable(
        f"backup of site {header.about.site_id} was sealed to recovery kit "
        f"{', '.join(header.kit_fingerprints)}, not to {kit.public().fingerprint}",
        hint="use the kit that was current when the backup was made, or the backup's "
        "passphrase (--backup-passphrase-file)")


class BackupOpener:
    """Read side: `feed(bytes)` returns the plaintext the bytes complete; `finish()` checks.

    Give it the bytes after `header.size`.  Raises only `ProtocolError`
    subclasses: `TamperedBatch` for an altered chunk, a wrong file key or a file
    cut short (at `finish()`), `MalformedInput` for bytes after the last chunk.
    """

    def __init__(self, header: BackupHeader, file_key: bytes) -> None:
        self.header = header
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._buf = bytearray()
        self._final = False
        self.plain_bytes = 0
        try:
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(
                self._state, header.stream_header, _stream_key(file_key, header.raw))
        except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
            raise TamperedBatch(self._label("bad stream header")) from exc

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = []
        while not self._final and len(self._buf) >= 4:
            n = int.from_bytes(self._buf[:4], "big")
            if n > self.header.chunk_bytes + _ABYTES:
                raise TamperedBatch(self._label(f"a chunk of {n} bytes is larger than the "
                                                "header allows (altered)"))
            if len(self._buf) < 4 + n:
                break
            try:
                plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                    self._state, bytes(self._buf[4:4 + n]), None)
            except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
                raise TamperedBatch(self._label("a chunk failed authenticated decryption "
                                                "(altered, reordered or spliced)"),
                                    hint="use another copy of the backup") from exc
            del self._buf[:4 + n]
            self._final = tag == _TAG_FINAL
            self.plain_bytes += len(plain)
            out.append(plain)
        if self._final and self._buf:
            raise MalformedInput(self._label("bytes after the last chunk"),
                                 hint="use another copy of the backup")
        return b"".join(out)

    def finish(self) -> None:
        if not self._final:
            raise TamperedBatch(self._label("ends before its last chunk (truncated)"),
                                hint="use another copy of the backup; this one was cut short")

    def _label(self, what: str) -> str:
        return f"backup of site {self.header.about.site_id}: {what}"


__all__ = ["DEFAULT_CHUNK_BYTES", "FORMAT", "MAGIC", "PRELUDE_BYTES", "BackupAbout",
           "BackupHeader", "BackupOpener", "BackupSealer", "KitSlot", "PassphraseSlot", "Slot",
           "header_length", "parse_header", "unlock_with_kit", "unlock_with_passphrase"]
