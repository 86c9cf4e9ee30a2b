"""Keys: the practice key (per epoch), site key pairs, fingerprints, record tokens.

The practice key is 32 random bytes per epoch.  Sub-keys are derived from it
with keyed BLAKE2b and a distinct personalisation per purpose, so no key is
used for two jobs.  Key objects `repr` as fingerprints, never as secrets.
Randomness is an input: callers pass `nacl.utils.random(...)` bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final
from uuid import UUID

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
from pydantic import BaseModel, ConfigDict, Field

from sync_protocol.errors import BadSignature, MalformedInput, UnknownKeyEpoch, UnknownSite
from sync_protocol.models import KEY_ID_BYTES, TOKEN_BYTES

KEY_BYTES: Final = 32


def _derive(secret: bytes, purpose: bytes, size: int = 32) -> bytes:
    return hashlib.blake2b(digest_size=size, key=secret, person=purpose.ljust(16, b"\0")).digest()


def fingerprint(raw: bytes) -> str:
    """Human-comparable fingerprint: 20 base32 chars in groups of 4."""
    digest = hashlib.blake2b(raw, digest_size=15, person=b"chartsync-fp").digest()
    text = base64.b32encode(digest).decode("ascii")[:20]
    return "-".join(text[i:i + 4] for i in range(0, 20, 4))


def signature_verifies(verify_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is the Ed25519 signature of `message` by `verify_key`."""
    try:
        nacl.signing.VerifyKey(verify_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError):
        return False
    return True


class PracticeKey:
    """One epoch of the practice key and its derived sub-keys."""

    __slots__ = (
        "_secret",
        "_token_hasher",
        "digest_key",
        "encryption_key",
        "epoch",
        "key_id",
        "snapshot_key",
        "token_key",
    )

    def __init__(self, epoch: int, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise MalformedInput(f"a practice key is {KEY_BYTES} bytes, got {len(secret)}")
        if epoch < 1:
            raise MalformedInput(f"key epochs start at 1, got {epoch}")
        self.epoch = epoch
        self._secret = secret
        self.encryption_key = _derive(secret, b"cs-batch-enc")
        self.snapshot_key = _derive(secret, b"cs-snapshot-enc")
        self.token_key = _derive(secret, b"cs-record-token")
        self.digest_key = _derive(secret, b"cs-state-digest")
        #: Names the key without revealing it: readers detect a wrong key before
        #: trying to decrypt (WrongPracticeKey rather than a vague failure).
        self.key_id = _derive(secret, b"cs-key-id", KEY_ID_BYTES)
        # Keyed state prepared once; copying it is cheaper than re-keying per token.
        self._token_hasher = hashlib.blake2b(digest_size=TOKEN_BYTES, key=self.token_key,
                                             person=b"cs-token")

    @classmethod
    def generate(cls, epoch: int, random_bytes: bytes) -> PracticeKey:
        return cls(epoch, random_bytes[:KEY_BYTES])

    @property
    def secret(self) -> bytes:
        """The raw key; only for sealing it to a site or into a recovery kit."""
        return self._secret

    def __repr__(self) -> str:
        return f"PracticeKey(epoch={self.epoch}, id={self.key_id.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PracticeKey) and (self.epoch, self._secret) == (
            other.epoch, other._secret)

    def __hash__(self) -> int:
        return hash((self.epoch, self.key_id))


def record_token(key: PracticeKey, resource_type: str, resource_id: str) -> bytes:
    """Opaque, stable name of one resource under `key`: keyed BLAKE2b of type and id.

    The hub tracks heads per token without learning which resource it is.
    """
    hasher = key._token_hasher.copy()
    hasher.update(f"{resource_type}/{resource_id}".encode())
    return hasher.digest()


@dataclass(frozen=True)
class Keyring:
    """Every practice key epoch a site holds.  The newest epoch encrypts new batches."""

    practice_id: UUID
    keys: Mapping[int, PracticeKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.keys:
            raise MalformedInput("a keyring holds at least one key epoch")

    @property
    def current(self) -> PracticeKey:
        return self.keys[max(self.keys)]

    @property
    def digest_key(self) -> bytes:
        """Key of the state digest: from the oldest epoch, which every site holds."""
        return self.keys[min(self.keys)].digest_key

    def get(self, epoch: int, *, batch: str = "") -> PracticeKey:
        """Return the key of `epoch`; raises `UnknownKeyEpoch` if this site lacks it."""
        try:
            return self.keys[epoch]
        except KeyError:
            raise UnknownKeyEpoch(
                f"{batch or 'input'} uses key epoch {epoch}; this site holds "
                f"epochs {sorted(self.keys)} of practice {self.practice_id}",
                hint="wait for the sealed key of that epoch to arrive in the mailbox, or run "
                "`chartsync edge request-keys` to ask the approved sites to re-send them",
            ) from None

    def with_key(self, key: PracticeKey) -> Keyring:
        return Keyring(self.practice_id, {**self.keys, key.epoch: key})

    def to_wire(self) -> dict[str, Any]:
        return {"practice": self.practice_id.bytes,
                "keys": [[k.epoch, k.secret] for k in sorted(self.keys.values(),
                                                               key=lambda k: k.epoch)]}

    @classmethod
    def from_wire(cls, raw: Any) -> Keyring:
        try:
            practice = UUID(bytes=raw["practice"])
            keys = {int(e): PracticeKey(int(e), bytes(s)) for e, s in raw["keys"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedInput(f"invalid keyring: {type(exc).__name__}") from exc
        return cls(practice, keys)

    def __repr__(self) -> str:
        return f"Keyring(practice={self.practice_id}, epochs={sorted(self.keys)})"


class SitePublicKeys(BaseModel):
    """The public halves a hub keeps in the practice's site registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site_id: UUID
    verify_key: Annotated[bytes, Field(min_length=32, max_length=32)]
    box_key: Annotated[bytes, Field(min_length=32, max_length=32)]

    @property
    def fingerprint(self) -> str:
        """What an administrator compares when approving a site."""
        return fingerprint(self.verify_key + self.box_key)

    def verify(self, message: bytes, signature: bytes, *, what: str) -> None:
        """Raise `BadSignature` unless `signature` over `message` is this site's."""
        if not signature_verifies(self.verify_key, message, signature):
            raise BadSignature(
                f"{what}: signature does not verify against the registered key of site "
                f"{self.site_id}",
                hint="the bytes were altered in transit or signed by another key; "
                "re-fetch them, and if it repeats, check the site's enrollment",
            )


class SiteKeyPair:
    """A site's secret keys: Ed25519 for signing, X25519 for receiving sealed keys."""

    __slots__ = ("box_key", "signing_key")

    def __init__(self, signing_seed: bytes, box_secret: bytes) -> None:
        self.signing_key = nacl.signing.SigningKey(signing_seed)
        self.box_key = nacl.public.PrivateKey(box_secret)

    @classmethod
    def generate(cls, random_bytes: bytes) -> SiteKeyPair:
        """Keys from 64 random bytes (pass `nacl.utils.random(64)`)."""
        if len(random_bytes) < 64:
            raise ValueError("SiteKeyPair.generate needs 64 random bytes")
        return cls(random_bytes[:32], random_bytes[32:64])

    def public(self, site_id: UUID) -> SitePublicKeys:
        return SitePublicKeys(site_id=site_id, verify_key=bytes(self.signing_key.verify_key),
                              box_key=bytes(self.box_key.public_key))

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message).signature

    def to_wire(self) -> dict[str, bytes]:
        return {"sign": bytes(self.signing_key), "box": bytes(self.box_key)}

    @classmethod
    def from_wire(cls, raw: Any) -> SiteKeyPair:
        try:
            return cls(bytes(raw["sign"]), bytes(raw["box"]))
        except (KeyError, TypeError, ValueError, nacl.exceptions.ValueError,
                nacl.exceptions.TypeError) as exc:
            raise MalformedInput(f"invalid site keys: {type(exc).__name__}") from exc

    @property
    def fingerprint(self) -> str:
        return fingerprint(bytes(self.signing_key.verify_key) + bytes(self.box_key.public_key))

    def __repr__(self) -> str:
        return f"SiteKeyPair(fingerprint={self.fingerprint})"


class SiteDirectory:
    """The public keys of a practice's sites, as the reader knows them."""

    __slots__ = ("_sites",)

    def __init__(self, sites: Iterable[SitePublicKeys] = ()) -> None:
        self._sites = {s.site_id: s for s in sites}

    def get(self, site_id: UUID) -> SitePublicKeys:
        try:
            return self._sites[site_id]
        except KeyError:
            raise UnknownSite(
                f"site {site_id} is not in this practice's site registry",
                hint="refresh the site registry from the hub; a site must be approved "
                "before its batches are accepted",
            ) from None

    def add(self, site: SitePublicKeys) -> None:
        self._sites[site.site_id] = site

    def __contains__(self, site_id: object) -> bool:
        return site_id in self._sites

    def __len__(self) -> int:
        return len(self._sites)

