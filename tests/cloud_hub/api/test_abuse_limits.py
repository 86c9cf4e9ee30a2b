"""Abuse limits of the hub's real aiohttp server on loopback, as `server.py` runs it
(GuardedAppRunner with the caps of `runner_options`): over-long request lines and headers,
a compressed body, a trickled body, a credential over its rate, guessed credentials, and a
site's mailbox at its quota.  Every refusal is a fixed problem+json body, nothing of the
request reaches the log, and limits recover after their cool-down (the hub's injected
clock: nothing sleeps)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nacl.utils
import orjson
import pytest
from aiohttp import web

from cloud_hub.api.app import build_app, runner_options
from cloud_hub.api.context import HubContext
from cloud_hub.api.http_guard import GuardedAppRunner
from cloud_hub.config import parse_hub_config
from cloud_hub.feed import Feed
from cloud_hub.keyprint import load_signing_key
from cloud_hub.notifier import Notifier
from cloud_hub.store.locator import open_store
from sync_protocol.ids import PracticeId, SiteId
from tests.cloud_hub.harness import Clock, Harness, Member, add_operator, hub_seed

CANARY = "Zzyzxcanary"
LIMITS: dict[str, Any] = {"max_line_bytes": 2048, "max_field_bytes": 2048, "max_headers": 20,
                          "body_timeout_s": 1, "rate_per_s": 1, "rate_burst": 20,
                          "login_failures": 3, "lockout_s": 60, "mailbox_max_items": 2,
                          "mailbox_max_bytes": 3000}


@pytest.fixture
async def hub(tmp_path: Any) -> AsyncIterator[tuple[Harness, int]]:
    clock = Clock()
    config = parse_hub_config({"store": f"sqlite:{tmp_path / 'hub.db'}", **LIMITS})
    async with open_store(config.store) as store:
        signing_key = await load_signing_key(store, tmp_path / "hub.key", hub_seed(), clock())
        notifier = Notifier()
        ctx = HubContext(config, store, notifier, Feed(store, notifier), signing_key, clock,
                         nacl.utils.random)
        runner = GuardedAppRunner(build_app(ctx), access_log=None, auto_decompress=False,
                                  **runner_options(config))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
                yield Harness(session, store, clock, await add_operator(store)), port
        finally:
            await runner.cleanup()


async def raw_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):  # a deadline against a hang, not a wait
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_over_long_lines_and_headers_get_a_fixed_431(
        hub: tuple[Harness, int], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h, port = hub
    status, body = await raw_exchange(port, f"GET /v1/batches?after=0&x={CANARY}{'x' * 4000} "
                                      "HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    assert status == 431 and orjson.loads(body)["code"] == "headers_too_large"
    assert CANARY.encode() not in body
    status, body = await raw_exchange(port, f"GET /v1/me HTTP/1.1\r\nHost: a\r\nAuthorization: "
                                      f"Bearer {h.operator}{'y' * 3000}\r\n\r\n".encode())
    assert status == 431 and h.operator.encode() not in body
    status, body = await raw_exchange(port, f"GET /{CANARY}\x01 HTTP/1.1\r\n\r\n".encode())
    assert status == 400 and orjson.loads(body)["code"] == "bad_request"
    async with h.client.get("/healthz") as resp:
        assert resp.status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert CANARY not in caplog.text and h.operator not in caplog.text


async def test_compressed_and_trickled_bodies(hub: tuple[Harness, int]) -> None:
    h, port = hub
    clinic, (a, b) = await h.practice_with_sites(2)
    async with h.client.post(f"/v1/mailbox/{b.site.site_id}", data=b"not gzip",
                             headers={**a.headers, "Content-Encoding": "gzip"}) as resp:
        assert resp.status == 415
        assert (await resp.json(content_type=None))["code"] == "unsupported_media_type"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"POST /v1/mailbox/{b.site.site_id} HTTP/1.1\r\nHost: a\r\n"
                     f"Authorization: Bearer {a.credential}\r\nContent-Length: 900\r\n\r\n"
                     "sealed".encode())
        await writer.drain()
        async with asyncio.timeout(15):  # the bound is 1 s; this only catches a hang
            answer = await reader.read()  # EOF: the hub closed the connection
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"code":"body_timeout"' in answer
    usage = await h.store.mail_usage(PracticeId(clinic.practice_id), SiteId(b.site.site_id))
    assert usage == (0, 0)


async def test_rate_limit_per_credential_answers_429_and_recovers(
        hub: tuple[Harness, int]) -> None:
    h, _ = hub
    _, (a, b) = await h.practice_with_sites(2)
    statuses = []
    for _ in range(25):
        async with h.client.get("/v1/me", headers=a.headers) as resp:
            statuses.append(resp.status)
            if resp.status == 429:
                assert resp.headers["Retry-After"] == "1"
                body = await resp.json(content_type=None)
                assert body["code"] == "too_many_requests" and body["retryable"]
    assert 429 in statuses and statuses[0] == 200
    async with h.client.get("/v1/me", headers=b.headers) as resp:
        assert resp.status == 200  # another site has its own bucket
    h.clock.now += 2000
    async with h.client.get("/v1/me", headers=a.headers) as resp:
        assert resp.status == 200


async def test_guessed_credentials_lock_the_account_out_and_it_recovers(
        hub: tuple[Harness, int], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    h, _ = hub
    _, (a, _b) = await h.practice_with_sites(2)
    wrong = a.credential.rsplit(".", 1)[0] + ".guess" + CANARY
    for _ in range(3):
        async with h.client.get("/v1/me", headers={"Authorization": f"Bearer {wrong}"}) as r:
            assert r.status == 401
    async with h.client.get("/v1/me", headers=a.headers) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "60"
        assert "locked out" in (await resp.json(content_type=None))["detail"]
    h.clock.now += 59_000
    async with h.client.get("/v1/me", headers=a.headers) as resp:
        assert resp.status == 429
    h.clock.now += 2_000
    async with h.client.get("/v1/me", headers=a.headers) as resp:
        assert resp.status == 200
    assert f"site {a.site.site_id}" in caplog.text and "locked out for 60 s" in caplog.text
    assert CANARY not in caplog.text and a.credential.rsplit(".", 1)[1] not in caplog.text


async def test_mailbox_quota_per_site(hub: tuple[Harness, int]) -> None:
    h, _ = hub
    clinic, (a, b, c) = await h.practice_with_sites(3)

    async def post(sender: Member, to: Member, size: int) -> tuple[int, dict[str, Any]]:
        async with h.client.post(f"/v1/mailbox/{to.site.site_id}", data=b"s" * size,
                                 headers=sender.headers) as resp:
            return resp.status, await resp.json(content_type=None)

    assert (await post(a, b, 100))[0] == 201
    assert (await post(c, b, 100))[0] == 201
    status, body = await post(a, b, 100)
    assert status == 409 and body["code"] == "mailbox_full" and body["retryable"]
    assert str(b.site.site_id) in body["detail"] and "2 items" in body["detail"]
    assert (await post(a, c, 100))[0] == 201  # another site's mailbox has room
    async with h.client.get("/v1/mailbox", headers=b.headers) as resp:
        items = (await resp.json())["items"]
    first, second = (m["mail_id"] for m in items)
    async with h.client.delete(f"/v1/mailbox/{first}", headers=b.headers) as r:
        assert r.status == 204
    assert (await post(a, b, 100))[0] == 201  # collected mail makes room again
    usage = await h.store.mail_usage(PracticeId(clinic.practice_id), SiteId(b.site.site_id))
    assert usage == (2, 200)
    async with h.client.delete(f"/v1/mailbox/{second}", headers=b.headers) as r:
        assert r.status == 204
    assert (await post(a, b, 2800))[0] == 201  # 100 + 2800 bytes: within 3000
    async with h.client.get("/v1/mailbox", headers=b.headers) as resp:
        small = min((await resp.json())["items"], key=lambda m: len(m["sealed"]))
    async with h.client.delete(f"/v1/mailbox/{small['mail_id']}", headers=b.headers) as r:
        assert r.status == 204
    status, body = await post(a, b, 201)  # 2800 + 201 > 3000 bytes
    assert status == 409 and body["code"] == "mailbox_full"


async def test_trickled_headers_are_cut_off(hub: tuple[Harness, int]) -> None:
    _, port = hub
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        await writer.drain()
        async with asyncio.timeout(15):  # the bound is 1 s; this only catches a hang
            answer = await reader.read()  # EOF: the hub closed the connection
    finally:
        writer.close()
    assert answer == b""
