"""The one error tree for refused peer input.

    ProtocolError
    ├── MalformedInput          bytes that do not parse as the claimed message
    │   └── TooLarge            a size limit was crossed (checked before expanding)
    ├── UnsupportedVersion      another protocol major version
    ├── UpgradeRequired         a newer protocol minor: hold the input, upgrade, retry
    ├── TamperedBatch           authenticated decryption or a digest failed
    ├── BadSignature            a signature does not verify against the registered key
    ├── UnknownSite             a site id that is not in the practice's registry
    ├── UnknownKeyEpoch         a key epoch this site does not hold
    ├── WrongPracticeKey        the key for that epoch is not the one the writer used
    ├── ChainBroken             seq / prev_hash do not follow the origin's last batch
    ├── ClockTooFarAhead        a hybrid logical clock beyond the allowed drift
    ├── SealedKeyUnreadable     a sealed key delivery that is not for this site's key
    ├── WrongPassphrase         a recovery kit that the passphrase does not open
    ├── BadRecoveryShares       too few, mixed or mistyped recovery kit shares
    └── RosterBroken            a roster chain that does not link, or no roster at all

Each class has a stable `code` (on the wire, next to the HTTP status) and says
whether a retry can help.  Clients branch on `code`, never on message text.
Messages carry ids and say what to do next; they never carry chart data.
"""

from __future__ import annotations

from typing import ClassVar


class ActionableError(Exception):
    """Base of every chartsync error tree: a message with ids and a next step.

    `code` is stable (it goes on the wire); `hint` says what to do; `retryable`
    says whether trying again can help.  The hub, edge and conflict trees extend
    this, so every error prints and serialises the same way.
    """

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ProtocolError(ActionableError):
    """Refused peer input.  See the module docstring for the tree."""

    code: ClassVar[str] = "protocol_error"
    http_status: ClassVar[int] = 400
    retryable: ClassVar[bool] = False


class MalformedInput(ProtocolError):
    code = "malformed"


class TooLarge(MalformedInput):
    code = "too_large"
    http_status = 413


class UnsupportedVersion(ProtocolError):
    code = "unsupported_version"
    http_status = 400


class UpgradeRequired(ProtocolError):
    code = "upgrade_required"
    http_status = 409
    retryable = True


class TamperedBatch(ProtocolError):
    code = "tampered"
    http_status = 400


class BadSignature(ProtocolError):
    code = "bad_signature"
    http_status = 401


class UnknownSite(ProtocolError):
    code = "unknown_site"
    http_status = 403


class UnknownKeyEpoch(ProtocolError):
    code = "unknown_key_epoch"
    http_status = 409
    retryable = True  # the sealed key for that epoch may still be in the mailbox


class WrongPracticeKey(ProtocolError):
    code = "wrong_practice_key"
    http_status = 400


class ChainBroken(ProtocolError):
    code = "chain_broken"
    http_status = 409


class ClockTooFarAhead(ProtocolError):
    code = "clock_too_far_ahead"
    http_status = 400


class SealedKeyUnreadable(ProtocolError):
    code = "sealed_key_unreadable"
    http_status = 400


class WrongPassphrase(ProtocolError):
    code = "wrong_passphrase"
    http_status = 401


class BadRecoveryShares(ProtocolError):
    code = "bad_recovery_shares"
    http_status = 401


class RosterBroken(ProtocolError):
    code = "roster_broken"
    http_status = 409


ALL_ERRORS: tuple[type[ProtocolError], ...] = (
    ProtocolError, MalformedInput, TooLarge, UnsupportedVersion, UpgradeRequired,
    TamperedBatch, BadSignature, UnknownSite, UnknownKeyEpoch, WrongPracticeKey,
    ChainBroken, ClockTooFarAhead, SealedKeyUnreadable, WrongPassphrase, BadRecoveryShares,
    RosterBroken,
)

#: code → class, so a client can rebuild the error it was sent.
BY_CODE: dict[str, type[ProtocolError]] = {cls.code: cls for cls in ALL_ERRORS}
