"""Framing of sealed batches: layout, compression, padding and size limits.

Layout of a sealed batch (all integers big-endian):

    magic "CSB1" (4) | header length u32 (4) | header (canonical msgpack)
    | nonce (24) | ciphertext (header.body_bytes) | Ed25519 signature (64)

The change list is msgpack, compressed with zstd, padded to a size bucket (so
sizes leak little), then encrypted.  Every size is checked before anything is
expanded: a decompression bomb is refused, not inflated.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

import zstandard

from sync_protocol.errors import MalformedInput, TooLarge

MAGIC: Final = b"CSB1"
NONCE_BYTES: Final = 24
SIGNATURE_BYTES: Final = 64
AEAD_TAG_BYTES: Final = 16
_LEN_BYTES: Final = 4
FIXED_OVERHEAD: Final = len(MAGIC) + _LEN_BYTES + NONCE_BYTES + SIGNATURE_BYTES

#: Padded plaintext sizes: 1 KiB * 4^k up to 1 MiB, then whole MiB.
BUCKETS: Final = (1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20)
_MIB: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits a reader enforces before it decrypts or expands anything."""

    max_sealed_bytes: int = 16 * _MIB
    max_header_bytes: int = 4 * _MIB
    max_plain_bytes: int = 64 * _MIB
    max_changes: int = 10_000


DEFAULT_LIMITS: Final = Limits()


def bucket_size(n: int) -> int:
    """The padded size for `n` bytes of payload."""
    for size in BUCKETS:
        if n <= size:
            return size
    return -(-n // _MIB) * _MIB


def pad(payload: bytes) -> bytes:
    """Length-prefix `payload` and zero-fill it up to its bucket."""
    framed_len = _LEN_BYTES + len(payload)
    return (len(payload).to_bytes(_LEN_BYTES, "big") + payload
            + bytes(bucket_size(framed_len) - framed_len))


def unpad(padded: bytes) -> bytes:
    """Inverse of `pad`; raises `MalformedInput` on a bad length prefix."""
    if len(padded) < _LEN_BYTES:
        raise MalformedInput("padded payload shorter than its length prefix")
    n = int.from_bytes(padded[:_LEN_BYTES], "big")
    if n > len(padded) - _LEN_BYTES:
        raise MalformedInput("padded payload claims more bytes than it holds")
    return padded[_LEN_BYTES:_LEN_BYTES + n]


#: One compressor per thread: a `ZstdCompressor` must not be used by two threads at once
#: (python-zstandard's rule; one shared instance crashed the process with a segmentation
#: fault when an edge exported a snapshot on a worker thread while another thread sealed).
_COMPRESSORS = threading.local()


def compress(data: bytes) -> bytes:
    """zstd level 3, with the content size in the frame header.  Safe from any thread."""
    compressor: zstandard.ZstdCompressor | None = getattr(_COMPRESSORS, "zstd", None)
    if compressor is None:
        compressor = _COMPRESSORS.zstd = zstandard.ZstdCompressor(level=3)
    return compressor.compress(data)


def decompress(data: bytes, *, max_bytes: int, what: str) -> bytes:
    """Expand one zstd frame of at most `max_bytes`; raises `TooLarge`/`MalformedInput`.

    The declared size is checked before expanding, and the expansion itself is
    bounded, so a frame that lies about its size cannot inflate past the limit.
    """
    try:
        declared = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise MalformedInput(f"{what}: not a zstd frame") from exc
    if declared > max_bytes:
        raise TooLarge(f"{what} would expand to {declared} bytes, limit {max_bytes}",
                       hint="send smaller batches")
    try:
        if declared >= 0:
            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=max_bytes)
        else:
            with zstandard.ZstdDecompressor().stream_reader(data) as reader:
                out = reader.read(max_bytes + 1)
    except zstandard.ZstdError as exc:
        raise MalformedInput(f"{what}: corrupt zstd data") from exc
    if len(out) > max_bytes:
        raise TooLarge(f"{what} expands past {max_bytes} bytes", hint="send smaller batches")
    return out


@dataclass(frozen=True, slots=True)
class SealedParts:
    """The byte ranges of a sealed batch, not yet verified."""

    header: bytes
    nonce: bytes
    ciphertext: bytes
    signature: bytes


def join_sealed(parts: SealedParts) -> bytes:
    return b"".join((MAGIC, len(parts.header).to_bytes(_LEN_BYTES, "big"), parts.header,
                     parts.nonce, parts.ciphertext, parts.signature))


def split_sealed(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> SealedParts:
    """Cut a sealed batch into its parts; raises `TooLarge`/`MalformedInput` only."""
    if len(raw) > limits.max_sealed_bytes:
        raise TooLarge(f"sealed batch of {len(raw)} bytes exceeds {limits.max_sealed_bytes}",
                       hint="send fewer changes per batch")
    if len(raw) < FIXED_OVERHEAD or raw[:4] != MAGIC:
        raise MalformedInput("not a chartsync sealed batch (bad magic or too short)")
    header_len = int.from_bytes(raw[4:8], "big")
    if header_len > limits.max_header_bytes:
        raise TooLarge(f"batch header of {header_len} bytes exceeds {limits.max_header_bytes}")
    body_start = 8 + header_len + NONCE_BYTES
    if body_start + SIGNATURE_BYTES > len(raw):
        raise MalformedInput("sealed batch is shorter than its header length says")
    return SealedParts(header=raw[8:8 + header_len], nonce=raw[8 + header_len:body_start],
                       ciphertext=raw[body_start:-SIGNATURE_BYTES],
                       signature=raw[-SIGNATURE_BYTES:])
