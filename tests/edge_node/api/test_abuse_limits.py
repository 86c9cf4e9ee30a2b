"""Abuse limits of a real edge server on loopback, as `edge serve` runs it (GuardedAppRunner
with the caps of `runner_options`, our access log on): an over-long request line or header,
too many headers, a body that is not the gzip it claims, a trickled body, a token over its
rate, and a client address guessing tokens.  Every answer is a fixed OperationOutcome,
nothing of the request reaches any log, and limits recover after their cool-down (a fake
monotonic clock: nothing sleeps)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from edge_node.api.app import AccessLogger, build_app, runner_options
from edge_node.api.http_guard import GuardedAppRunner
from edge_node.config import EdgeConfig
from edge_node.node import Edge
from tests.edge_node.conftest import make_data_dir, wall_ms

CANARY = "Zzyzxcanary"


@dataclass
class Served:
    base: str
    port: int
    tokens: dict[str, str]
    now: list[float]

    def auth(self, role: str = "clinician") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


async def _serve(tmp_path: Path, **limits: float) -> AsyncIterator[Served]:
    data = tmp_path / "edge"
    tokens, _ = make_data_dir(data)
    config = replace(EdgeConfig(data, max_body_bytes=64 * 1024), **limits)  # type: ignore[arg-type]
    now = [1000.0]
    async with Edge.open(config, clock=wall_ms, entropy=os.urandom) as edge:
        runner = GuardedAppRunner(build_app(edge, monotonic=lambda: now[0]),
                                  access_log_class=AccessLogger,
                                  access_log=logging.getLogger("edge_node.access"),
                                  **runner_options(config))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            yield Served(f"http://127.0.0.1:{port}", port, tokens, now)
        finally:
            await runner.cleanup()
            await edge.writer.wait_idle()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async for s in _serve(tmp_path, max_line_bytes=2048, max_field_bytes=2048, max_headers=20,
                          body_timeout_s=0.5, rate_per_s=1.0, rate_burst=5,
                          login_failures=3, lockout_s=60.0):
        yield s


async def raw_exchange(port: int, request: bytes, *, timeout_s: float = 10.0
                       ) -> tuple[int, bytes]:
    """Send `request` as raw bytes; (status, body) of the answer (read to EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def assert_fixed_outcome(body: bytes, status_word: str) -> None:
    outcome = orjson.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert status_word in outcome["issue"][0]["diagnostics"]


async def test_over_long_request_line_and_headers_get_431_and_leak_nothing(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = served.tokens["clinician"]
    line = f"GET /fhir/Patient?name={CANARY}{'x' * 4000} HTTP/1.1\r\nHost: a\r\n\r\n"
    status, body = await raw_exchange(served.port, line.encode())
    assert status == 431
    assert_fixed_outcome(body, "longer than this edge accepts")
    assert CANARY.encode() not in body

    header = (f"GET /fhir/Patient?name={CANARY} HTTP/1.1\r\nHost: a\r\n"
              f"Authorization: Bearer {token}{'y' * 3000}\r\n\r\n")
    status, body = await raw_exchange(served.port, header.encode())
    assert status == 431 and token.encode() not in body

    many = "GET /fhir/metadata HTTP/1.1\r\nHost: a\r\n" + "".join(
        f"X-{i}: {CANARY}\r\n" for i in range(40)) + "\r\n"
    status, _ = await raw_exchange(served.port, many.encode())
    assert status == 431

    status, body = await raw_exchange(served.port, f"GET /{CANARY}\x01 HTTP/1.1\r\n\r\n".encode())
    assert status == 400 and CANARY.encode() not in body

    # the server still serves, and the access log line of each refusal carries no request
    async with aiohttp.ClientSession() as session, \
            session.get(f"{served.base}/fhir/metadata", headers=served.auth()) as resp:
        assert resp.status == 200
    assert "GET /fhir/metadata 200" in caplog.text
    assert "- - 431" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert CANARY not in caplog.text and token not in caplog.text
    assert token[:8] not in caplog.text


async def test_a_body_that_is_not_its_content_encoding_is_a_400(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{served.base}/fhir/Patient", data=b"not gzip at all",
                                headers={**served.auth(), "Content-Encoding": "gzip",
                                         "Content-Type": "application/fhir+json"}) as resp:
            assert resp.status == 400
            outcome = await resp.json(content_type=None)
        assert outcome["resourceType"] == "OperationOutcome"
        assert "decoded" in str(outcome) and "Content-Encoding" in str(outcome)
        async with session.get(f"{served.base}/fhir/Patient", headers=served.auth()) as resp:
            assert not (await resp.json(content_type=None)).get("entry")  # nothing written


async def test_a_trickled_body_is_cut_off_with_408(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(f"POST /fhir/Patient HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
                     f"{served.tokens['clinician']}\r\nContent-Type: application/fhir+json\r\n"
                     f"Content-Length: 5000\r\n\r\n{{\"resourceType\"".encode())
        await writer.drain()
        async with asyncio.timeout(10):  # the bound is 0.5 s; the deadline only catches a hang
            answer = await reader.read()  # EOF: the edge closed the connection
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"body_timeout_s" in answer


async def test_rate_limit_per_token_answers_429_and_recovers(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        async def get(role: str = "clinician") -> aiohttp.ClientResponse:
            async with session.get(f"{served.base}/fhir/metadata",
                                   headers=served.auth(role)) as resp:
                await resp.read()
                return resp

        assert [(await get()).status for _ in range(5)] == [200] * 5
        over = await get()
        assert over.status == 429 and over.headers["Retry-After"] == "1"
        assert (await get("clerk")).status == 200  # another token has its own bucket
        served.now[0] += 1.0
        assert (await get()).status == 200
        assert (await get()).status == 429


async def test_lockout_after_failed_logins_answers_429_and_ends_after_the_cool_down(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    wrong = "cse_wrong-token-" + CANARY
    async with aiohttp.ClientSession() as session:
        async def status(token: str) -> tuple[int, dict[str, str], bytes]:
            async with session.get(f"{served.base}/fhir/Patient?name={CANARY}",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                return resp.status, dict(resp.headers), await resp.read()

        assert [(await status(wrong))[0] for _ in range(3)] == [401, 401, 401]
        code, headers, body = await status(served.tokens["clinician"])
        assert code == 429 and int(headers["Retry-After"]) == 60
        assert b"locked out" in body and b"chartsync edge user token" in body
        served.now[0] += 59.0
        assert (await status(served.tokens["clinician"]))[0] == 429
        served.now[0] += 1.5
        assert (await status(served.tokens["clinician"]))[0] == 200
        assert (await status(wrong))[0] == 401  # the count started again
    assert "refused a bearer token (sha256 " in caplog.text and "locked out for 60 s" in caplog.text
    assert wrong not in caplog.text and "wrong-token" not in caplog.text
    assert CANARY not in caplog.text


async def test_trickled_headers_are_cut_off_too(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(b"GET /fhir/metadata HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        await writer.drain()
        async with asyncio.timeout(10):  # the bound is 0.5 s; this only catches a hang
            answer = await reader.read()  # EOF: the edge closed the connection
    finally:
        writer.close()
    assert answer == b""
