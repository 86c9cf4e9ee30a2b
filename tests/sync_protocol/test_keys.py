"""Sealed key delivery, recovery kits, fingerprints and receipts."""

from __future__ import annotations

import uuid
from typing import TypedDict

import nacl.pwhash
import nacl.signing
import nacl.utils
import pytest

from sync_protocol.errors import (
    BadSignature,
    MalformedInput,
    SealedKeyUnreadable,
    UnknownSite,
    WrongPassphrase,
)
from sync_protocol.key_delivery import open_keys_for_site, seal_keys_for_site
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair, record_token
from sync_protocol.kit_keys import KitKeyPair
from sync_protocol.receipt import sign_receipt, verify_receipt
from sync_protocol.recovery import create_recovery_kit, open_recovery_kit
from tests.sync_protocol.conftest import Practice, new_site


class _KdfLimits(TypedDict):
    opslimit: int
    memlimit: int


FAST_KDF: _KdfLimits = {"opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
                        "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN}
PASSPHRASE = "correct horse battery staple 42"
KIT = KitKeyPair.from_seed(bytes(range(32)))


def _deliver(p: Practice) -> bytes:
    return seal_keys_for_site(p.keyring.keys.values(), practice_id=p.practice_id,
                              sender_id=p.a.site_id, sender_keys=p.a.keys,
                              recipient=p.b.keys.public(p.b.site_id))


def test_sealed_keys_reach_the_new_site(practice: Practice) -> None:
    opened = open_keys_for_site(_deliver(practice), practice_id=practice.practice_id,
                                site_id=practice.b.site_id, site_keys=practice.b.keys,
                                directory=practice.directory)
    assert opened.keys == practice.keyring.keys


def test_sealed_keys_are_unreadable_to_another_site_key(practice: Practice) -> None:
    stranger = SiteKeyPair.generate(nacl.utils.random(64))
    with pytest.raises(SealedKeyUnreadable, match="another key"):
        open_keys_for_site(_deliver(practice), practice_id=practice.practice_id,
                           site_id=practice.b.site_id, site_keys=stranger,
                           directory=practice.directory)
    with pytest.raises(SealedKeyUnreadable, match="addressed to site"):
        open_keys_for_site(_deliver(practice), practice_id=practice.practice_id,
                           site_id=practice.a.site_id, site_keys=practice.a.keys,
                           directory=practice.directory)


def test_a_delivery_from_an_unregistered_or_forging_sender_is_refused(
        practice: Practice) -> None:
    sealed = _deliver(practice)
    with pytest.raises(UnknownSite):
        open_keys_for_site(sealed, practice_id=practice.practice_id, site_id=practice.b.site_id,
                           site_keys=practice.b.keys, directory=SiteDirectory())
    forged_dir = SiteDirectory([new_site().keys.public(practice.a.site_id)])
    with pytest.raises(BadSignature):
        open_keys_for_site(sealed, practice_id=practice.practice_id, site_id=practice.b.site_id,
                           site_keys=practice.b.keys, directory=forged_dir)
    with pytest.raises(MalformedInput):
        open_keys_for_site(sealed[:-3], practice_id=practice.practice_id,
                           site_id=practice.b.site_id, site_keys=practice.b.keys,
                           directory=practice.directory)


def test_recovery_kit_opens_with_the_right_passphrase_only(practice: Practice) -> None:
    ring = practice.keyring.with_key(PracticeKey.generate(2, nacl.utils.random(32)))
    kit = create_recovery_kit(ring, PASSPHRASE, kit=KIT, created="2026-11-24", **FAST_KDF)
    assert kit.startswith("-----BEGIN CHARTSYNC RECOVERY KIT-----")
    assert str(practice.practice_id) in kit and "Key-Epochs: 1, 2" in kit
    assert open_recovery_kit(kit, PASSPHRASE).keyring.keys == ring.keys
    with pytest.raises(WrongPassphrase):
        open_recovery_kit(kit, PASSPHRASE + "!")
    with pytest.raises(WrongPassphrase):
        open_recovery_kit(kit, "Correct horse battery staple 42")


def test_a_damaged_or_edited_kit_is_refused(practice: Practice) -> None:
    kit = create_recovery_kit(practice.keyring, PASSPHRASE, kit=KIT, created="2026-11-24",
                              **FAST_KDF)
    with pytest.raises(MalformedInput):
        open_recovery_kit(kit.replace("-----END", "-----FIN"), PASSPHRASE)
    lines = kit.splitlines()
    body_line = lines.index("") + 1
    lines[body_line] = lines[body_line][:10] + ("A" if lines[body_line][10] != "A" else "B") \
        + lines[body_line][11:]
    with pytest.raises((MalformedInput, WrongPassphrase)):
        open_recovery_kit("\n".join(lines), PASSPHRASE)


def test_a_short_passphrase_is_refused(practice: Practice) -> None:
    with pytest.raises(ValueError, match="13"):
        create_recovery_kit(practice.keyring, "short", kit=KIT, created="2026-11-24", **FAST_KDF)


def test_keys_never_show_their_secret_in_repr(practice: Practice) -> None:
    key = practice.keyring.current
    assert key.secret.hex() not in repr(key) and key.secret.hex() not in repr(practice.keyring)
    assert "fingerprint" in repr(practice.a.keys)


def test_fingerprint_is_stable_and_distinguishes_sites(practice: Practice) -> None:
    fa = practice.a.keys.public(practice.a.site_id).fingerprint
    assert fa == practice.a.keys.fingerprint
    assert fa != practice.b.keys.fingerprint
    assert len(fa) == 24 and fa.count("-") == 4


def test_record_tokens_are_stable_per_key_and_unlinkable_across_keys(practice: Practice) -> None:
    key = practice.keyring.current
    other = PracticeKey.generate(2, nacl.utils.random(32))
    assert record_token(key, "Patient", "p1") == record_token(key, "Patient", "p1")
    assert record_token(key, "Patient", "p1") != record_token(key, "Patient", "p2")
    assert record_token(key, "Patient", "p1") != record_token(other, "Patient", "p1")


def test_receipts_verify_only_with_the_hub_key() -> None:
    hub = nacl.signing.SigningKey.generate()
    receipt = sign_receipt(hub, practice_id=uuid.uuid4(), site_id=uuid.uuid4(),
                           batch_hash=bytes(32), hub_seq=41)
    verify_receipt(receipt, bytes(hub.verify_key))
    with pytest.raises(BadSignature):
        verify_receipt(receipt.model_copy(update={"hub_seq": 42}), bytes(hub.verify_key))
    with pytest.raises(BadSignature):
        verify_receipt(receipt, bytes(nacl.signing.SigningKey.generate().verify_key))


def test_keyring_wire_round_trip(practice: Practice) -> None:
    assert Keyring.from_wire(practice.keyring.to_wire()).keys == practice.keyring.keys
    with pytest.raises(MalformedInput):
        Keyring.from_wire({"practice": b"short", "keys": []})


def test_shared_kit_opens_with_any_two_of_three_shares_and_not_with_one(
        practice: Practice) -> None:
    import itertools

    from sync_protocol.errors import BadRecoveryShares
    from sync_protocol.recovery import create_shared_recovery_kit, open_shared_recovery_kit

    kit, shares = create_shared_recovery_kit(practice.keyring, kit=KIT, threshold=2, shares=3,
                                             created="2026-11-24")
    assert len(shares) == 3 and "any 2 of 3" in kit
    for pair in itertools.combinations(shares, 2):
        assert open_shared_recovery_kit(kit, list(pair)).keyring.keys == practice.keyring.keys
    with pytest.raises(BadRecoveryShares, match="2 of its 3"):
        open_shared_recovery_kit(kit, shares[:1])
    mistyped = shares[0].split()
    mistyped[5] = "zebra" if mistyped[5] != "zebra" else "acid"
    with pytest.raises(BadRecoveryShares):
        open_shared_recovery_kit(kit, [" ".join(mistyped), shares[1]])
    other_kit, other_shares = create_shared_recovery_kit(practice.keyring, kit=KIT, threshold=2,
                                                         shares=3, created="2026-11-24")
    with pytest.raises(BadRecoveryShares, match="another recovery kit"):
        open_shared_recovery_kit(kit, other_shares[:2])
    with pytest.raises(MalformedInput, match="passphrase"):
        open_shared_recovery_kit(create_recovery_kit(
            practice.keyring, PASSPHRASE, kit=KIT, created="x", **FAST_KDF), shares[:2])
    with pytest.raises(MalformedInput, match="shares"):
        open_recovery_kit(other_kit, PASSPHRASE)
