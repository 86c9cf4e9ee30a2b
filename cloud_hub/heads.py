"""Per-record heads and concurrent-edit counting from plaintext headers only.

For each change of a batch the header names an opaque record token and the
dots the change replaces.  The hub keeps, per (practice, key epoch, token), the
set of dots no change has replaced yet — the heads.  A change whose replaced
dots do not cover the current heads was written without seeing some other
edit: a concurrent edit, counted for the writing site so operators see where
conflicts come from.  The hub cannot tell what was edited; only that edits crossed.

Heads are stored as packed bytes: per dot the 16-byte site id and the sequence
number as 8 big-endian bytes, sorted.  Pure functions; the stores call them
inside the push transaction.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from sync_protocol.errors import MalformedInput
from sync_protocol.models import ChangeMeta

DOT_BYTES: Final = 24
PackedDot = bytes


def pack_dot(site: UUID, seq: int) -> PackedDot:
    return site.bytes + seq.to_bytes(8, "big")


def pack_heads(dots: Iterable[PackedDot]) -> bytes:
    """Canonical packed form of a set of dots."""
    return b"".join(sorted(set(dots)))


def unpack_heads(raw: bytes) -> frozenset[PackedDot]:
    """Inverse of `pack_heads`; raises `MalformedInput` on a torn value."""
    if len(raw) % DOT_BYTES:
        raise MalformedInput(f"stored heads of {len(raw)} bytes are not whole dots")
    return frozenset(raw[i:i + DOT_BYTES] for i in range(0, len(raw), DOT_BYTES))


@dataclass(frozen=True, slots=True)
class HeadsUpdate:
    """New heads per token (packed) and how many of the batch's changes were concurrent."""

    heads: dict[bytes, bytes]
    concurrent_edits: int
    #: The concurrent edits by token (only tokens with some).
    concurrent_by_token: dict[bytes, int]


def advance_heads(current: Mapping[bytes, bytes], site_id: UUID, seq_from: int,
                  metas: Sequence[ChangeMeta], *,
                  only: Container[bytes] | None = None) -> HeadsUpdate:
    """Apply a batch's change metadata to the stored heads of its tokens.

    `current` holds the packed heads of (some of) the batch's tokens; a token
    absent from it has none yet.  Changes apply in order, so one batch editing
    a record twice is not concurrent with itself.  With `only`, changes of
    other tokens are skipped (their heads and concurrency are not computed).
    """
    # Hot path of every push (500 changes per batch): a new record costs one dict
    # lookup and one bytes join; UUID.bytes (computed on each access) once per site.
    site_bytes: dict[UUID, bytes] = {}
    own_site = site_id.bytes
    state: dict[bytes, bytes] = {}
    by_token: dict[bytes, int] = {}
    for i, (token, replaces) in enumerate(metas):
        if only is not None and token not in only:
            continue
        own = own_site + (seq_from + i).to_bytes(8, "big")
        raw = state.get(token)
        if raw is None:
            raw = current.get(token)
        if not raw:
            state[token] = own
            continue
        replaced = set()
        for dot in replaces:
            sb = site_bytes.get(dot.site)
            if sb is None:
                sb = site_bytes[dot.site] = dot.site.bytes
            replaced.add(sb + dot.seq.to_bytes(8, "big"))
        kept = unpack_heads(raw) - replaced
        if kept:
            by_token[token] = by_token.get(token, 0) + 1
        state[token] = pack_heads(kept | {own})
    return HeadsUpdate(state, sum(by_token.values()), by_token)
