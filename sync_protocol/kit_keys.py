"""The recovery kit's own key pair, and practice key epochs sealed to it.

A recovery kit holds a 32-byte kit seed.  From it come an Ed25519 key (the kit
signs roster entries when no site is left to do it) and an X25519 key (every
new practice key epoch is sealed to it).  The public halves are named in the
practice roster, so a site knows which kit to seal to; the hub keeps the sealed
copies and can open none of them.

    kit = KitKeyPair.from_seed(seed)
    sealed = seal_epoch_for_kit(key, practice_id=..., sender_id=..., sender_keys=...,
                                kit=kit.public())
    key = open_epoch_for_kit(sealed, practice_id=..., kit=kit, directory=members)

Every sealed copy is signed by the site that made it; the opener checks that
signer against the directory it trusts (the verified roster's sites).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Final
from uuid import UUID

import nacl.exceptions
import nacl.public
import nacl.signing
from pydantic import BaseModel, ConfigDict, Field

from sync_protocol.canonical import canonical_pack, unpack
from sync_protocol.errors import BadSignature, MalformedInput, SealedKeyUnreadable
from sync_protocol.keys import (
    KEY_BYTES,
    PracticeKey,
    SiteDirectory,
    SiteKeyPair,
    fingerprint,
    signature_verifies,
)

_DOMAIN: Final = b"chartsync/kit-epoch/v1\0"
_MAX_BYTES: Final = 4 * 1024


def _derive(seed: bytes, purpose: bytes) -> bytes:
    return hashlib.blake2b(digest_size=32, key=seed, person=purpose.ljust(16, b"\0")).digest()


class KitPublicKeys(BaseModel):
    """The public halves of a recovery kit, as the roster names them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verify_key: Annotated[bytes, Field(min_length=32, max_length=32)]
    box_key: Annotated[bytes, Field(min_length=32, max_length=32)]

    @property
    def fingerprint(self) -> str:
        """Names the kit without revealing it (printed on the kit and by `edge kit`)."""
        return fingerprint(self.verify_key + self.box_key)

    def verify(self, message: bytes, signature: bytes, *, what: str) -> None:
        """Raise `BadSignature` unless `signature` over `message` is this kit's."""
        if not signature_verifies(self.verify_key, message, signature):
            raise BadSignature(f"{what}: signature does not verify against the recovery kit "
                               f"{self.fingerprint}",
                               hint="it was signed with another kit, or altered")


class KitKeyPair:
    """A recovery kit's secret keys, derived from its seed; `repr` is the fingerprint."""

    __slots__ = ("box_key", "seed", "signing_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != KEY_BYTES:
            raise MalformedInput(f"a kit seed is {KEY_BYTES} bytes, got {len(seed)}")
        self.seed = seed
        self.signing_key = nacl.signing.SigningKey(_derive(seed, b"cs-kit-sign"))
        self.box_key = nacl.public.PrivateKey(_derive(seed, b"cs-kit-box"))

    @classmethod
    def from_seed(cls, seed: bytes) -> KitKeyPair:
        return cls(seed)

    def public(self) -> KitPublicKeys:
        return KitPublicKeys(verify_key=bytes(self.signing_key.verify_key),
                             box_key=bytes(self.box_key.public_key))

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message).signature

    def __repr__(self) -> str:
        return f"KitKeyPair(fingerprint={self.public().fingerprint})"


@dataclass(frozen=True, slots=True)
class KitSealedEpoch:
    """One epoch key sealed to a kit, as the hub stores it (opaque to the hub)."""

    epoch: int
    kit_fingerprint: str
    sealed: bytes


def seal_epoch_for_kit(key: PracticeKey, *, practice_id: UUID, sender_id: UUID,
                       sender_keys: SiteKeyPair, kit: KitPublicKeys) -> KitSealedEpoch:
    """Seal `key` to the kit's X25519 key and sign the envelope as `sender_id`."""
    inner = canonical_pack({"practice": practice_id.bytes, "epoch": key.epoch,
                            "key": key.secret})
    box = nacl.public.SealedBox(nacl.public.PublicKey(kit.box_key)).encrypt(inner)
    envelope = canonical_pack({"v": 1, "practice": practice_id.bytes, "from": sender_id.bytes,
                               "epoch": key.epoch, "kit": kit.box_key, "box": box})
    signature = sender_keys.sign(_DOMAIN + envelope)
    return KitSealedEpoch(key.epoch, kit.fingerprint,
                          canonical_pack({"envelope": envelope, "sig": signature}))


def sealed_epoch_of(raw: bytes) -> int:
    """The epoch a sealed copy claims (read by the hub, which cannot open it)."""
    return _Envelope.parse(raw).epoch


@dataclass(frozen=True, slots=True)
class _Envelope:
    sender: UUID
    practice: UUID
    epoch: int
    kit_box_key: bytes
    box: bytes
    signed: bytes
    signature: bytes

    @classmethod
    def parse(cls, raw: bytes) -> _Envelope:
        if len(raw) > _MAX_BYTES:
            raise MalformedInput(f"kit-sealed key of {len(raw)} bytes is larger than any "
                                 "real one")
        outer = unpack(raw, what="kit-sealed key", max_len=_MAX_BYTES)
        try:
            envelope, signature = bytes(outer["envelope"]), bytes(outer["sig"])
            fields = unpack(envelope, what="kit-sealed key envelope", max_len=_MAX_BYTES)
            epoch = fields["epoch"]
            if fields["v"] != 1 or not isinstance(epoch, int) or epoch < 1:
                raise ValueError("version or epoch")
            return cls(UUID(bytes=fields["from"]), UUID(bytes=fields["practice"]), epoch,
                       bytes(fields["kit"]), bytes(fields["box"]), envelope, signature)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedInput(f"invalid kit-sealed key: {type(exc).__name__}") from exc


def open_epoch_for_kit(raw: bytes, *, practice_id: UUID, kit: KitKeyPair,
                       directory: SiteDirectory) -> PracticeKey:
    """Verify a kit-sealed copy (its signer must be in `directory`) and open it.

    Raises `MalformedInput`, `UnknownSite`, `BadSignature`, or `SealedKeyUnreadable`
    (sealed to another kit, or for another practice).
    """
    env = _Envelope.parse(raw)
    directory.get(env.sender).verify(_DOMAIN + env.signed, env.signature,
                                     what=f"kit-sealed key of epoch {env.epoch}")
    if env.practice != practice_id:
        raise SealedKeyUnreadable(f"kit-sealed key of epoch {env.epoch} names practice "
                                  f"{env.practice}, not {practice_id}")
    if env.kit_box_key != bytes(kit.box_key.public_key):
        raise SealedKeyUnreadable(
            f"the key of epoch {env.epoch} was sealed to another recovery kit",
            hint="use the kit that was current when that epoch began (`chartsync edge kit "
            "show` names the current one)")
    try:
        inner = nacl.public.SealedBox(kit.box_key).decrypt(env.box)
    except nacl.exceptions.CryptoError as exc:
        raise SealedKeyUnreadable(f"kit-sealed key of epoch {env.epoch} does not open "
                                  "with this kit") from exc
    content = unpack(inner, what="kit-sealed key", max_len=_MAX_BYTES)
    try:
        if UUID(bytes=content["practice"]) != practice_id or content["epoch"] != env.epoch:
            raise SealedKeyUnreadable("kit-sealed key names another practice or epoch inside")
        return PracticeKey(int(content["epoch"]), bytes(content["key"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInput(f"invalid kit-sealed key: {type(exc).__name__}") from exc


__all__ = ["KitKeyPair", "KitPublicKeys", "KitSealedEpoch", "open_epoch_for_kit",
           "seal_epoch_for_kit", "sealed_epoch_of"]
