"""GET /status.html: a self-contained page for staff; /status still needs the token."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from edge_node.api.app import build_app
from tests.edge_node.sync.edges import practice, running
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
