"""A hostile run against a real edge process and a real hub process, then a scan of every
log they wrote: no canary patient name and no token (nor a fragment of one) may appear.

The attacks: over-long request lines with the canary name in the query, over-long and too
many headers carrying tokens, bodies that claim gzip and are not, wrong tokens (enough for
a lockout), a trickled body, and malformed request lines — each also answered with its
fixed status.  The edge runs with `--access-log`, which must survive all of it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import aiohttp

from chartsync.local_practice import ROOT, Child, free_port

CANARY = "Kanariyamadaxq"


def chartsync(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "chartsync", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


async def raw(port: int, request: bytes, *, then: bytes = b"") -> bytes:
    """Send `request` (and, in a second write, `then`); the answer up to EOF or a deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        if then:
            writer.write(then)
            await writer.drain()
        async with asyncio.timeout(15):  # the servers' bounds are 1-2 s; this catches a hang
            return await reader.read()
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


#: Every hostile request asks for the connection to close, so reading to EOF ends.
HEAD = "HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"


async def attack(port: int, token: str, prefix: str, json_path: str) -> list[int]:
    """The hostile requests against one server; the statuses it answered."""
    statuses = []
    auth = f"Authorization: Bearer {token}\r\n"
    long_query = f"GET {prefix}?name={CANARY}&x={'A' * 9000} {HEAD}{auth}\r\n"
    statuses.append(status_of(await raw(port, long_query.encode())))
    long_header = f"GET {prefix}?name={CANARY} {HEAD}{auth[:-2]}{CANARY * 700}\r\n\r\n"
    statuses.append(status_of(await raw(port, long_header.encode())))
    many = f"GET {prefix} {HEAD}{auth}" + "".join(
        f"X-{i}: {CANARY}\r\n" for i in range(150)) + "\r\n"
    statuses.append(status_of(await raw(port, many.encode())))
    garbage = f"GET /?name={CANARY}\x00{token} HTTP/1.1\r\n\r\n"
    statuses.append(status_of(await raw(port, garbage.encode())))
    body = ('{"resourceType":"Patient","name":[{"family":"' + CANARY + '"}]}').encode()
    json_head = f"POST {json_path} {HEAD}{auth}Content-Type: application/json\r\n"
    gzip = (f"{json_head}Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
    statuses.append(status_of(await raw(port, gzip)))
    trickle = f"{json_head}Content-Length: {len(body) + 500}\r\n\r\n".encode()
    statuses.append(status_of(await raw(port, trickle, then=body[:20])))
    # three wrong guesses at the same account, then its right token: locked out (the hub
    # counts per claimed account and address, the edge per address)
    for guess in (f"{token[:-4]}XXXX", f"{token}{CANARY}", f"{token[:-6]}ZZZZZZ", token):
        wrong = f"GET {prefix}?name={CANARY} {HEAD}Authorization: Bearer {guess}\r\n\r\n"
        statuses.append(status_of(await raw(port, wrong.encode())))
    return statuses


def read_logs(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in folder.glob("*.log")}


async def test_hostile_requests_leave_no_patient_name_or_token_in_any_log(
        tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'hub.db'}"
    operator = chartsync("hub", "operator", "create", "--store", store).split()[0]
    enroll = re.search(r"enrollment token:\s+(\S+)",
                       chartsync("hub", "practice", "create", "Hostile", "--store", store))
    assert enroll
    (tmp_path / "hub.toml").write_text(
        "[hub]\nbody_timeout_s = 1\nlogin_failures = 3\nlockout_s = 600\n"
        "max_line_bytes = 4096\nmax_headers = 100\n")
    hub = Child("hub", [sys.executable, "-m", "cloud_hub", "serve", "--config",
                        str(tmp_path / "hub.toml"), "--store", store, "--host", "127.0.0.1",
                        "--port", str(free_port())], tmp_path / "hub.log",
                r"listening on (http://\S+)")
    await hub.start()
    edge: Child | None = None
    try:
        init = chartsync("edge", "init", "--data", str(tmp_path / "edge"), "--hub", hub.url,
                         "--insecure-http", "--token", enroll.group(1), "--name", "Main",
                         "--recovery-passphrase-file", str(_passphrase(tmp_path)))
        admin = init.split("token, shown only now:")[1].split()[0]
        edge = Child("edge", [sys.executable, "-m", "edge_node", "serve", "--data",
                              str(tmp_path / "edge"), "--host", "127.0.0.1", "--port",
                              str(free_port()), "--access-log",
                              "--limit-option", "body_timeout_s=1",
                              "--limit-option", "login_failures=3",
                              "--limit-option", "max_line_bytes=4096"],
                     tmp_path / "edge.log", r"listening (http://\S+)")
        await edge.start()
        edge_port = int(edge.url.rsplit(":", 1)[1])
        hub_port = int(hub.url.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as session:
            # a real patient of that name, and a search for it (both legitimate)
            async with session.post(f"{edge.url}/fhir/Patient", json={
                    "resourceType": "Patient", "name": [{"family": CANARY}]},
                    headers={"Authorization": f"Bearer {admin}"}) as resp:
                assert resp.status == 201
            async with session.get(f"{edge.url}/fhir/Patient?name={CANARY}",
                                   headers={"Authorization": f"Bearer {admin}"}) as resp:
                assert resp.status == 200

        edge_statuses = await attack(edge_port, admin, "/fhir/Patient", "/fhir/Patient")
        assert edge_statuses[:6] == [431, 431, 431, 400, 400, 408], edge_statuses
        assert edge_statuses[6:] == [401, 401, 401, 429], edge_statuses
        hub_statuses = await attack(hub_port, operator, "/v1/practices", "/v1/practices")
        assert hub_statuses[:6] == [431, 431, 431, 400, 415, 408], hub_statuses
        assert hub_statuses[6:] == [401, 401, 401, 429], hub_statuses
        async with aiohttp.ClientSession() as session:  # both still serve
            async with session.get(f"{hub.url}/healthz") as resp:
                assert resp.status == 200
            async with session.get(f"{edge.url}/status.html") as resp:
                assert resp.status == 200
    finally:
        if edge is not None:
            await edge.stop()
        await hub.stop()

    logs = read_logs(tmp_path)
    assert set(logs) == {"hub.log", "edge.log"}
    assert "refused a bearer token" in logs["edge.log"] and "- - 431" in logs["edge.log"]
    assert "refused a credential" in logs["hub.log"]
    for name, text in logs.items():
        assert "Traceback" not in text, name
        for secret in (CANARY, CANARY.lower(), admin, operator):
            assert secret not in text, f"{name} holds {secret[:4]}..."
        for token in (admin, operator):
            for i in range(0, len(token) - 10, 5):
                assert token[i:i + 10] not in text, f"{name} holds a fragment of a token"


def _passphrase(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text("hostile run passphrase 2026")
    return path
