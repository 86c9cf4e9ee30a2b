"""Sealed snapshots: a site's whole state as a stream of records, encrypted in chunks.

A new or replaced site bootstraps from the latest snapshot plus the log tail
after it, so bootstrap time does not grow with the practice's age.  Snapshots
can be large, so they are written and read as a stream (sans-I/O: bytes in,
bytes or records out; the caller owns files and sockets):

    "CSS1" | u32 header_len | header (canonical msgpack) | secretstream header (24)
    | chunk* | signature (64)
    chunk = u32 len | XChaCha20-Poly1305 secretstream message of zstd(msgpack records)

The last chunk carries the secretstream FINAL tag, so truncation, reordering
or splicing of chunks is detected.  The signature (the writer site's Ed25519
key) covers the domain, the header, the stream header and the BLAKE2b-256 of
every chunk frame.  Records are available while reading, before the signature
is checked at `finish()`: a reader stages them and commits only after that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Annotated, Any, Final
from uuid import UUID

import msgpack
import nacl.bindings as sodium
import nacl.exceptions
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_protocol.canonical import canonical_pack, unpack
from sync_protocol.errors import MalformedInput, TamperedBatch, TooLarge, WrongPracticeKey
from sync_protocol.framing import compress, decompress
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair
from sync_protocol.models import KEY_ID_BYTES
from sync_protocol.version import PROTOCOL_VERSION, check_compatible

MAGIC: Final = b"CSS1"
_DOMAIN: Final = b"chartsync/snapshot/v1\0"
_SS_HEADER: Final = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_SS_ABYTES: Final = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_TAG_MESSAGE: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
DEFAULT_CHUNK_BYTES: Final = 1 << 20
MAX_HEADER_BYTES: Final = 64 * 1024
#: Plain bytes one chunk may expand to (a writer's chunk is ~1 MiB of records).
MAX_CHUNK_PLAIN_BYTES: Final = 64 << 20


class SnapshotHeader(BaseModel):
    """What a snapshot covers: everything up to and including `hub_seq`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: tuple[int, int]
    practice_id: UUID
    site_id: UUID
    snapshot_id: UUID
    hub_seq: Annotated[int, Field(ge=0)]
    key_epoch: Annotated[int, Field(ge=1)]
    key_id: Annotated[bytes, Field(min_length=KEY_ID_BYTES, max_length=KEY_ID_BYTES)]
    created_hlc: Annotated[int, Field(ge=0, lt=1 << 64)]
    schema_version: Annotated[int, Field(ge=1)] = 1
    capabilities: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {"v": list(self.protocol), "practice": self.practice_id.bytes,
                "site": self.site_id.bytes, "snapshot": self.snapshot_id.bytes,
                "hub_seq": self.hub_seq, "epoch": self.key_epoch, "kid": self.key_id,
                "created_hlc": self.created_hlc, "schema": self.schema_version,
                "caps": list(self.capabilities)}

    @classmethod
    def from_wire(cls, raw: Any) -> SnapshotHeader:
        try:
            return cls.model_validate({
                "protocol": tuple(raw["v"]), "practice_id": raw["practice"],
                "site_id": raw["site"], "snapshot_id": raw["snapshot"],
                "hub_seq": raw["hub_seq"], "key_epoch": raw["epoch"], "key_id": raw["kid"],
                "created_hlc": raw["created_hlc"], "schema_version": raw["schema"],
                "capabilities": tuple(raw["caps"])})
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            raise MalformedInput(f"invalid snapshot header: {type(exc).__name__}") from exc


def signed_message(header: bytes, stream_header: bytes, frames_digest: bytes) -> bytes:
    return b"".join((_DOMAIN, len(header).to_bytes(4, "big"), header, stream_header,
                     frames_digest))


class SnapshotSealer:
    """Write side.  `begin()`, then `add(record)` for each record, then `finish()`.

    Every call returns the bytes to append to the snapshot (possibly empty).
    Records are any msgpack-able values (the edge defines their shapes).
    """

    def __init__(self, *, practice_id: UUID, site_id: UUID, snapshot_id: UUID, hub_seq: int,
                 created_hlc: int, key: PracticeKey, site_keys: SiteKeyPair,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES, schema_version: int = 1) -> None:
        self.header = SnapshotHeader(
            protocol=PROTOCOL_VERSION, practice_id=practice_id, site_id=site_id,
            snapshot_id=snapshot_id, hub_seq=hub_seq, key_epoch=key.epoch, key_id=key.key_id,
            created_hlc=created_hlc, schema_version=schema_version)
        self._key = key
        self._site_keys = site_keys
        self._chunk_bytes = chunk_bytes
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._frames = hashlib.blake2b(digest_size=32)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._header_bytes = b""
        self._stream_header = b""
        self._packer = msgpack.Packer(use_bin_type=True)
        self.records = 0

    def begin(self) -> bytes:
        self._header_bytes = canonical_pack(self.header.to_wire())
        self._stream_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, self._key.snapshot_key)
        return (MAGIC + len(self._header_bytes).to_bytes(4, "big") + self._header_bytes
                + self._stream_header)

    def add(self, record: Any) -> bytes:
        packed = self._packer.pack(record)
        self._buffer.append(packed)
        self._buffered += len(packed)
        self.records += 1
        if self._buffered >= self._chunk_bytes:
            return self._flush(_TAG_MESSAGE)
        return b""

    def finish(self) -> bytes:
        last = self._flush(_TAG_FINAL)
        signature = self._site_keys.sign(signed_message(
            self._header_bytes, self._stream_header, self._frames.digest()))
        return last + signature

    def _flush(self, tag: int) -> bytes:
        plain = compress(b"".join(self._buffer))
        self._buffer, self._buffered = [], 0
        cipher = sodium.crypto_secretstream_xchacha20poly1305_push(self._state, plain, None, tag)
        frame = len(cipher).to_bytes(4, "big") + cipher
        self._frames.update(frame)
        return frame


class SnapshotOpener:
    """Read side: `feed(bytes)` yields records as chunks complete; `finish()` verifies.

    Raises only `ProtocolError` subclasses.  Until `finish()` returns, the
    records are authenticated as the practice's (AEAD) but not yet as the
    named site's: stage them and commit after `finish()`.
    """

    def __init__(self, keyring: Keyring, directory: SiteDirectory,
                 *, max_chunk_plain_bytes: int = MAX_CHUNK_PLAIN_BYTES) -> None:
        self._keyring = keyring
        self._directory = directory
        self._max_plain = max_chunk_plain_bytes
        self._buf = bytearray()
        self._header_bytes = b""
        self._stream_header = b""
        self.header: SnapshotHeader | None = None
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._frames = hashlib.blake2b(digest_size=32)
        self._final = False
        self._signature = b""
        self.records = 0

    def feed(self, data: bytes) -> Iterator[Any]:
        """Take the next bytes of the snapshot; yield every record they complete."""
        self._buf += data
        if self.header is None and not self._read_header():
            return
        while not self._final and len(self._buf) >= 4:
            n = int.from_bytes(self._buf[:4], "big")
            if n > self._max_plain + _SS_ABYTES + 1024:
                raise TooLarge(f"snapshot chunk of {n} bytes is larger than any writer makes")
            if len(self._buf) < 4 + n:
                return
            frame = bytes(self._buf[:4 + n])
            del self._buf[:4 + n]
            self._frames.update(frame)
            try:
                plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                    self._state, frame[4:], None)
            except nacl.exceptions.CryptoError as exc:
                raise TamperedBatch(self._label("a chunk failed authenticated decryption "
                                                "(altered, reordered or spliced)")) from exc
            self._final = tag == _TAG_FINAL
            yield from self._records(decompress(plain, max_bytes=self._max_plain,
                                                what=self._label("chunk")))
        if self._final and len(self._buf) > 64:
            raise MalformedInput(self._label("bytes after the signature"))

    def finish(self) -> SnapshotHeader:
        """Check that the stream ended properly and the writer site signed it."""
        if self.header is None or not self._final:
            raise TamperedBatch(self._label("ends before its final chunk (truncated)"),
                                hint="download the snapshot again; the transfer resumes")
        if len(self._buf) != 64:
            raise MalformedInput(self._label("has no complete signature"))
        self._directory.get(self.header.site_id).verify(
            signed_message(self._header_bytes, self._stream_header, self._frames.digest()),
            bytes(self._buf), what=self._label("signature"))
        return self.header

    def _label(self, what: str) -> str:
        if self.header is None:
            return f"snapshot: {what}"
        return (f"snapshot {self.header.snapshot_id} (site {self.header.site_id}, "
                f"hub seq {self.header.hub_seq}): {what}")

    def _read_header(self) -> bool:
        if len(self._buf) < 8:
            return False
        if self._buf[:4] != MAGIC:
            raise MalformedInput("not a chartsync snapshot (bad magic)")
        n = int.from_bytes(self._buf[4:8], "big")
        if n > MAX_HEADER_BYTES:
            raise TooLarge(f"snapshot header of {n} bytes exceeds {MAX_HEADER_BYTES}")
        if len(self._buf) < 8 + n + _SS_HEADER:
            return False
        self._header_bytes = bytes(self._buf[8:8 + n])
        header = SnapshotHeader.from_wire(unpack(self._header_bytes, what="snapshot header",
                                                 max_len=MAX_HEADER_BYTES))
        check_compatible(header.protocol, what=f"snapshot {header.snapshot_id}")
        if header.practice_id != self._keyring.practice_id:
            raise WrongPracticeKey(f"snapshot {header.snapshot_id} belongs to practice "
                                   f"{header.practice_id}, this site to "
                                   f"{self._keyring.practice_id}")
        key = self._keyring.get(header.key_epoch, batch=f"snapshot {header.snapshot_id}")
        if key.key_id != header.key_id:
            raise WrongPracticeKey(f"snapshot {header.snapshot_id} was sealed with another key "
                                   f"for epoch {header.key_epoch}")
        self._stream_header = bytes(self._buf[8 + n:8 + n + _SS_HEADER])
        try:
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(
                self._state, self._stream_header, key.snapshot_key)
        except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
            raise TamperedBatch(f"snapshot {header.snapshot_id}: bad stream header") from exc
        del self._buf[:8 + n + _SS_HEADER]
        self.header = header
        return True

    def _records(self, plain: bytes) -> Iterator[Any]:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(plain) + 1,
                                    strict_map_key=True)
        unpacker.feed(plain)
        try:
            for record in unpacker:
                self.records += 1
                yield record
        except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError,
                TypeError, UnicodeDecodeError) as exc:
            raise MalformedInput(self._label("a record is not valid msgpack")) from exc
