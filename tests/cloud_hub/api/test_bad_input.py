"""Every refusal answers the right status as problem details, and stores nothing."""

from __future__ import annotations

import functools
import gzip
import uuid
from collections.abc import AsyncIterator, Callable

import msgpack
import nacl.utils

from cloud_hub.api.context import HUB
from sync_protocol.batch import seal_batch
from sync_protocol.canonical import canonical_pack, unpack
from sync_protocol.framing import MAGIC, NONCE_BYTES, SIGNATURE_BYTES
from sync_protocol.ids import PracticeId
from sync_protocol.keys import SiteKeyPair
from tests.cloud_hub.clinic import Clinic, new_clinic
from tests.cloud_hub.harness import Harness, Member
from tests.sync_protocol.conftest import BASE_MS


async def refused(harness: Harness, clinic: Clinic, status: int | tuple[int, ...],
                  code: str | None,
                  send: Callable[[], object]) -> dict[str, object]:
    """Run `send`; assert the status, problem+json, and that the store did not change."""
    before = (await harness.stored(clinic.practice_id),
              await harness.store.head(PracticeId(clinic.practice_id)))
    resp = await send()  # type: ignore[misc]
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status in statuses, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, object] = await resp.json()
    if code is not None:
        assert body["code"] == code, body
    assert body["detail"] and body["hint"] and body["status"] == resp.status
    after = (await harness.stored(clinic.practice_id),
             await harness.store.head(PracticeId(clinic.practice_id)))
    assert after == before
    return body


def reframe(sealed: bytes, **header_changes: object) -> bytes:
    """The same sealed batch with header fields replaced (signature left as it was)."""
    header_len = int.from_bytes(sealed[4:8], "big")
    header = unpack(sealed[8:8 + header_len], what="h", max_len=1 << 30)
    header.update(header_changes)
    packed = canonical_pack(header)
    return MAGIC + len(packed).to_bytes(4, "big") + packed + sealed[8 + header_len:]


async def setup(harness: Harness) -> tuple[Clinic, Member, Member]:
    clinic, (a, b) = await harness.practice_with_sites()
    assert (await harness.push(a, clinic.seal(a.site, 2))).status == 200
    return clinic, a, b


async def test_malformed_bodies(harness: Harness) -> None:
    clinic, a, _ = await setup(harness)
    await refused(harness, clinic, 400, "malformed", lambda: harness.push(a, b"not a batch"))
    await refused(harness, clinic, 400, "malformed", lambda: harness.push(a, b""))
    good = clinic.seal(a.site, 1, advance=False)
    await refused(harness, clinic, 400, "malformed", lambda: harness.push(a, good[:-100]))
    await refused(harness, clinic, 400, "bad_request", lambda: harness.client.post(
        "/v1/enroll", data=b"{not json", headers={"Content-Type": "application/json"}))
    await refused(harness, clinic, 400, "bad_request", lambda: harness.client.post(
        "/v1/enroll", json={"token": "x", "name": "n", "verify_key": "!!", "box_key": ""}))
    await refused(harness, clinic, 400, "bad_request", lambda: harness.client.get(
        "/v1/batches", params={"after": "minus one"}, headers=a.headers))


async def test_oversized_bodies_are_refused_before_reading(harness: Harness) -> None:
    clinic, a, _ = await setup(harness)
    big = b"\0" * (harness.client.app[HUB].config.max_batch_bytes + 1)
    await refused(harness, clinic, 413, "too_large", lambda: harness.push(a, big))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(80):
            yield b"\0" * 65536

    await refused(harness, clinic, 413, "too_large", lambda: harness.client.post(
        "/v1/batches", data=chunks(), headers=a.headers))
    await refused(harness, clinic, 413, "too_large", lambda: harness.client.post(
        "/v1/enroll", data=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"}))


async def test_compressed_bodies_are_never_expanded(harness: Harness) -> None:
    clinic, a, _ = await setup(harness)
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 200_000
    await refused(harness, clinic, 415, "unsupported_media_type", lambda: harness.push(
        a, bomb, **{"Content-Encoding": "gzip"}))
    sealed = clinic.seal(a.site, 1, advance=False)
    await refused(harness, clinic, 415, "unsupported_media_type", lambda: harness.push(
        a, gzip.compress(sealed), **{"Content-Encoding": "gzip"}))


async def test_headers_that_claim_absurd_sizes_are_refused_by_limits(harness: Harness) -> None:
    clinic, a, _ = await setup(harness)
    sealed = clinic.seal(a.site, 1, advance=False)
    await refused(harness, clinic, 400, "malformed",
                  lambda: harness.push(a, reframe(sealed, body=1 << 40)))
    many = 20_000  # more changes than the hub's limit of 10,000
    header_len = int.from_bytes(sealed[4:8], "big")
    header = unpack(sealed[8:8 + header_len], what="h", max_len=1 << 30)
    token = header["changes"][0][0]
    await refused(harness, clinic, 413, "too_large", lambda: harness.push(a, reframe(
        sealed, seq=[3, 3 + many - 1], changes=[[token, []]] * many)))
    # A length prefix claiming a 4 GiB header.
    lying = MAGIC + (0xFFFFFFF0).to_bytes(4, "big") + sealed[8:]
    await refused(harness, clinic, 413, "too_large", lambda: harness.push(a, lying))


async def test_tampered_bytes_and_wrong_signatures(harness: Harness) -> None:
    clinic, a, _ = await setup(harness)
    sealed = clinic.seal(a.site, 1, advance=False)
    body_at = 8 + int.from_bytes(sealed[4:8], "big") + NONCE_BYTES + 5
    for position in (body_at, len(sealed) - SIGNATURE_BYTES + 3, 8 + NONCE_BYTES):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        # A flipped header byte may break parsing (400) or only the signature (401).
        await refused(harness, clinic, (401,) if position != 8 + NONCE_BYTES else (400, 401),
                      None, functools.partial(harness.push, a, bytes(tampered)))
    forged = seal_batch(practice_id=clinic.practice_id, site_id=a.site.site_id,
                        site_keys=SiteKeyPair.generate(nacl.utils.random(64)),
                        key=clinic.keyring.current, changes=clinic.changes(a.site, 1),
                        prev_hash=a.site.prev_hash, batch_id=uuid.uuid4())
    await refused(harness, clinic, 401, "bad_signature", lambda: harness.push(a, forged))
    # Header edited after signing (an attacker shifting the sequence).
    await refused(harness, clinic, 401, "bad_signature",
                  lambda: harness.push(a, reframe(sealed, epoch=2)))


async def test_replays(harness: Harness) -> None:
    clinic, a, _ = await setup(harness)
    first_hub = await harness.stored(clinic.practice_id)
    second = clinic.seal(a.site, 1)
    assert (await harness.push(a, second)).status == 200
    # The very same bytes again: the same answer, nothing stored twice.
    resp = await harness.push(a, first_hub[0])
    assert resp.status == 200 and (await resp.json())["hub_seq"] == 1
    assert (await resp.json())["duplicate"] is True
    assert len(await harness.stored(clinic.practice_id)) == 2
    # An old sequence re-sealed (different bytes): a fork, refused with where to resume.
    from tests.sync_protocol.conftest import Site
    old = Site(a.site.site_id, a.site.keys, seq=0, prev_hash=bytes(32))
    body = await refused(harness, clinic, 409, "chain_broken",
                         lambda: harness.push(a, clinic.seal(old, 1)))
    assert body["expected_seq"] == 4


async def test_wrong_practice_unknown_origin_and_forged_relay(harness: Harness) -> None:
    clinic, a, b = await setup(harness)
    other = new_clinic()
    foreign = seal_batch(practice_id=other.practice_id, site_id=a.site.site_id,
                         site_keys=a.site.keys, key=other.keyring.current,
                         changes=clinic.changes(a.site, 1), prev_hash=a.site.prev_hash,
                         batch_id=uuid.uuid4())
    await refused(harness, clinic, 403, "wrong_origin", lambda: harness.push(a, foreign))
    # A batch of a site the practice never registered, relayed by a.
    stranger = clinic.new_site()
    await refused(harness, clinic, 403, "wrong_origin",
                  lambda: harness.push(a, clinic.seal(stranger, 1, advance=False)))
    # A pending site was never approved: nobody may relay for it.
    c = await harness.enroll(clinic, await harness.token(clinic.practice_id, a.headers))
    await refused(harness, clinic, 403, "wrong_origin",
                  lambda: harness.push(a, clinic.seal(c.site, 1, advance=False)))
    relayed = clinic.seal(b.site, 1)  # b's next batch, kept by a (it pulled it)
    # b's batch relayed by a but signed with another key: a forgery, refused.
    forged = seal_batch(practice_id=clinic.practice_id, site_id=b.site.site_id,
                        site_keys=SiteKeyPair.generate(nacl.utils.random(64)),
                        key=clinic.keyring.current, changes=clinic.changes(b.site, 1),
                        prev_hash=b.site.prev_hash, batch_id=uuid.uuid4())
    await refused(harness, clinic, 401, "bad_signature", lambda: harness.push(a, forged))
    # b's own batch relayed by a is accepted (rebuilding a hub, #5): the receipt names b.
    resp = await harness.push(a, relayed)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["receipt"]["site_id"] == str(b.site.site_id)


async def test_revoked_and_pending_sites(harness: Harness) -> None:
    clinic, a, b = await setup(harness)
    c = await harness.enroll(clinic, await harness.token(clinic.practice_id, a.headers))
    assert c.status == "pending"
    await refused(harness, clinic, 403, "site_pending",
                  lambda: harness.push(c, clinic.seal(c.site, 1, advance=False)))
    await refused(harness, clinic, 403, "site_pending",
                  lambda: harness.client.get("/v1/batches", headers=c.headers))
    await harness.client.post(f"/v1/sites/{b.site.site_id}/revoke", headers=a.headers)
    await refused(harness, clinic, 403, "site_revoked",
                  lambda: harness.push(b, clinic.seal(b.site, 1, advance=False)))
    await refused(harness, clinic, 403, "site_revoked", lambda: harness.client.post(
        f"/v1/sites/{c.site.site_id}/approve", headers=b.headers))
    # A revoked site cannot be approved back by anyone.
    await refused(harness, clinic, 403, "forbidden", lambda: harness.client.post(
        f"/v1/sites/{b.site.site_id}/approve", headers=a.headers))


async def test_expired_and_reused_enrollment_tokens(harness: Harness) -> None:
    clinic, a, _ = await setup(harness)
    token = await harness.token(clinic.practice_id, a.headers)
    sites_before = len((await (await harness.client.get(
        "/v1/sites", headers=a.headers)).json())["sites"])
    harness.clock.now += 25 * 3600 * 1000  # past the default lifetime of one day
    await refused(harness, clinic, 401, "enrollment_refused",
                  lambda: harness.enroll_raw(clinic.new_site(), token))
    harness.clock.now -= 25 * 3600 * 1000
    fresh = await harness.token(clinic.practice_id, a.headers)
    await harness.enroll(clinic, fresh)
    body = await refused(harness, clinic, 401, "enrollment_refused",
                         lambda: harness.enroll_raw(clinic.new_site(), fresh))
    assert "already used" in str(body["detail"])
    await refused(harness, clinic, 401, "enrollment_refused",
                  lambda: harness.enroll_raw(clinic.new_site(), "cse_garbage"))
    sites_after = len((await (await harness.client.get(
        "/v1/sites", headers=a.headers)).json())["sites"])
    assert sites_after == sites_before + 1  # only the one good enrollment


async def test_clock_too_far_ahead(harness: Harness) -> None:
    clinic, a, _ = await setup(harness)
    ahead = clinic.seal(a.site, 1, hlc_ms=harness.clock.now + 10 * 60 * 1000, advance=False)
    await refused(harness, clinic, 400, "clock_too_far_ahead", lambda: harness.push(a, ahead))


def test_reframe_keeps_layout() -> None:
    clinic = new_clinic()
    site = clinic.new_site()
    sealed = clinic.seal(site, 1)
    assert reframe(sealed) == sealed
    assert msgpack.unpackb(sealed[8:8 + int.from_bytes(sealed[4:8], "big")])["seq"] == [1, 1]
    assert BASE_MS > 0


async def test_a_method_a_route_does_not_take_is_405_with_allow(harness: Harness) -> None:
    for method, path, allowed in (("DELETE", "/v1/roster", {"GET", "POST"}),
                                  ("PUT", "/v1/batches", {"GET", "POST"}),
                                  ("POST", "/healthz", {"GET"})):
        resp = await harness.client.request(method, path)
        assert resp.status == 405, path
        assert allowed <= {m.strip() for m in resp.headers["Allow"].split(",")}, path
        assert (await resp.json())["code"] == "method_not_allowed"
