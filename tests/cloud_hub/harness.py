"""A real hub app (aiohttp test server on loopback) over a real store, and a site's moves."""

from __future__ import annotations

import base64
import io
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import nacl.signing
import nacl.utils
from aiohttp.test_utils import TestClient, TestServer

from cloud_hub.api.app import build_app
from cloud_hub.api.context import HubContext
from cloud_hub.config import parse_hub_config
from cloud_hub.credentials import credential_hash, new_operator_token
from cloud_hub.feed import Feed
from cloud_hub.keyprint import load_signing_key
from cloud_hub.notifier import Notifier
from cloud_hub.store.base import HubStore
from sync_protocol.ids import PracticeId
from tests.cloud_hub.clinic import Clinic
from tests.sync_protocol.conftest import BASE_MS, Site

#: The hub's clock in API tests: a little after the batches' HLCs.
NOW_MS = BASE_MS + 60_000


@dataclass
class Clock:
    now: int = NOW_MS

    def __call__(self) -> int:
        return self.now


@dataclass
class Member:
    """A site as enrolled at the hub: its keys, chain and credential."""

    site: Site
    credential: str
    status: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


@dataclass
class Harness:
    #: A `TestClient`, or (against real processes) an `aiohttp.ClientSession` with `base_url`.
    client: Any
    store: HubStore
    clock: Clock
    operator: str
    hub_verify_key: bytes = b""
    members: list[Member] = field(default_factory=list)

    @property
    def op_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator}"}

    async def create_practice(self, name: str = "Sato Clinic") -> tuple[UUID, str]:
        """(practice id, first enrollment token) through the operator API."""
        resp = await self.client.post("/v1/practices", json={"name": name},
                                      headers=self.op_headers)
        assert resp.status == 201, await resp.text()
        pid = UUID((await resp.json())["practice_id"])
        return pid, await self.token(pid, self.op_headers)

    async def token(self, pid: UUID, headers: dict[str, str]) -> str:
        resp = await self.client.post(f"/v1/practices/{pid}/enrollment-tokens", json={},
                                      headers=headers)
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["token"])

    async def enroll_raw(self, site: Site, token: str, name: str = "branch") -> Any:
        pub = site.keys.public(site.site_id)
        return await self.client.post("/v1/enroll", json={
            "token": token, "name": name,
            "verify_key": base64.b64encode(pub.verify_key).decode(),
            "box_key": base64.b64encode(pub.box_key).decode()})

    async def enroll(self, clinic: Clinic, token: str, name: str = "branch") -> Member:
        """Enroll a new site of `clinic`; the hub mints its id, which the site then uses."""
        site = clinic.new_site()
        resp = await self.enroll_raw(site, token, name)
        assert resp.status == 201, await resp.text()
        body = await resp.json()
        assert UUID(body["practice_id"]) == clinic.practice_id
        site.site_id = UUID(body["site_id"])
        self.hub_verify_key = base64.b64decode(body["hub_verify_key"])
        return Member(site, body["credential"], body["status"])

    async def practice_with_sites(self, n: int = 2) -> tuple[Clinic, list[Member]]:
        """A practice whose `n` sites are enrolled and approved (the first approves the rest)."""
        pid, token = await self.create_practice()
        clinic = Clinic(pid)
        first = await self.enroll(clinic, token, "main")
        members = [first]
        for i in range(n - 1):
            member = await self.enroll(clinic, await self.token(pid, first.headers), f"b{i}")
            resp = await self.client.post(f"/v1/sites/{member.site.site_id}/approve",
                                          headers=first.headers)
            assert resp.status == 200, await resp.text()
            member.status = "approved"
            members.append(member)
        return clinic, members

    async def push(self, member: Member, sealed: bytes, **headers: str) -> Any:
        # As a stream: aiohttp warns that a raw body past 1 MiB may block the loop.
        return await self.client.post("/v1/batches", data=io.BytesIO(sealed), headers={
            **member.headers, "Content-Type": "application/octet-stream", **headers})

    async def stored(self, pid: UUID) -> list[bytes]:
        """What the store holds for the practice (to assert nothing was stored)."""
        return [b.sealed for b in await self.store.batches_after(PracticeId(pid), 0, 10_000)]


async def add_operator(store: HubStore) -> str:
    token = new_operator_token(nacl.utils.random(32))
    await store.add_operator(credential_hash(token), NOW_MS)
    return token


def hub_seed() -> bytes:
    return bytes(nacl.signing.SigningKey.generate())


@asynccontextmanager
async def running_hub(store: HubStore, key_file: Path | None = None) -> AsyncIterator[Harness]:
    """The real hub app over `store` on a loopback test server, with a fixed clock.

    The hub key file is `key_file`, or one in a fresh temporary directory.
    """
    clock = Clock()
    notifier = Notifier()
    with tempfile.TemporaryDirectory() as tmp:
        signing_key = await load_signing_key(store, key_file or Path(tmp) / "hub.key",
                                             hub_seed(), clock())
    config = parse_hub_config({"store": "sqlite:unused", "max_batch_bytes": 4 * 1024 * 1024,
                               "max_snapshot_bytes": 8 * 1024 * 1024})
    ctx = HubContext(config, store, notifier, Feed(store, notifier), signing_key, clock,
                     nacl.utils.random)
    server = TestServer(build_app(ctx))
    # As in production (server.py): the hub never expands a request body.
    await server.start_server(auto_decompress=False)
    async with TestClient(server) as client:
        yield Harness(client, store, clock, await add_operator(store))
