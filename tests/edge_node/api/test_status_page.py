"""GET /status.html: a self-contained page for staff; /status still needs the token."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from edge_node.api.app import build_app
from tests.edge_node.sync.children import free_port, hub_child, started
from tests.edge_node.sync.edges import clinician_token, practice, running, unsynced, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


async def test_status_page_is_self_contained_and_data_needs_a_token(tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        [a_dir] = await practice(tmp_path, hub.url, operator, 1)
        async with running(a_dir) as a, \
                TestClient(TestServer(build_app(a.edge, a.sync))) as client:
            page = await client.get("/status.html")
            assert page.status == 200 and page.content_type == "text/html"
            html = await page.text()
            assert "sessionStorage" in html and 'fetch("/status"' in html
            for external in ("<script src", "<link", "@import", "https://", "http://"):
                assert external not in html, external
            for words in ("Offline", "waiting to be sent", "Behind the hub",
                          "Upgrade needed", "Waiting for missing changes", "Last error",
                          "held back", "refused"):
                assert words in html, words
            assert (await client.get("/status")).status == 401


async def _sync_header(client: TestClient[Any, Any], token: str | None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client.get("/fhir/Patient", headers=headers) as r:
        assert r.status == (200 if token else 401)
        return r.headers["Chartsync-Sync"]


async def test_every_response_says_whether_the_edge_is_offline(tmp_path: Path) -> None:
    """A clinic app learns from any response (errors too) whether the edge reaches the hub
    and how old its copy of the other sites' changes is."""
    db, port = tmp_path / "hub.db", free_port()
    operator = await add_operator(db)
    url = f"http://127.0.0.1:{port}"
    async with started(hub_child(db, port, tmp_path)):
        [a_dir] = await practice(tmp_path, url, operator, 1)
    token = clinician_token(a_dir)
    async with running(a_dir) as a, \
            TestClient(TestServer(build_app(a.edge, a.sync))) as client:
        await wait_for(lambda: a.sync.statistics().online is False, "offline: no hub")
        offline = await _sync_header(client, token)
        assert re.fullmatch(r"offline; since=\S+Z", offline), offline
        assert await _sync_header(client, None) == offline  # a 401 says it too
        async with started(hub_child(db, port, tmp_path)):
            await wait_for(lambda: a.sync.statistics().online, "online")
            assert await _sync_header(client, token) == "online"
    async with unsynced(a_dir) as alone, TestClient(TestServer(build_app(alone.edge))) as c:
        assert await _sync_header(c, token) == "local"
