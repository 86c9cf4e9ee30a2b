"""The hub stores the member-signed roster and the kit-sealed epochs; it cannot add to them."""

from __future__ import annotations

import base64
from typing import Any

from sync_protocol.ids import PracticeId, SiteId
from sync_protocol.keys import SiteKeyPair
from sync_protocol.kit_keys import KitKeyPair, seal_epoch_for_kit
from sync_protocol.roster import EntryKind, SignedEntry, fold, genesis_entry, sign_entry
from tests.cloud_hub.clinic import Clinic
from tests.cloud_hub.harness import Harness, Member

KIT = KitKeyPair.from_seed(bytes(range(32)))


def body(signed: SignedEntry) -> dict[str, str]:
    return {"entry": base64.b64encode(signed.raw).decode()}


async def post(harness: Harness, member: Member, signed: SignedEntry) -> Any:
    return await harness.client.post("/v1/roster", json=body(signed), headers=member.headers)


async def entries(harness: Harness, member: Member) -> list[bytes]:
    resp = await harness.client.get("/v1/roster", headers=member.headers)
    assert resp.status == 200, await resp.text()
    return [base64.b64decode(e) for e in (await resp.json())["entries"]]


async def genesis(harness: Harness) -> tuple[Any, Member, Member]:
    """A practice whose first site wrote the genesis, and a second site, pending."""
    pid, token = await harness.create_practice()
    clinic = Clinic(pid)
    first = await harness.enroll(clinic, token, "main")
    second = await harness.enroll(clinic, await harness.token(pid, first.headers), "branch")
    assert second.status == "pending"
    signed = sign_entry(genesis_entry(pid, first.site.keys.public(first.site.site_id),
                                      KIT.public(), at_ms=1), first.site.keys)
    resp = await post(harness, first, signed)
    assert resp.status == 201, await resp.text()
    return clinic, first, second


def approval(roster_raws: list[bytes], pid: Any, subject: Member,
             signer: SiteKeyPair | KitKeyPair, signer_id: Any) -> SignedEntry:
    roster = fold(pid, roster_raws)
    return sign_entry(roster.next_entry(EntryKind.APPROVE, signer=signer_id, at_ms=2,
                                        site=subject.site.keys.public(subject.site.site_id)),
                      signer)


async def test_a_member_signed_approval_is_stored_and_approves_the_site(harness: Harness
                                                                        ) -> None:
    clinic, first, second = await genesis(harness)
    raws = await entries(harness, second)  # a pending site may read the roster
    signed = approval(raws, clinic.practice_id, second, first.site.keys, first.site.site_id)
    resp = await post(harness, first, signed)
    assert resp.status == 201, await resp.text()
    assert await entries(harness, first) == [*raws, signed.raw]
    site = await harness.store.get_site(PracticeId(clinic.practice_id),
                                        SiteId(second.site.site_id))
    assert site is not None and site.status.value == "approved"


async def test_a_taken_position_is_roster_moved_and_nothing_changes(harness: Harness) -> None:
    clinic, first, _ = await genesis(harness)
    raws = await entries(harness, first)
    stale = sign_entry(genesis_entry(clinic.practice_id,
                                     first.site.keys.public(first.site.site_id), KIT.public(),
                                     at_ms=9), first.site.keys)
    resp = await post(harness, first, stale)
    assert resp.status == 409 and (await resp.json())["code"] == "roster_moved"
    assert (await resp.json())["head_seq"] == 0
    assert await entries(harness, first) == raws


async def test_the_hub_stores_no_entry_without_a_members_signature(harness: Harness) -> None:
    clinic, first, second = await genesis(harness)
    raws = await entries(harness, first)
    stranger = SiteKeyPair.generate(bytes(range(64)))
    forged = approval(raws, clinic.practice_id, second, stranger, second.site.site_id)
    resp = await post(harness, first, forged)  # even posted by an approved site
    assert resp.status == 403, await resp.text()
    by_kit = approval(raws, clinic.practice_id, first, KitKeyPair.from_seed(bytes(32)), None)
    assert (await post(harness, first, by_kit)).status == 403
    assert await entries(harness, first) == raws
    site = await harness.store.get_site(PracticeId(clinic.practice_id),
                                        SiteId(second.site.site_id))
    assert site is not None and site.status.value == "pending"


async def test_a_pending_site_may_post_only_its_own_kit_signed_approval(harness: Harness
                                                                        ) -> None:
    clinic, first, second = await genesis(harness)
    raws = await entries(harness, second)
    by_member = approval(raws, clinic.practice_id, second, first.site.keys, first.site.site_id)
    resp = await post(harness, second, by_member)
    assert resp.status == 403 and "recovery kit" in (await resp.json())["message"]
    by_kit = approval(raws, clinic.practice_id, second, KIT, None)
    assert (await post(harness, second, by_kit)).status == 201
    site = await harness.store.get_site(PracticeId(clinic.practice_id),
                                        SiteId(second.site.site_id))
    assert site is not None and site.status.value == "approved"


async def test_an_entry_naming_other_keys_than_the_site_registered_is_refused(
        harness: Harness) -> None:
    clinic, first, second = await genesis(harness)
    raws = await entries(harness, first)
    roster = fold(clinic.practice_id, raws)
    impostor = SiteKeyPair.generate(bytes(range(1, 65))).public(second.site.site_id)
    signed = sign_entry(roster.next_entry(EntryKind.APPROVE, signer=first.site.site_id,
                                          at_ms=2, site=impostor), first.site.keys)
    resp = await post(harness, first, signed)
    assert resp.status == 400 and "other keys" in (await resp.json())["message"]
    assert await entries(harness, first) == raws


async def test_kit_sealed_epochs_only_for_the_rosters_kit_and_their_own_epoch(
        harness: Harness) -> None:
    clinic, first, _ = await genesis(harness)
    key = clinic.keyring.current
    sealed = seal_epoch_for_kit(key, practice_id=clinic.practice_id,
                                sender_id=first.site.site_id, sender_keys=first.site.keys,
                                kit=KIT.public())
    payload = {"kit_fingerprint": sealed.kit_fingerprint,
               "sealed": base64.b64encode(sealed.sealed).decode()}
    wrong_epoch = await harness.client.put(f"/v1/kit-epochs/{key.epoch + 1}", json=payload,
                                           headers=first.headers)
    assert wrong_epoch.status == 400
    other_kit = {**payload, "kit_fingerprint": KitKeyPair.from_seed(bytes(32)).public()
                 .fingerprint}
    assert (await harness.client.put(f"/v1/kit-epochs/{key.epoch}", json=other_kit,
                                     headers=first.headers)).status == 400
    assert (await harness.client.put(f"/v1/kit-epochs/{key.epoch}", json=payload,
                                     headers=first.headers)).status == 204
    listed = await (await harness.client.get("/v1/kit-epochs", headers=first.headers)).json()
    assert [(i["epoch"], base64.b64decode(i["sealed"])) for i in listed["items"]] == [
        (key.epoch, sealed.sealed)]


async def test_an_entry_for_a_site_not_registered_here_is_kept_for_a_rebuilt_hub(
        harness: Harness) -> None:
    """A site gives a rebuilt hub the entries it holds before every site re-enrolled."""
    clinic, first, _ = await genesis(harness)
    raws = await entries(harness, first)
    elsewhere = clinic.new_site()
    roster = fold(clinic.practice_id, raws)
    signed = sign_entry(roster.next_entry(
        EntryKind.APPROVE, signer=first.site.site_id, at_ms=2,
        site=elsewhere.keys.public(elsewhere.site_id)), first.site.keys)
    assert (await post(harness, first, signed)).status == 201
    assert await entries(harness, first) == [*raws, signed.raw]
    assert await harness.store.get_site(PracticeId(clinic.practice_id),
                                        SiteId(elsewhere.site_id)) is None
