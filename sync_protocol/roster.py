"""The practice roster: who is a member, as a hash-linked chain signed by members.

Each entry names one change of membership and is signed by a site that is an
approved member at that point (or, when no site is left, by the recovery kit):

    genesis   the first site: itself, its keys, the recovery kit's public keys, the epoch
    approve   a site becomes a member (its keys, after a fingerprint check)
    revoke    a site stops being a member; the practice key moves to `epoch`
    kit       the recovery kit is replaced: later epochs are sealed to the new kit

Every entry carries the hash of the signed entry before it, so the hub that
stores and serves the chain can withhold its end but cannot add, alter,
reorder or drop an entry from the middle.  `fold` verifies a chain and returns
the membership it proves; a site seals keys only to members `fold` proves and
trusts batches only from sites it names.  An entry signed by a site that is not
an approved member at that point (a revoked site, a stranger), with a signature
that does not verify, or that changes nothing is kept in the chain but counts
for nothing (`Roster.ignored`).  An entry that breaks the chain itself (wrong
position or previous hash, another practice, garbage) is refused:
`RosterBroken`.  Sans-I/O: bytes in, values out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Annotated, Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_protocol.canonical import canonical_pack, unpack
from sync_protocol.errors import BadSignature, MalformedInput, RosterBroken
from sync_protocol.keys import SiteDirectory, SiteKeyPair, SitePublicKeys
from sync_protocol.kit_keys import KitKeyPair, KitPublicKeys

_DOMAIN: Final = b"chartsync/roster/v1\0"
_HASH_PERSON: Final = b"cs-roster"
HASH_BYTES: Final = 32
GENESIS_PREV: Final = bytes(HASH_BYTES)
MAX_ENTRY_BYTES: Final = 4 * 1024
#: A practice with more membership changes than this is not a clinic.
MAX_ENTRIES: Final = 10_000

Key32 = Annotated[bytes, Field(min_length=32, max_length=32)]


class EntryKind(StrEnum):
    GENESIS = "genesis"
    APPROVE = "approve"
    REVOKE = "revoke"
    KIT = "kit"


class RosterEntry(BaseModel):
    """One membership change, unsigned.  `signer` None means signed by the recovery kit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = 1
    practice: UUID
    seq: Annotated[int, Field(ge=0)]
    prev: Annotated[bytes, Field(min_length=HASH_BYTES, max_length=HASH_BYTES)]
    kind: EntryKind
    site: UUID | None = None
    verify_key: Key32 | None = None
    box_key: Key32 | None = None
    role: str = "site"
    epoch: Annotated[int, Field(ge=1)]
    kit: KitPublicKeys | None = None
    signer: UUID | None
    at_ms: Annotated[int, Field(ge=0)]

    def to_bytes(self) -> bytes:
        wire: dict[str, object] = {
            "v": self.v, "practice": self.practice.bytes, "seq": self.seq, "prev": self.prev,
            "kind": self.kind.value, "role": self.role, "epoch": self.epoch,
            "signer": None if self.signer is None else self.signer.bytes, "at_ms": self.at_ms}
        if self.site is not None:
            wire["site"] = self.site.bytes
        if self.verify_key is not None and self.box_key is not None:
            wire["keys"] = [self.verify_key, self.box_key]
        if self.kit is not None:
            wire["kit"] = [self.kit.verify_key, self.kit.box_key]
        return canonical_pack(wire)

    @classmethod
    def from_bytes(cls, raw: bytes) -> RosterEntry:
        fields = unpack(raw, what="roster entry", max_len=MAX_ENTRY_BYTES)
        try:
            keys = fields.pop("keys", None)
            kit = fields.pop("kit", None)
            values = {**fields,
                      "practice": UUID(bytes=fields["practice"]),
                      "site": None if fields.get("site") is None else UUID(bytes=fields["site"]),
                      "signer": (None if fields["signer"] is None
                                 else UUID(bytes=fields["signer"]))}
            if keys is not None:
                values["verify_key"], values["box_key"] = keys
            if kit is not None:
                values["kit"] = KitPublicKeys(verify_key=kit[0], box_key=kit[1])
            entry = cls.model_validate(values)
        except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
            raise MalformedInput(f"invalid roster entry: {type(exc).__name__}",
                                 hint="the hub served bytes that are not a roster entry") from exc
        if entry.v != 1:
            raise MalformedInput(f"roster entry format {entry.v} is not known here",
                                 hint="upgrade chartsync on this site")
        if entry.to_bytes() != raw:
            raise MalformedInput(f"roster entry {entry.seq} is not in canonical form")
        return entry

    def site_keys(self) -> SitePublicKeys:
        if self.site is None or self.verify_key is None or self.box_key is None:
            raise MalformedInput(f"roster entry {self.seq} ({self.kind}) names no site keys")
        return SitePublicKeys(site_id=self.site, verify_key=self.verify_key,
                              box_key=self.box_key)


@dataclass(frozen=True, slots=True)
class SignedEntry:
    """An entry with its signature, as stored and served (`raw`)."""

    entry: RosterEntry
    signature: bytes
    raw: bytes

    @property
    def hash(self) -> bytes:
        """What the next entry's `prev` must be."""
        return entry_hash(self.raw)

    @classmethod
    def parse(cls, raw: bytes) -> SignedEntry:
        """Decode a stored entry; raises `MalformedInput` (no signature is checked here)."""
        if len(raw) > MAX_ENTRY_BYTES:
            raise MalformedInput(f"roster entry of {len(raw)} bytes is larger than any real one")
        outer = unpack(raw, what="signed roster entry", max_len=MAX_ENTRY_BYTES)
        try:
            body, signature = bytes(outer["entry"]), bytes(outer["sig"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedInput(f"invalid signed roster entry: {type(exc).__name__}") from exc
        return cls(RosterEntry.from_bytes(body), signature, raw)


def entry_hash(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=HASH_BYTES, person=_HASH_PERSON).digest()


def sign_entry(entry: RosterEntry, signer: SiteKeyPair | KitKeyPair) -> SignedEntry:
    """Sign `entry` with a site's key (entry.signer = that site) or the kit's (signer None)."""
    body = entry.to_bytes()
    signature = signer.sign(_DOMAIN + body)
    raw = canonical_pack({"entry": body, "sig": signature})
    return SignedEntry(entry, signature, raw)


@dataclass(frozen=True, slots=True)
class RosterMember:
    keys: SitePublicKeys
    role: str
    approved: bool
    #: Position of the entry that admitted it, and of the one that revoked it.
    since_seq: int
    revoked_seq: int | None = None
    #: Who revoked it: a site id, or None (the recovery kit, or not revoked).
    revoked_by: UUID | None = None

    @property
    def site_id(self) -> UUID:
        return self.keys.site_id


@dataclass(frozen=True, slots=True)
class Roster:
    """The membership a verified chain proves, up to `head_seq`."""

    practice_id: UUID
    members: Mapping[UUID, RosterMember]
    kit: KitPublicKeys
    epoch: int
    head_seq: int
    head_hash: bytes
    #: Positions of entries kept in the chain that count for nothing.
    ignored: tuple[int, ...] = field(default=())

    def approved(self) -> list[RosterMember]:
        """The members a site seals new keys to (every approved site, sorted by id)."""
        return sorted((m for m in self.members.values() if m.approved),
                      key=lambda m: m.site_id.bytes)

    def is_approved(self, site_id: UUID) -> bool:
        member = self.members.get(site_id)
        return member is not None and member.approved

    def directory(self) -> SiteDirectory:
        """Public keys of every site the roster ever admitted (a revoked site's earlier
        batches still verify; the hub refuses its later ones)."""
        return SiteDirectory(m.keys for m in self.members.values())

    def next_entry(self, kind: EntryKind, *, signer: UUID | None, at_ms: int,
                   site: SitePublicKeys | None = None, kit: KitPublicKeys | None = None,
                   epoch: int | None = None) -> RosterEntry:
        """The unsigned entry that would follow this roster's head."""
        return RosterEntry(
            practice=self.practice_id, seq=self.head_seq + 1, prev=self.head_hash, kind=kind,
            site=None if site is None else site.site_id,
            verify_key=None if site is None else site.verify_key,
            box_key=None if site is None else site.box_key,
            epoch=self.epoch if epoch is None else epoch, kit=kit, signer=signer,
            at_ms=at_ms)


def genesis_entry(practice_id: UUID, first: SitePublicKeys, kit: KitPublicKeys, *,
                  at_ms: int, epoch: int = 1) -> RosterEntry:
    """The first entry: `first` is a member, `kit` is the recovery kit, the key epoch in
    force (1 for a new practice)."""
    return RosterEntry(practice=practice_id, seq=0, prev=GENESIS_PREV, kind=EntryKind.GENESIS,
                       site=first.site_id, verify_key=first.verify_key, box_key=first.box_key,
                       epoch=epoch, kit=kit, signer=first.site_id, at_ms=at_ms)


def _broken(message: str, seq: int) -> RosterBroken:
    return RosterBroken(f"roster entry {seq}: {message}",
                        hint="the hub served a roster that does not chain; the part before "
                        "this entry still holds. Report it to the operator")


def _check_signature(roster: Roster | None, signed: SignedEntry) -> bool:
    entry = signed.entry
    message = _DOMAIN + entry.to_bytes()
    try:
        if entry.signer is None:
            if roster is None:
                return False
            roster.kit.verify(message, signed.signature, what=f"roster entry {entry.seq}")
            return True
        if roster is None:  # genesis: signed by the site it names
            entry.site_keys().verify(message, signed.signature, what="roster genesis")
            return entry.signer == entry.site
        member = roster.members.get(entry.signer)
        if member is None or not member.approved:
            return False
        member.keys.verify(message, signed.signature, what=f"roster entry {entry.seq}")
        return True
    except BadSignature:
        return False


def _apply(roster: Roster, entry: RosterEntry) -> Roster | None:
    """The roster after `entry`, or None when the entry changes nothing it may change."""
    if entry.kind is EntryKind.APPROVE:
        if entry.site is None or entry.site in roster.members or entry.epoch != roster.epoch:
            return None  # already admitted (a revoked site stays revoked)
        member = RosterMember(entry.site_keys(), entry.role, True, entry.seq)
        return replace(roster, members={**roster.members, entry.site: member})
    if entry.kind is EntryKind.REVOKE:
        target = None if entry.site is None else roster.members.get(entry.site)
        if target is None or not target.approved or entry.epoch != roster.epoch + 1:
            return None
        if entry.signer == entry.site:
            return None  # a site is revoked by another
        revoked = replace(target, approved=False, revoked_seq=entry.seq,
                          revoked_by=entry.signer)
        return replace(roster, members={**roster.members, target.site_id: revoked},
                       epoch=entry.epoch)
    if entry.kind is EntryKind.KIT:
        if entry.kit is None or entry.signer is None or entry.epoch != roster.epoch:
            return None
        return replace(roster, kit=entry.kit)
    return None  # a second genesis


def fold(practice_id: UUID, entries: Iterable[bytes], start: Roster | None = None) -> Roster:
    """Verify `entries` (raw signed entries, in order) after `start` and return the roster.

    Raises `RosterBroken` for a chain that does not link, `MalformedInput` for
    bytes that are not entries.  Entries without authority count for nothing.
    """
    roster = start
    for raw in entries:
        signed = SignedEntry.parse(raw)
        entry = signed.entry
        expected_seq = 0 if roster is None else roster.head_seq + 1
        if entry.practice != practice_id:
            raise _broken(f"belongs to practice {entry.practice}, not {practice_id}", entry.seq)
        if entry.seq != expected_seq:
            raise _broken(f"is at position {entry.seq}, expected {expected_seq}", entry.seq)
        if expected_seq >= MAX_ENTRIES:
            raise _broken(f"the roster is longer than {MAX_ENTRIES} entries", entry.seq)
        if roster is None:
            if (entry.kind is not EntryKind.GENESIS or entry.prev != GENESIS_PREV
                    or entry.kit is None or not _check_signature(None, signed)):
                raise _broken("is not a genesis signed by the site it names", entry.seq)
            keys = entry.site_keys()
            roster = Roster(practice_id, {keys.site_id: RosterMember(keys, entry.role, True, 0)},
                            entry.kit, entry.epoch, 0, signed.hash)
            continue
        if entry.prev != roster.head_hash:
            raise _broken("does not follow the entry before it (previous hash differs)",
                          entry.seq)
        after = _apply(roster, entry) if _check_signature(roster, signed) else None
        if after is None:
            roster = replace(roster, head_seq=entry.seq, head_hash=signed.hash,
                             ignored=(*roster.ignored, entry.seq))
        else:
            roster = replace(after, head_seq=entry.seq, head_hash=signed.hash)
    if roster is None:
        raise RosterBroken(f"practice {practice_id} has no roster yet",
                           hint="the practice's first site writes it when it enrolls")
    return roster


__all__ = ["GENESIS_PREV", "EntryKind", "Roster", "RosterEntry", "RosterMember",
           "SignedEntry", "entry_hash", "fold", "genesis_entry", "sign_entry"]
