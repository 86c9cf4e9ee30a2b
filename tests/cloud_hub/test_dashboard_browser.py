"""The dashboard page in a real browser (Playwright driving the system Chromium).

The page asks for the operator token, fetches /v1/dashboard and shows a red
row for an offline site and a green one for a healthy site.  The screenshot
is kept in the test's tmp_path (look at it when changing the page).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from cloud_hub.store.locator import open_store
from tests.cloud_hub.harness import running_hub
from tests.cloud_hub.test_dashboard import DIGEST_A, report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
WAIT_MS = 15_000


def _playwright() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; no browser "
                    "download is needed, the system Chromium is used)")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    return async_playwright


async def test_dashboard_page_shows_red_offline_and_green_healthy(tmp_path: Path) -> None:
    async_playwright = _playwright()
    async with open_store(f"sqlite:{tmp_path / 'hub.db'}") as store, \
            running_hub(store) as harness:
        clinic, (main, branch) = await harness.practice_with_sites()
        for _ in range(3):
            assert (await harness.push(main, clinic.seal(main.site, 2))).status == 200
        harness.clock.now -= 25 * 60_000
        resp = await harness.client.post("/v1/heartbeat", headers=branch.headers, json=report(
            cursor=1, outbox_depth=57, oldest_unpushed_age_s=600.0, state_digest=None))
        assert resp.status == 204
        harness.clock.now += 25 * 60_000
        resp = await harness.client.post("/v1/heartbeat", headers=main.headers,
                                         json=report(cursor=3, state_digest=DIGEST_A))
        assert resp.status == 204
        url = str(harness.client.make_url("/dashboard"))
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 700})
                await page.goto(url)
                await page.wait_for_selector("#token", state="visible", timeout=WAIT_MS)
                await page.fill("#token", harness.operator)
                await page.click("button[type=submit]")
                await page.wait_for_selector("section.practice table tbody tr",
                                             timeout=WAIT_MS)
                offline = page.locator(f"tr[data-site='{branch.site.site_id}']")
                healthy = page.locator(f"tr[data-site='{main.site.site_id}']")
                assert await offline.get_attribute("data-state") == "red"
                assert await healthy.get_attribute("data-state") == "green"
                offline_text = await offline.inner_text()
                assert "b0: offline since" in offline_text
                assert "57 changes waiting" in offline_text
                assert "ACTION" in offline_text and "OK" in await healthy.inner_text()
                assert "up to date" in await healthy.inner_text()
                # The token stays in this tab only.
                kept = await page.evaluate("sessionStorage.getItem('chartsync.operatorToken')")
                assert kept == harness.operator
                assert await page.evaluate("localStorage.length") == 0
                await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            finally:
                await browser.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
