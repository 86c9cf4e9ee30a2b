"""The review page on a tablet: a clinician at site A taps a value, site B closes the conflict.

Two real edges sync through a real hub (`chartsync.local_practice`); the page runs in
headless Chromium (Playwright driving the system browser at 768x1024 with touch, in
Japanese).  The screenshot of the conflict, values side by side, is kept as
`.test-results/review.png`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from chartsync.local_practice import LocalPractice, local_practice

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
FAST_SYNC = ("heartbeat_s=1", "mailbox_poll_s=0.3", "backoff_max_s=0.5", "control_poll_s=0.3")
WAIT_MS = 20_000
ARTIFACT = Path(__file__).resolve().parents[2] / ".test-results" / "review.png"


def _playwright() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; no browser "
                    "download is needed, the system Chromium is used)")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    return async_playwright


async def _concurrent_criticality(lp: LocalPractice) -> tuple[str, str]:
    """Site A says "high", site B "unable-to-assess", both from "low" while B was cut
    off; returns (patient id, allergy id) once both sites hold the conflict."""
    a, b = lp.fhir("a"), lp.fhir("b")
    patient = await a.ok("POST", "/fhir/Patient", {"resourceType": "Patient",
                                                   "name": [{"family": "山田", "given": ["花子"]}]})
    allergy = await a.ok("POST", "/fhir/AllergyIntolerance", {
        "resourceType": "AllergyIntolerance", "criticality": "low",
        "code": {"text": "ペニシリン"}, "patient": {"reference": f"Patient/{patient['id']}"}})
    path = f"/fhir/AllergyIntolerance/{allergy['id']}"
    await lp.wait(lp.converged, 60, "allergy at both sites")
    lp.sites["b"].link.cut()
    for fhir, value in ((a, "high"), (b, "unable-to-assess")):
        body = {k: v for k, v in (await fhir.ok("GET", path)).items() if k != "meta"}
        await fhir.ok("PUT", path, {**body, "criticality": value})
    lp.sites["b"].link.restore()
    await lp.wait(lp.converged, 60, "both sites hold the conflict")
    return patient["id"], allergy["id"]


async def test_a_tap_at_site_a_closes_the_conflict_at_site_b(tmp_path: Path) -> None:
    async_playwright = _playwright()
    async with local_practice(tmp_path, store=f"sqlite:{tmp_path / 'hub.db'}",
                              site_names=("a", "b"), sync_options=FAST_SYNC) as lp:
        _, aid = await _concurrent_criticality(lp)
        b = lp.fhir("b")
        listing = await b.ok("GET", "/conflicts")
        assert [i["register"] for i in listing["items"]] == ["criticality"]
        cid = listing["items"][0]["id"]

        async def sites_named_at_a() -> bool:  # the registry is read by A's sync loop
            detail = await lp.fhir("a").ok("GET", f"/conflicts/{cid}")
            return all(v["site"]["name"] for v in detail["values"])

        await lp.wait(sites_named_at_a, 60, "site A knows both sites' names")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(
                    viewport={"width": 768, "height": 1024}, has_touch=True, is_mobile=True,
                    locale="ja-JP")
                page = await context.new_page()
                await page.goto(lp.sites["a"].edge.url.rstrip("/") + "/review")
                await page.wait_for_selector("#tok", state="visible", timeout=WAIT_MS)
                assert await page.get_attribute("html", "lang") == "ja"
                await page.fill("#tok", lp.sites["a"].token)
                await page.tap("#login button[type=submit]")
                entry = page.locator("button[data-conflict]")
                await entry.wait_for(timeout=WAIT_MS)
                queue = await page.inner_text("#queue")
                assert "山田 花子" in queue and "アレルギー重症度" in queue
                await entry.tap()
                values = page.locator("#detail .value")
                await values.first.wait_for(timeout=WAIT_MS)
                assert await values.count() == 2
                # Sites by name, never by id; the differing values are highlighted.
                sites = sorted(await page.locator("#detail dd.site").all_inner_texts())
                assert sites == ["a", "b"]
                detail_text = await page.inner_text("#detail")
                for site in lp.sites.values():
                    assert site.site_id not in detail_text
                marked = sorted(await page.locator("#detail pre span.diff").all_inner_texts())
                assert marked == ['"high"', '"unable-to-assess"']
                # Side by side at tablet width.
                left, right = [await values.nth(i).bounding_box() for i in range(2)]
                assert left is not None and right is not None
                assert left["y"] == right["y"] and left["x"] + left["width"] <= right["x"]
                ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(ARTIFACT), full_page=True)
                await page.fill("#reason", "電話で本人に確認")
                await values.filter(has_text="unable-to-assess").locator("button").tap()
                await page.locator("#note .msg.ok").wait_for(timeout=WAIT_MS)
                await page.locator("#queue-empty").wait_for(timeout=WAIT_MS)
            finally:
                await browser.close()

        async def closed_at_b() -> bool:
            return not (await b.ok("GET", "/conflicts"))["items"]

        await lp.wait(closed_at_b, 60, "site B sees the conflict closed")
        shown = await b.ok("GET", f"/fhir/AllergyIntolerance/{aid}")
        assert shown["criticality"] == "unable-to-assess"
        assert "tag" not in shown["meta"]
    assert ARTIFACT.stat().st_size > 10_000
