"""Practice key epochs sealed to the recovery kit: only the kit opens them, only members seal."""

from __future__ import annotations

from uuid import UUID

import pytest

from sync_protocol.errors import BadSignature, MalformedInput, SealedKeyUnreadable, UnknownSite
from sync_protocol.keys import PracticeKey, SiteDirectory, SiteKeyPair
from sync_protocol.kit_keys import (
    KitKeyPair,
    open_epoch_for_kit,
    seal_epoch_for_kit,
    sealed_epoch_of,
)

PRACTICE = UUID("01936d2e-0000-7000-8000-0000000000aa")
SITE = UUID("01936d2e-0000-7000-8000-0000000000b1")
SITE_KEYS = SiteKeyPair.generate(bytes(range(64)))
KIT = KitKeyPair.from_seed(bytes(range(32)))
KEY = PracticeKey(3, bytes(range(100, 132)))
MEMBERS = SiteDirectory([SITE_KEYS.public(SITE)])


def sealed() -> bytes:
    return seal_epoch_for_kit(KEY, practice_id=PRACTICE, sender_id=SITE, sender_keys=SITE_KEYS,
                              kit=KIT.public()).sealed


def test_the_kit_opens_what_a_member_sealed_to_it() -> None:
    raw = sealed()
    assert sealed_epoch_of(raw) == 3
    assert open_epoch_for_kit(raw, practice_id=PRACTICE, kit=KIT, directory=MEMBERS) == KEY


def test_another_kit_a_stranger_or_an_altered_copy_is_refused() -> None:
    raw = sealed()
    with pytest.raises(SealedKeyUnreadable, match="another recovery kit"):
        open_epoch_for_kit(raw, practice_id=PRACTICE, kit=KitKeyPair.from_seed(bytes(32)),
                           directory=MEMBERS)
    with pytest.raises(UnknownSite):
        open_epoch_for_kit(raw, practice_id=PRACTICE, kit=KIT, directory=SiteDirectory())
    with pytest.raises(SealedKeyUnreadable, match="practice"):
        open_epoch_for_kit(raw, practice_id=UUID(int=1), kit=KIT, directory=MEMBERS)
    altered = bytearray(raw)
    altered[-70] ^= 1
    with pytest.raises((BadSignature, MalformedInput)):
        open_epoch_for_kit(bytes(altered), practice_id=PRACTICE, kit=KIT, directory=MEMBERS)


def test_kit_keys_repr_names_no_secret() -> None:
    assert KIT.seed.hex() not in repr(KIT) and KIT.public().fingerprint in repr(KIT)
