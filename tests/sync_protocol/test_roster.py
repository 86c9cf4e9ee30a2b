"""The member-signed roster: who may join, who may not, and what the hub cannot forge."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.errors import MalformedInput, RosterBroken, UnknownSite
from sync_protocol.keys import SiteKeyPair, SitePublicKeys
from sync_protocol.kit_keys import KitKeyPair
from sync_protocol.roster import EntryKind, Roster, fold, genesis_entry, sign_entry

PRACTICE = UUID("01936d2e-0000-7000-8000-0000000000aa")
SITES = {n: UUID(f"01936d2e-0000-7000-8000-0000000000b{n}") for n in range(1, 6)}
KEYS = {n: SiteKeyPair.generate(bytes([n]) * 64) for n in SITES}
KIT = KitKeyPair.from_seed(bytes(range(32)))


def pub(n: int) -> SitePublicKeys:
    return KEYS[n].public(SITES[n])


def chain_with(*steps: tuple[str, int, int | None]) -> list[bytes]:
    """Genesis by site 1, then (kind, subject, signer) steps; signer None = the kit.
    Each step is built on the roster the chain so far proves."""
    raws = [sign_entry(genesis_entry(PRACTICE, pub(1), KIT.public(), at_ms=1), KEYS[1]).raw]
    for kind, subject, signer in steps:
        roster = fold(PRACTICE, raws)
        entry_kind = EntryKind(kind)
        entry = roster.next_entry(
            entry_kind, signer=None if signer is None else SITES[signer], at_ms=len(raws),
            site=pub(subject), epoch=roster.epoch + 1 if entry_kind is EntryKind.REVOKE else None)
        raws.append(sign_entry(entry, KIT if signer is None else KEYS[signer]).raw)
    return raws


def approved(roster: Roster) -> set[UUID]:
    return {m.site_id for m in roster.approved()}


def test_members_approve_and_revoke_and_the_epoch_follows() -> None:
    roster = fold(PRACTICE, chain_with(("approve", 2, 1), ("approve", 3, 2), ("revoke", 1, 3)))
    assert approved(roster) == {SITES[2], SITES[3]}
    assert roster.epoch == 2 and roster.ignored == ()
    # A revoked site's keys still verify what it signed before it was revoked.
    roster.directory().get(SITES[1])


def test_a_revoked_site_and_a_stranger_cannot_admit_anyone() -> None:
    raws = chain_with(("approve", 2, 1), ("revoke", 1, 2), ("approve", 4, 1), ("approve", 5, 5))
    roster = fold(PRACTICE, raws)
    assert approved(roster) == {SITES[2]}
    assert roster.ignored == (3, 4)
    with pytest.raises(UnknownSite):
        roster.directory().get(SITES[4])


def test_the_kit_can_admit_when_no_site_is_left() -> None:
    roster = fold(PRACTICE, chain_with(("approve", 2, 1), ("revoke", 1, 2), ("approve", 3, None)))
    assert approved(roster) == {SITES[2], SITES[3]} and roster.ignored == ()


def test_another_kit_cannot_admit() -> None:
    raws = chain_with()
    roster = fold(PRACTICE, raws)
    entry = roster.next_entry(EntryKind.APPROVE, signer=None, at_ms=5, site=pub(2))
    raws.append(sign_entry(entry, KitKeyPair.from_seed(bytes(32))).raw)
    assert fold(PRACTICE, raws).ignored == (1,)


def test_a_replaced_kit_stops_admitting() -> None:
    raws = chain_with()
    new_kit = KitKeyPair.from_seed(bytes([9]) * 32)
    roster = fold(PRACTICE, raws)
    raws.append(sign_entry(roster.next_entry(EntryKind.KIT, signer=SITES[1], at_ms=2,
                                             kit=new_kit.public()), KEYS[1]).raw)
    roster = fold(PRACTICE, raws)
    assert roster.kit == new_kit.public()
    raws.append(sign_entry(roster.next_entry(EntryKind.APPROVE, signer=None, at_ms=3,
                                             site=pub(2)), KIT).raw)
    assert fold(PRACTICE, raws).ignored == (2,)


def test_a_site_cannot_revoke_itself_or_be_approved_twice() -> None:
    roster = fold(PRACTICE, chain_with(("approve", 2, 1), ("revoke", 2, 2), ("approve", 2, 1)))
    assert approved(roster) == {SITES[1], SITES[2]} and roster.ignored == (2, 3)


def test_the_hub_cannot_reorder_drop_or_splice() -> None:
    raws = chain_with(("approve", 2, 1), ("approve", 3, 1))
    with pytest.raises(RosterBroken):
        fold(PRACTICE, [raws[0], raws[2]])
    with pytest.raises(RosterBroken):
        fold(PRACTICE, [raws[0], raws[2], raws[1]])
    with pytest.raises(RosterBroken):
        fold(UUID(int=1), raws)
    other = chain_with(("approve", 4, 1))
    with pytest.raises(RosterBroken):
        fold(PRACTICE, [raws[0], raws[1], other[1]])
    with pytest.raises(RosterBroken, match="no roster"):
        fold(PRACTICE, [])


def test_a_genesis_must_be_signed_by_the_site_it_names() -> None:
    forged = sign_entry(genesis_entry(PRACTICE, pub(1), KIT.public(), at_ms=1), KEYS[2]).raw
    with pytest.raises(RosterBroken, match="genesis"):
        fold(PRACTICE, [forged])


def test_folding_in_steps_equals_folding_at_once() -> None:
    raws = chain_with(("approve", 2, 1), ("revoke", 1, 2), ("approve", 3, 2))
    assert fold(PRACTICE, raws[2:], fold(PRACTICE, raws[:2])) == fold(PRACTICE, raws)


@given(flip=st.integers(min_value=0), index=st.integers(min_value=0, max_value=2))
def test_any_altered_byte_is_refused_or_counts_for_nothing(flip: int, index: int) -> None:
    raws = chain_with(("approve", 2, 1), ("approve", 3, 2))
    honest = fold(PRACTICE, raws)
    raw = bytearray(raws[index])
    raw[flip % len(raw)] ^= 0x01
    raws[index] = bytes(raw)
    try:
        roster = fold(PRACTICE, raws)
    except (RosterBroken, MalformedInput):
        return
    # An altered entry changes its hash, so only the last one can still link; it is then
    # kept but counts for nothing.
    assert index == 2 and roster.ignored == (2,)
    assert approved(roster) == approved(honest) - {SITES[3]}
