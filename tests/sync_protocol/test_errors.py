"""The error tree: stable, unique codes that a client can branch on."""

from __future__ import annotations

from sync_protocol import errors
from sync_protocol.version import PROTOCOL_VERSION, check_compatible


def test_codes_are_unique_and_cover_every_class() -> None:
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.ProtocolError)]
    assert set(classes) == set(errors.ALL_ERRORS)
    assert len({c.code for c in classes}) == len(classes)
    assert all(errors.BY_CODE[c.code] is c for c in classes)


def test_message_and_hint_read_together() -> None:
    exc = errors.ChainBroken("batch b starts at 9, expected 7", hint="resend from 7")
    assert str(exc) == "batch b starts at 9, expected 7 (resend from 7)"
    assert exc.http_status == 409 and not exc.retryable


def test_same_version_is_compatible() -> None:
    check_compatible(PROTOCOL_VERSION)
    check_compatible((PROTOCOL_VERSION[0], 0))
