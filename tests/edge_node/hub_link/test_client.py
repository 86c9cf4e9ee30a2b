"""HubClient against a real hub: typed results, problem details, TLS rules."""

from __future__ import annotations

from pathlib import Path

import nacl.utils
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.errors import HubRefused, HubUnreachable, InsecureHubUrl
from sync_protocol.keys import SiteKeyPair
from tests.edge_node.sync.hubs import add_operator, local_hub


async def test_enroll_registry_mailbox_and_problem_details(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        settings = HubSettings.parse(hub.url, insecure_http=True)
        async with HubClient.open(settings) as client:
            key = await client.hub_key()
            assert len(key.verify_key) == 32
            practice = await client.create_practice("Sato", operator_token=operator)
            token = await client.create_enrollment_token(practice.practice_id,
                                                         credential=operator)
            keys = SiteKeyPair.generate(nacl.utils.random(64))
            first = await client.enroll(token.token, "main", keys.public(practice.practice_id))
            assert first.status == "approved" and first.hub_verify_key == key.verify_key
            assert first.credential not in repr(first)
            client.authenticate(first.credential)
            assert (await client.me()).site_id == first.site_id
            assert [s.site_id for s in await client.sites()] == [first.site_id]
            assert await client.mailbox() == []
            with pytest.raises(HubRefused) as refused:
                await client.enroll(token.token, "again", keys.public(practice.practice_id))
            assert refused.value.status == 401 and refused.value.hub_code
            with pytest.raises(HubRefused) as bad:
                await client.push(b"not a batch")
            assert bad.value.status == 400 and not bad.value.transient
            pulled = await client.pull(after=0)
            assert pulled.batches == () and pulled.head == 0
            async with client.get_latest_snapshot() as snap:
                assert snap is None
            assert await client.list_snapshots() == []


async def test_plain_http_refused_without_flag_and_unreachable_is_typed() -> None:
    with pytest.raises(InsecureHubUrl):
        HubSettings.parse("http://127.0.0.1:1")
    with pytest.raises(InsecureHubUrl):
        HubSettings.parse("ftp://hub.example.jp")
    settings = HubSettings.parse("http://127.0.0.1:1", insecure_http=True)
    async with HubClient.open(settings) as client:
        with pytest.raises(HubUnreachable):
            await client.hub_key()


@pytest.mark.parametrize("answer", [{"acks": []}, {"acks": [], "refused": None}, [1, 2],
                                    {"acks": "x", "refused": None}])
async def test_an_answer_to_several_batches_it_cannot_resume_from_is_unreachable(
        answer: object) -> None:
    """A hub (or something posing as one) whose answer does not account for the batches
    sent: retried with backoff like a hub out of reach, never taken as acks (#5)."""
    async def batches(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/v1/batches", batches)
    async with TestServer(app, host="127.0.0.1") as server:
        settings = HubSettings.parse(str(server.make_url("")).rstrip("/"), insecure_http=True)
        async with HubClient.open(settings, credential="css_x") as client:
            with pytest.raises(HubUnreachable, match="no usable answer"):
                await client.push_many([b"one", b"two"])
