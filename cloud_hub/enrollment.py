"""The rules of enrollment tokens: one use, before they expire."""

from __future__ import annotations

from cloud_hub.errors import EnrollmentRefused


def check_token_row(expires_ms: int | None, used_ms: int | None, now_ms: int) -> None:
    """Refuse an unknown (`expires_ms` None), used or expired enrollment token.

    Raises `EnrollmentRefused`; the messages never carry the token.
    """
    if expires_ms is None:
        raise EnrollmentRefused("this enrollment token is not known to the hub",
                                hint="ask the practice's operator or an approved site for a "
                                "new token")
    if used_ms is not None:
        raise EnrollmentRefused("this enrollment token was already used",
                                hint="tokens work once; ask for a new one")
    if now_ms >= expires_ms:
        raise EnrollmentRefused("this enrollment token has expired",
                                hint="ask for a new token and enroll before it expires")
