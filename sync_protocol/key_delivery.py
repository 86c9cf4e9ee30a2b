"""Sealed delivery of practice keys to a site, through the hub's mailbox.

An approved site seals the practice key epochs to the new site's X25519 key
(libsodium sealed box) and signs the envelope with its own Ed25519 key.  The
hub relays bytes it cannot open; the recipient checks who sent it (the sender
must be in the site registry) and that it was meant for its own key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from uuid import UUID

import nacl.exceptions
import nacl.public

from sync_protocol.canonical import canonical_pack, unpack
from sync_protocol.errors import MalformedInput, SealedKeyUnreadable
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair, SitePublicKeys

_DOMAIN: Final = b"chartsync/key-delivery/v1\0"
_REQUEST_DOMAIN: Final = b"chartsync/key-request/v1\0"
_MAX_BYTES: Final = 64 * 1024


def seal_keys_for_site(
    keys: Iterable[PracticeKey],
    *,
    practice_id: UUID,
    sender_id: UUID,
    sender_keys: SiteKeyPair,
    recipient: SitePublicKeys,
) -> bytes:
    """Return a signed envelope carrying `keys` sealed to `recipient`'s X25519 key."""
    inner = canonical_pack({
        "practice": practice_id.bytes, "to": recipient.site_id.bytes,
        "keys": [[k.epoch, k.secret] for k in sorted(keys, key=lambda k: k.epoch)],
    })
    box = nacl.public.SealedBox(nacl.public.PublicKey(recipient.box_key)).encrypt(inner)
    envelope = canonical_pack({"v": 1, "practice": practice_id.bytes, "from": sender_id.bytes,
                               "to": recipient.site_id.bytes, "box": box})
    signature = sender_keys.sign(_DOMAIN + envelope)
    return canonical_pack({"envelope": envelope, "sig": signature})


def open_keys_for_site(
    raw: bytes,
    *,
    practice_id: UUID,
    site_id: UUID,
    site_keys: SiteKeyPair,
    directory: SiteDirectory,
) -> Keyring:
    """Verify and open a key delivery meant for this site; return the keys as a keyring.

    Raises `MalformedInput`, `UnknownSite` (sender not registered), `BadSignature`,
    `SealedKeyUnreadable` (sealed to another key or for another site/practice).
    """
    if len(raw) > _MAX_BYTES:
        raise MalformedInput(f"key delivery of {len(raw)} bytes is larger than any real one")
    outer = unpack(raw, what="key delivery", max_len=_MAX_BYTES)
    try:
        envelope, signature = bytes(outer["envelope"]), bytes(outer["sig"])
        fields = unpack(envelope, what="key delivery envelope", max_len=_MAX_BYTES)
        sender, to = UUID(bytes=fields["from"]), UUID(bytes=fields["to"])
        practice, box = UUID(bytes=fields["practice"]), bytes(fields["box"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInput(f"invalid key delivery: {type(exc).__name__}") from exc
    directory.get(sender).verify(_DOMAIN + envelope, signature,
                                 what=f"key delivery from site {sender}")
    if to != site_id or practice != practice_id:
        raise SealedKeyUnreadable(
            f"key delivery from site {sender} is addressed to site {to} of practice "
            f"{practice}, not to this site {site_id} of practice {practice_id}",
            hint="ask the approving site to send the keys to this site's id")
    try:
        inner = nacl.public.SealedBox(site_keys.box_key).decrypt(box)
    except nacl.exceptions.CryptoError as exc:
        raise SealedKeyUnreadable(
            f"key delivery from site {sender} was sealed to another key than this site's",
            hint="the approver used an old or wrong public key; re-approve this site "
            "after comparing its fingerprint") from exc
    content = unpack(inner, what="sealed keys", max_len=_MAX_BYTES)
    try:
        if UUID(bytes=content["to"]) != site_id or UUID(bytes=content["practice"]) != practice_id:
            raise SealedKeyUnreadable("sealed keys name another site or practice inside")
        return Keyring.from_wire({"practice": content["practice"], "keys": content["keys"]})
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInput(f"invalid sealed keys: {type(exc).__name__}") from exc


def is_key_request(raw: bytes) -> bool:
    """Whether a mailbox item is a key request (else it is a key delivery); unverified."""
    if len(raw) > _MAX_BYTES:
        return False
    try:
        outer = unpack(raw, what="mailbox item", max_len=_MAX_BYTES)
        fields = unpack(bytes(outer["envelope"]), what="mailbox envelope", max_len=_MAX_BYTES)
        return bool(fields.get("kind") == "request")
    except (MalformedInput, KeyError, TypeError, ValueError, AttributeError):
        return False


def seal_key_request(*, practice_id: UUID, sender_id: UUID, sender_keys: SiteKeyPair,
                     to: UUID, have: Iterable[int]) -> bytes:
    """A signed request to site `to`: please seal the practice key epochs to me (`have`:
    the epochs the sender holds already)."""
    envelope = canonical_pack({"v": 1, "kind": "request", "practice": practice_id.bytes,
                               "from": sender_id.bytes, "to": to.bytes,
                               "have": sorted(set(have))})
    return canonical_pack({"envelope": envelope,
                           "sig": sender_keys.sign(_REQUEST_DOMAIN + envelope)})


def open_key_request(raw: bytes, *, practice_id: UUID, site_id: UUID,
                     directory: SiteDirectory) -> tuple[UUID, frozenset[int]]:
    """Verify a key request addressed to this site; (requesting site, epochs it holds).

    Raises `MalformedInput`, `UnknownSite` (sender not in `directory`), `BadSignature`,
    `SealedKeyUnreadable` (for another site or practice).
    """
    if len(raw) > _MAX_BYTES:
        raise MalformedInput(f"key request of {len(raw)} bytes is larger than any real one")
    outer = unpack(raw, what="key request", max_len=_MAX_BYTES)
    try:
        envelope, signature = bytes(outer["envelope"]), bytes(outer["sig"])
        fields = unpack(envelope, what="key request envelope", max_len=_MAX_BYTES)
        sender, to = UUID(bytes=fields["from"]), UUID(bytes=fields["to"])
        practice = UUID(bytes=fields["practice"])
        have = frozenset(int(e) for e in fields["have"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInput(f"invalid key request: {type(exc).__name__}") from exc
    directory.get(sender).verify(_REQUEST_DOMAIN + envelope, signature,
                                 what=f"key request from site {sender}")
    if to != site_id or practice != practice_id:
        raise SealedKeyUnreadable(f"key request from site {sender} is for site {to} of "
                                  f"practice {practice}, not this site")
    return sender, have
