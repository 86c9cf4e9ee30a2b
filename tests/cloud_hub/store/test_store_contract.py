"""One contract, two stores: SQLite and real PostgreSQL behave the same."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import asyncpg
import pytest

from cloud_hub.errors import ChainMismatch, EnrollmentRefused, SchemaTooNew
from cloud_hub.heads import pack_dot, unpack_heads
from cloud_hub.ingest import incoming
from cloud_hub.store.base import HubStore, NewSite, SiteStatus
from cloud_hub.store.locator import open_store
from sync_protocol.batch import read_sealed
from sync_protocol.ids import PracticeId, SiteId
from sync_protocol.models import Dot
from tests.cloud_hub.clinic import Clinic, new_clinic
from tests.sync_protocol.conftest import Site

NOW = 1_800_000_000_000


async def enrolled(store: HubStore, clinic: Clinic, site: Site, *, create: bool = False,
                   name: str = "branch") -> None:
    pid = PracticeId(clinic.practice_id)
    if create:
        await store.create_practice(pid, "Clinic", NOW)
    token_hash = uuid.uuid4().bytes * 2
    await store.add_enrollment_token(pid, token_hash, NOW + 60_000, NOW)
    pub = site.keys.public(site.site_id)
    await store.enroll_site(pid, token_hash, NewSite(SiteId(site.site_id), name, pub.verify_key,
                                                     pub.box_key, b"h" * 32), NOW)


async def push(store: HubStore, sealed: bytes):
    return await store.append_batch(incoming(read_sealed(sealed)), NOW)


async def test_schema_is_created_once_and_a_newer_one_is_refused(store_url: str) -> None:
    async with open_store(store_url) as store:
        assert store.schema_version >= 1
    async with open_store(store_url) as store:  # reopening migrates nothing
        assert await store.list_practices() == []
    if store_url.startswith("sqlite:"):
        with sqlite3.connect(store_url[len("sqlite:"):]) as db:
            db.execute("UPDATE schema_meta SET version = 99")
    else:
        conn = await asyncpg.connect(store_url)
        await conn.execute("UPDATE schema_meta SET version = 99")
        await conn.close()
    with pytest.raises(SchemaTooNew) as err:
        async with open_store(store_url):
            pass
    assert "99" in str(err.value) and str(store.schema_version) in str(err.value)


async def test_hub_public_key_is_recorded_once(hub_store: HubStore) -> None:
    assert await hub_store.legacy_hub_seed() is None
    assert await hub_store.bind_hub_key(b"a" * 32, NOW) == b"a" * 32
    assert await hub_store.bind_hub_key(b"b" * 32, NOW) == b"a" * 32
    assert await hub_store.bind_hub_key(b"a" * 32, NOW) == b"a" * 32


async def test_practices_and_operators(hub_store: HubStore) -> None:
    pid = PracticeId(uuid.uuid4())
    assert not await hub_store.practice_exists(pid)
    await hub_store.create_practice(pid, "Sato Clinic", NOW)
    assert await hub_store.practice_exists(pid)
    assert [(p.practice_id, p.name) for p in await hub_store.list_practices()] == [
        (pid, "Sato Clinic")]
    assert await hub_store.head(pid) == 0
    await hub_store.add_operator(b"o" * 32, NOW)
    assert await hub_store.operator_exists(b"o" * 32)
    assert not await hub_store.operator_exists(b"x" * 32)


async def test_first_site_is_approved_later_ones_pending_tokens_work_once(
        hub_store: HubStore) -> None:
    clinic = new_clinic()
    a, b = clinic.new_site(), clinic.new_site()
    await enrolled(hub_store, clinic, a, create=True)
    await enrolled(hub_store, clinic, b)
    pid = PracticeId(clinic.practice_id)
    sites = {s.site_id: s for s in await hub_store.list_sites(pid)}
    assert sites[SiteId(a.site_id)].status is SiteStatus.APPROVED
    assert sites[SiteId(b.site_id)].status is SiteStatus.PENDING
    assert sites[SiteId(b.site_id)].verify_key == b.keys.public(b.site_id).verify_key

    await hub_store.add_enrollment_token(pid, b"t" * 32, NOW + 1000, NOW)
    new = NewSite(SiteId(uuid.uuid4()), "c", b"v" * 32, b"b" * 32, b"c" * 32)
    with pytest.raises(EnrollmentRefused, match="expired"):
        await hub_store.enroll_site(pid, b"t" * 32, new, NOW + 1000)
    await hub_store.enroll_site(pid, b"t" * 32, new, NOW + 999)
    with pytest.raises(EnrollmentRefused, match="already used"):
        await hub_store.enroll_site(pid, b"t" * 32, new, NOW)
    with pytest.raises(EnrollmentRefused, match="not known"):
        await hub_store.enroll_site(pid, b"u" * 32, new, NOW)
    other = PracticeId(uuid.uuid4())
    await hub_store.create_practice(other, "Other", NOW)
    with pytest.raises(EnrollmentRefused, match="not known"):  # a token is bound to its practice
        await hub_store.enroll_site(other, b"t" * 32, new, NOW)
    assert len(await hub_store.list_sites(pid)) == 3


async def test_status_changes_and_revoked_stays_revoked(hub_store: HubStore) -> None:
    clinic = new_clinic()
    a, b = clinic.new_site(), clinic.new_site()
    await enrolled(hub_store, clinic, a, create=True)
    await enrolled(hub_store, clinic, b)
    pid = PracticeId(clinic.practice_id)
    approved = await hub_store.set_site_status(pid, SiteId(b.site_id), SiteStatus.APPROVED,
                                               SiteId(a.site_id))
    assert approved is not None and approved.status is SiteStatus.APPROVED
    assert approved.approved_by == a.site_id
    await hub_store.set_site_status(pid, SiteId(b.site_id), SiteStatus.REVOKED, None)
    again = await hub_store.set_site_status(pid, SiteId(b.site_id), SiteStatus.APPROVED,
                                            SiteId(a.site_id))
    assert again is not None and again.status is SiteStatus.REVOKED
    assert await hub_store.set_site_status(PracticeId(uuid.uuid4()), SiteId(a.site_id),
                                           SiteStatus.REVOKED, None) is None


async def test_append_orders_dedups_and_refuses_gaps_and_forks(hub_store: HubStore) -> None:
    clinic = new_clinic()
    a, b = clinic.new_site(), clinic.new_site()
    await enrolled(hub_store, clinic, a, create=True)
    await enrolled(hub_store, clinic, b)
    pid = PracticeId(clinic.practice_id)
    a1 = clinic.seal(a, 3)
    b1 = clinic.seal(b, 2)
    a2 = clinic.seal(a, 4)
    assert (await push(hub_store, a1)).hub_seq == 1
    assert (await push(hub_store, b1)).hub_seq == 2
    assert (await push(hub_store, a2)).hub_seq == 3
    again = await push(hub_store, a1)
    assert (again.hub_seq, again.duplicate) == (1, True)

    gap_site_seq = a.seq
    clinic.changes(a, 2)  # changes that never get pushed: the next batch has a gap
    gapped = clinic.seal(a, 1, advance=False)
    with pytest.raises(ChainMismatch) as err:
        await push(hub_store, gapped)
    assert err.value.expected_seq == gap_site_seq + 1
    assert err.value.expected_prev_hash == read_sealed(a2).hash
    assert err.value.code == "chain_broken"

    fork_site = Site(a.site_id, a.keys, seq=gap_site_seq, prev_hash=bytes(32))
    with pytest.raises(ChainMismatch, match="expected"):
        await push(hub_store, clinic.seal(fork_site, 1))

    stored = await hub_store.batches_after(pid, 0, 10)
    assert [(s.hub_seq, s.site_id, s.sealed) for s in stored] == [
        (1, a.site_id, a1), (2, b.site_id, b1), (3, a.site_id, a2)]
    assert [s.hub_seq for s in await hub_store.batches_after(pid, 1, 1)] == [2]
    assert await hub_store.head(pid) == 3
    stats = await hub_store.practice_stats(pid)
    assert stats.head == 3
    per_site = {s.site_id: s for s in stats.sites}
    a_stats = per_site[SiteId(a.site_id)]
    assert (a_stats.batches, a_stats.changes, a_stats.next_seq) == (2, 7, 8)


async def test_heads_and_concurrent_edits_from_headers(hub_store: HubStore) -> None:
    clinic = new_clinic()
    a, b = clinic.new_site(), clinic.new_site()
    await enrolled(hub_store, clinic, a, create=True)
    await enrolled(hub_store, clinic, b)
    pid = PracticeId(clinic.practice_id)
    rid = "0193a8f0-0000-7000-8000-000000000001"
    await push(hub_store, clinic.seal(a, changes=clinic.changes(a, 1, rid=rid)))  # a:1
    # b saw a:1 and replaces it: not concurrent.
    await push(hub_store, clinic.seal(b, changes=clinic.changes(
        b, 1, rid=rid, replaces=(Dot(a.site_id, 1),))))  # b:1
    # a edits again having seen only a:1: concurrent with b:1.
    await push(hub_store, clinic.seal(a, changes=clinic.changes(
        a, 1, rid=rid, replaces=(Dot(a.site_id, 1),))))  # a:2
    stats = await hub_store.practice_stats(pid)
    per_site = {s.site_id: s.concurrent_edits for s in stats.sites}
    assert per_site == {a.site_id: 1, b.site_id: 0}
    assert stats.tracked_records == 1


async def test_a_new_record_edited_twice_blindly_in_one_batch(hub_store: HubStore) -> None:
    clinic = new_clinic()
    a = clinic.new_site()
    await enrolled(hub_store, clinic, a, create=True)
    rid = "0193a8f0-0000-7000-8000-000000000002"
    first = clinic.changes(a, 1, rid=rid)
    second = clinic.changes(a, 1, rid=rid)  # did not replace a:1
    third = clinic.changes(a, 1, rid=rid, replaces=(Dot(a.site_id, 1), Dot(a.site_id, 2)))
    await push(hub_store, clinic.seal(a, changes=first + second + third))
    stats = await hub_store.practice_stats(PracticeId(clinic.practice_id))
    assert [(s.concurrent_edits, s.changes) for s in stats.sites] == [(1, 3)]


def test_heads_packing_round_trips() -> None:
    site = uuid.uuid4()
    assert unpack_heads(pack_dot(site, 5) + pack_dot(site, 7)) == {pack_dot(site, 5),
                                                                   pack_dot(site, 7)}


async def test_mailbox_is_per_recipient(hub_store: HubStore) -> None:
    pid, other = PracticeId(uuid.uuid4()), PracticeId(uuid.uuid4())
    to, frm = SiteId(uuid.uuid4()), SiteId(uuid.uuid4())
    await hub_store.create_practice(pid, "p", NOW)
    mail_id = uuid.uuid4()
    await hub_store.post_mail(pid, to, frm, mail_id, b"sealed key", NOW)
    assert [(m.mail_id, m.from_site, m.sealed) for m in await hub_store.list_mail(pid, to)] == [
        (mail_id, frm, b"sealed key")]
    assert await hub_store.list_mail(other, to) == []
    assert not await hub_store.delete_mail(other, to, mail_id)
    assert not await hub_store.delete_mail(pid, frm, mail_id)
    assert await hub_store.delete_mail(pid, to, mail_id)
    assert await hub_store.list_mail(pid, to) == []


async def test_mail_usage_counts_items_and_bytes_of_one_mailbox(hub_store: HubStore) -> None:
    pid, other = PracticeId(uuid.uuid4()), PracticeId(uuid.uuid4())
    to, frm = SiteId(uuid.uuid4()), SiteId(uuid.uuid4())
    await hub_store.create_practice(pid, "p", NOW)
    assert await hub_store.mail_usage(pid, to) == (0, 0)
    first = uuid.uuid4()
    await hub_store.post_mail(pid, to, frm, first, b"x" * 100, NOW)
    await hub_store.post_mail(pid, to, frm, uuid.uuid4(), b"y" * 23, NOW)
    await hub_store.post_mail(pid, frm, to, uuid.uuid4(), b"z" * 7, NOW)
    assert await hub_store.mail_usage(pid, to) == (2, 123)
    assert await hub_store.mail_usage(pid, frm) == (1, 7)
    assert await hub_store.mail_usage(other, to) == (0, 0)
    assert await hub_store.delete_mail(pid, to, first)
    assert await hub_store.mail_usage(pid, to) == (1, 23)


async def test_readers_never_see_a_gap_filled_later(hub_store: HubStore) -> None:
    """8 concurrent pushers; a reader tailing the practice never skips a hub sequence."""
    clinic = new_clinic()
    sites = [clinic.new_site() for _ in range(8)]
    for i, site in enumerate(sites):
        await enrolled(hub_store, clinic, site, create=i == 0)
    pid = PracticeId(clinic.practice_id)
    per_site = 6
    sealed = {s.site_id: [clinic.seal(s, 2) for _ in range(per_site)] for s in sites}
    total = per_site * len(sites)
    done = asyncio.Event()

    async def pusher(site: Site) -> None:
        for raw in sealed[site.site_id]:
            await push(hub_store, raw)

    seen: list[int] = []

    async def reader() -> None:
        cursor = 0
        while len(seen) < total:
            for batch in await hub_store.batches_after(pid, cursor, 1000):
                seen.append(batch.hub_seq)
                cursor = batch.hub_seq
            if done.is_set() and len(seen) < total and cursor == await hub_store.head(pid):
                break
            await asyncio.sleep(0)  # yield to the pushers; progress is awaited, not timed

    async def pushers() -> None:
        await asyncio.gather(*(pusher(s) for s in sites))
        done.set()

    async with asyncio.timeout(60):
        await asyncio.gather(pushers(), reader())
    assert seen == list(range(1, total + 1))
    stored = await hub_store.batches_after(pid, 0, 1000)
    for site in sites:  # each site's batches in its own chain order
        assert [b.sealed for b in stored if b.site_id == site.site_id] == sealed[site.site_id]


async def test_a_pull_answer_is_bounded_in_bytes(hub_store: HubStore) -> None:
    clinic = new_clinic()
    a = clinic.new_site()
    await enrolled(hub_store, clinic, a, create=True)
    pid = PracticeId(clinic.practice_id)
    sealed = [clinic.seal(a, 2) for _ in range(5)]
    for raw in sealed:
        await push(hub_store, raw)
    two = len(sealed[0]) + len(sealed[1])
    got = await hub_store.batches_after(pid, 0, 10, max_bytes=two)
    assert [b.sealed for b in got] == sealed[:2]
    got = await hub_store.batches_after(pid, 0, 10, max_bytes=two + len(sealed[2]) - 1)
    assert [b.hub_seq for b in got] == [1, 2]
    got = await hub_store.batches_after(pid, 0, 10, max_bytes=two + len(sealed[2]))
    assert [b.hub_seq for b in got] == [1, 2, 3]
    # The first batch always comes, however small the bound.
    assert [b.hub_seq for b in await hub_store.batches_after(pid, 3, 10, max_bytes=1)] == [4]
    assert [b.hub_seq for b in await hub_store.batches_after(pid, 0, 2)] == [1, 2]
