"""Bearer credentials: minted once, shown once, stored as SHA-256.

Every credential is 32 random bytes (so a fast hash is enough; no slow KDF) and
names its routing key in clear, so the hub finds the row by (practice, site)
and never by the secret alone — the same lookups work on a database
distributed by practice id (Citus):

    operator         cso_<secret>
    enrollment token cse_<practice hex>.<secret>
    site credential  css_<practice hex>.<site hex>.<secret>

Only hashes are stored; comparisons run in constant time.  Randomness is an
input (`random_bytes`), so tests can pass fixed bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final, Literal
from uuid import UUID

from sync_protocol.ids import PracticeId, SiteId

SECRET_BYTES: Final = 32
OPERATOR_PREFIX: Final = "cso_"
ENROLLMENT_PREFIX: Final = "cse_"
SITE_PREFIX: Final = "css_"
_MAX_TOKEN_CHARS: Final = 200


def _secret_text(random_bytes: bytes) -> str:
    if len(random_bytes) < SECRET_BYTES:
        raise ValueError(f"a credential needs {SECRET_BYTES} random bytes")
    return base64.urlsafe_b64encode(random_bytes[:SECRET_BYTES]).decode("ascii").rstrip("=")


def credential_hash(token: str) -> bytes:
    """SHA-256 of the whole token text: what the store keeps."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def same_hash(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two stored hashes."""
    return hmac.compare_digest(a, b)


def new_operator_token(random_bytes: bytes) -> str:
    return OPERATOR_PREFIX + _secret_text(random_bytes)


def new_enrollment_token(practice_id: PracticeId, random_bytes: bytes) -> str:
    return f"{ENROLLMENT_PREFIX}{practice_id.hex}.{_secret_text(random_bytes)}"


def new_site_credential(practice_id: PracticeId, site_id: SiteId, random_bytes: bytes) -> str:
    return f"{SITE_PREFIX}{practice_id.hex}.{site_id.hex}.{_secret_text(random_bytes)}"


@dataclass(frozen=True, slots=True)
class ParsedCredential:
    """What a presented token claims to be; nothing is verified yet."""

    kind: Literal["operator", "site", "enrollment"]
    hash: bytes
    practice_id: PracticeId | None = None
    site_id: SiteId | None = None

    def __repr__(self) -> str:  # never the secret, never the hash
        return f"ParsedCredential(kind={self.kind}, practice={self.practice_id})"


def parse_token(token: str) -> ParsedCredential | None:
    """Split a presented token into its claimed kind and ids; None if it has no valid shape."""
    if not token or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        return None
    digest = credential_hash(token)
    try:
        if token.startswith(OPERATOR_PREFIX):
            return ParsedCredential("operator", digest)
        if token.startswith(ENROLLMENT_PREFIX):
            practice, _secret = token[len(ENROLLMENT_PREFIX):].split(".")
            return ParsedCredential("enrollment", digest, PracticeId(UUID(hex=practice)))
        if token.startswith(SITE_PREFIX):
            practice, site, _secret = token[len(SITE_PREFIX):].split(".")
            return ParsedCredential("site", digest, PracticeId(UUID(hex=practice)),
                                    SiteId(UUID(hex=site)))
    except ValueError:
        return None
    return None
