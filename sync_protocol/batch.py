"""Seal and open batches of changes.

    sealed = seal_batch(...)                          # bytes out, nothing touched
    sealed_batch = read_sealed(sealed)                # header only: what the hub does
    header, changes = open_batch(sealed, keyring, directory)   # what a site does

Sealing: msgpack the change list → zstd → pad to a bucket → XChaCha20-Poly1305
with the practice key of the current epoch and the canonical header as
associated data → Ed25519 signature over (domain, header, nonce, BLAKE2b of the
ciphertext).  The batch hash (BLAKE2b-256 of the sealed bytes) is what the
next batch of the same site names as `prev_hash`, so a site's batches form a
chain that nobody can reorder, alter or cut from the middle unseen.

Opening checks, in order, and raises only `ProtocolError` subclasses: sizes,
layout, protocol version, signature (against the origin's registered key), key
epoch and key id, authenticated decryption, bounded decompression, change
validation, and that the content matches every claim of the header.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final
from uuid import UUID

import nacl.bindings
import nacl.exceptions
import nacl.utils

from sync_protocol.canonical import pack_plain, unpack
from sync_protocol.errors import (
    ChainBroken,
    MalformedInput,
    TamperedBatch,
    TooLarge,
    UpgradeRequired,
    WrongPracticeKey,
)
from sync_protocol.framing import (
    DEFAULT_LIMITS,
    NONCE_BYTES,
    Limits,
    SealedParts,
    compress,
    decompress,
    join_sealed,
    pad,
    split_sealed,
    unpad,
)
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair, record_token
from sync_protocol.models import (
    GENESIS_HASH,
    HASH_BYTES,
    BatchHeader,
    Change,
    ChangeMeta,
    header_from_wire,
)
from sync_protocol.version import CAPABILITIES, PROTOCOL_VERSION, check_compatible
from sync_protocol.wire import decode_changes, encode_changes

_SIGN_DOMAIN: Final = b"chartsync/batch/v1\0"
#: Content schema (the register mapping of FHIR resources) this build writes and reads.
SCHEMA_VERSION: Final = 1
_encrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
_decrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASH_BYTES).digest()


def batch_hash(sealed: bytes) -> bytes:
    """BLAKE2b-256 of the sealed bytes: the link the next batch names as `prev_hash`."""
    return _digest(sealed)


def signed_message(header_bytes: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """The bytes a batch's Ed25519 signature covers: domain, header, nonce, ciphertext digest."""
    return b"".join((_SIGN_DOMAIN, len(header_bytes).to_bytes(4, "big"), header_bytes, nonce,
                     _digest(ciphertext)))


@dataclass(frozen=True)
class SealedBatch:
    """A parsed, not yet verified, sealed batch.  The hub works with this alone."""

    header: BatchHeader
    parts: SealedParts
    raw: bytes

    @cached_property
    def hash(self) -> bytes:
        return batch_hash(self.raw)

    @property
    def label(self) -> str:
        """Ids for messages and logs: never content."""
        h = self.header
        return f"batch {h.batch_id} (site {h.site_id}, seq {h.seq_from}-{h.seq_to})"

    def verify_signature(self, directory: SiteDirectory) -> None:
        """Raise `UnknownSite`/`BadSignature` unless the origin site signed these bytes."""
        site = directory.get(self.header.site_id)
        site.verify(signed_message(self.parts.header, self.parts.nonce, self.parts.ciphertext),
                    self.parts.signature, what=self.label)


def seal_batch(
    *,
    practice_id: UUID,
    site_id: UUID,
    site_keys: SiteKeyPair,
    key: PracticeKey,
    changes: Sequence[Change],
    prev_hash: bytes,
    batch_id: UUID,
    nonce: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Return a sealed batch of `changes` (consecutive seqs of `site_id`).

    Raises `ValueError` for a programming error (empty, foreign or gapped
    changes) and `TooLarge` if the result would exceed `limits`.
    """
    if not changes:
        raise ValueError("a batch holds at least one change")
    if len(changes) > limits.max_changes:
        raise TooLarge(f"{len(changes)} changes exceed the limit of {limits.max_changes}")
    seq_from = changes[0].seq
    for i, change in enumerate(changes):
        if change.origin != site_id or change.seq != seq_from + i:
            raise ValueError("a batch holds consecutive changes of its own site only")
    plain = pack_plain(encode_changes(changes))
    if len(plain) > limits.max_plain_bytes:
        raise TooLarge(f"batch content of {len(plain)} bytes exceeds {limits.max_plain_bytes}",
                       hint="send fewer changes per batch")
    padded = pad(compress(plain))
    header = BatchHeader(
        protocol=PROTOCOL_VERSION, practice_id=practice_id, site_id=site_id, batch_id=batch_id,
        seq_from=seq_from, seq_to=changes[-1].seq, prev_hash=prev_hash, key_epoch=key.epoch,
        key_id=key.key_id, max_hlc=max(c.hlc for c in changes),
        body_bytes=len(padded) + 16,
        changes=tuple(ChangeMeta(record_token(key, c.resource_type, c.resource_id),
                                 c.all_replaced) for c in changes),
        capabilities=tuple(sorted(CAPABILITIES)), schema_version=SCHEMA_VERSION,
    )
    header_bytes = pack_plain(header.to_wire())
    nonce = nonce if nonce is not None else nacl.utils.random(NONCE_BYTES)
    ciphertext = _encrypt(padded, header_bytes, nonce, key.encryption_key)
    signature = site_keys.sign(signed_message(header_bytes, nonce, ciphertext))
    sealed = join_sealed(SealedParts(header_bytes, nonce, ciphertext, signature))
    if len(sealed) > limits.max_sealed_bytes:
        raise TooLarge(f"sealed batch of {len(sealed)} bytes exceeds {limits.max_sealed_bytes}",
                       hint="send fewer changes per batch")
    return sealed


def read_sealed(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> SealedBatch:
    """Parse a sealed batch's layout and header without any key.

    Raises `TooLarge`, `MalformedInput`, `UnsupportedVersion`, `UpgradeRequired`.
    """
    parts = split_sealed(raw, limits)
    header = header_from_wire(unpack(parts.header, what="batch header",
                                     max_len=limits.max_header_bytes))
    check_compatible(header.protocol, what=f"batch {header.batch_id}")
    if header.change_count > limits.max_changes:
        raise TooLarge(f"batch {header.batch_id} holds {header.change_count} changes, "
                       f"limit {limits.max_changes}", hint="send fewer changes per batch")
    if len(parts.ciphertext) != header.body_bytes:
        raise MalformedInput(f"batch {header.batch_id}: body is {len(parts.ciphertext)} bytes, "
                             f"header says {header.body_bytes}")
    return SealedBatch(header, parts, raw)


def check_follows(header: BatchHeader, *, next_seq: int, prev_hash: bytes) -> None:
    """Raise `ChainBroken` unless `header` continues a chain at (`next_seq`, `prev_hash`)."""
    if header.seq_from != next_seq or header.prev_hash != prev_hash:
        what = "a gap or a replay" if header.seq_from != next_seq else "a fork"
        raise ChainBroken(
            f"batch {header.batch_id} of site {header.site_id} starts at seq "
            f"{header.seq_from}, expected {next_seq} ({what})",
            hint="resend from the expected sequence number with the expected previous hash",
        )


def open_batch(
    raw: bytes | SealedBatch,
    keyring: Keyring,
    directory: SiteDirectory,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[BatchHeader, list[Change]]:
    """Verify, decrypt and validate a sealed batch; return its header and changes.

    Raises only `ProtocolError` subclasses; see the module docstring for the order.
    """
    sealed = raw if isinstance(raw, SealedBatch) else read_sealed(raw, limits)
    header = sealed.header
    sealed.verify_signature(directory)
    if header.practice_id != keyring.practice_id:
        raise WrongPracticeKey(f"{sealed.label} belongs to practice {header.practice_id}, "
                               f"this site to {keyring.practice_id}",
                               hint="check that the hub serves this site's practice")
    if header.schema_version > SCHEMA_VERSION:
        raise UpgradeRequired(f"{sealed.label} uses content schema {header.schema_version}, "
                              f"this build reads up to {SCHEMA_VERSION}",
                              hint="upgrade chartsync on this site; the batch is held")
    key = keyring.get(header.key_epoch, batch=sealed.label)
    if key.key_id != header.key_id:
        raise WrongPracticeKey(f"{sealed.label} was sealed with another key for epoch "
                               f"{header.key_epoch} than the one this site holds",
                               hint="this site's keyring does not match the practice's; "
                               "re-enroll it or restore its keys from the recovery kit")
    try:
        padded = _decrypt(sealed.parts.ciphertext, sealed.parts.header, sealed.parts.nonce,
                          key.encryption_key)
    except nacl.exceptions.CryptoError as exc:
        raise TamperedBatch(f"{sealed.label} failed authenticated decryption",
                            hint="re-fetch the batch; if it repeats, the writer is faulty") from exc
    plain = decompress(unpad(padded), max_bytes=limits.max_plain_bytes, what=sealed.label)
    content = unpack(plain, what=f"{sealed.label} content", max_len=limits.max_plain_bytes)
    changes = decode_changes(content, origin=header.site_id, seq_from=header.seq_from)
    _check_matches_header(header, changes, key, sealed.label)
    return header, changes


def _check_matches_header(header: BatchHeader, changes: list[Change], key: PracticeKey,
                          label: str) -> None:
    """The hub acts on the header; make sure it tells the truth about the content."""
    def lie(what: str) -> TamperedBatch:
        return TamperedBatch(f"{label}: header does not match content ({what})",
                             hint="the writing site is faulty; its batch is refused")

    if len(changes) != header.change_count:
        raise lie("change count")
    max_hlc = 0
    for i, (change, meta) in enumerate(zip(changes, header.changes, strict=True)):
        if record_token(key, change.resource_type, change.resource_id) != meta.token:
            raise lie(f"record token of change {i}")
        if change.all_replaced != meta.replaces:
            raise lie(f"replaced dots of change {i}")
        max_hlc = max(max_hlc, change.hlc)
    if max_hlc != header.max_hlc:
        raise lie("max HLC")


__all__ = [
    "GENESIS_HASH", "SCHEMA_VERSION", "SealedBatch", "batch_hash", "check_follows",
    "open_batch", "read_sealed", "seal_batch",
]
