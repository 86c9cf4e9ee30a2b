"""GET /review: the tablet page (shell without data) and its two token-guarded fragments."""

from __future__ import annotations

import re
from html import unescape

from edge_node.api.catalog import catalog
from edge_node.fhir.conflict_query import conflict_id
from tests.edge_node.api.test_conflict_review import (
    BRANCH,
    Remote,
    allergy_conflict,
    audit_rows,
    criticality_id,
    make_patient,
)
from tests.edge_node.conftest import Api


async def _text(api: Api, path: str, headers: dict[str, str] | None = None,
                token: bool = True) -> tuple[int, str]:
    hdrs = api.headers(**(headers or {})) if token else (headers or {})
    async with api.client.get(path, headers=hdrs) as resp:
        return resp.status, await resp.text()


async def test_the_shell_holds_no_data_and_speaks_the_asked_language(api: Api) -> None:
    async with api.client.get("/review") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == "no-store"
        html = await resp.text()
    assert '<html lang="en">' in html and "Conflicts to review" in html
    assert "sessionStorage" in html and "/review/queue" in html and "/resolve" in html
    for external in ("<script src", "<link", "@import", "https://", "http://"):
        assert external not in html, external
    _, ja = await _text(api, "/review", {"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"},
                        token=False)
    assert '<html lang="ja">' in ja and "確認が必要な競合" in ja and 'href="?lang=en"' in ja
    _, switched = await _text(api, "/review?lang=en", {"Accept-Language": "ja"}, token=False)
    assert '<html lang="en">' in switched and 'href="?lang=ja"' in switched
    _, fallback = await _text(api, "/review", {"Accept-Language": "fr, de;q=0.5"}, token=False)
    assert '<html lang="en">' in fallback


async def test_the_queue_groups_by_patient_with_the_clinical_reason(api: Api) -> None:
    remote = Remote(api)
    await remote.name_sites()
    p1, p2 = await make_patient(api, "山田"), await make_patient(api, "佐藤")
    a1 = await allergy_conflict(api, remote, p1)
    await allergy_conflict(api, remote, p2)
    await allergy_conflict(api, remote, p1)
    status, _ = await _text(api, "/review/queue", token=False)
    assert status == 401
    status, html = await _text(api, "/review/queue?lang=ja")
    assert status == 200
    sections = re.findall(r'<section class="patient" data-patient="([^"]*)">\s*<h2>([^<]*)</h2>',
                          html)
    assert sorted(sections) == sorted([(f"Patient/{p1}", "山田 Taro"),
                                       (f"Patient/{p2}", "佐藤 Taro")])
    assert html.count("data-conflict=") == 3
    assert f'data-conflict="{criticality_id(a1)}"' in html
    assert "2つの拠点で異なるアレルギー重症度" in html and "未解決の競合 3 件" in html
    await api.edge.writer.flush()
    audited = {r["patient"] for r in audit_rows(api, "search")
               if r["detail"].get("page") == "review"}
    assert audited == {f"Patient/{p1}", f"Patient/{p2}"}


async def test_one_conflict_side_by_side_with_site_names_and_differences(api: Api) -> None:
    remote = Remote(api)
    await remote.name_sites()
    pid = await make_patient(api, "山田")
    aid = await allergy_conflict(api, remote, pid)
    status, html = await _text(api, f"/review/conflicts/{criticality_id(aid)}?lang=en")
    assert status == 200
    text = unescape(html)
    assert "本院 Main" in text and "Branch Nishi" in text
    shown = unescape(re.sub(r'data-head[s]?="[^"]*"', "", html))  # what staff read
    assert str(BRANCH) not in shown and str(api.edge.site.site_id) not in shown
    marked = re.findall(r'<span class="diff">([^<]*)</span>', text)
    assert sorted(marked) == ['"high"', '"unable-to-assess"']
    assert text.count("Keep this value") == 2 and "Shown now" in text
    assert "Before the competing edits" in text and '"low"' in text
    merged = re.search(r'<textarea id="merged"[^>]*>([^<]*)</textarea>', html)
    assert merged is not None and unescape(merged.group(1)) == '"high"'  # the shown value
    assert "Two sites recorded a different allergy severity" in text
    heads = re.search(r'data-heads="([^"]*)"', html)
    assert heads is not None and unescape(heads.group(1)).count(",") == 3  # two "site,seq"
    status, _ = await _text(api, f"/review/conflicts/{conflict_id('Patient', pid, 'name')}")
    assert status == 404
    status, _ = await _text(api, f"/review/conflicts/{criticality_id(aid)}", token=False)
    assert status == 401


async def test_an_unnamed_site_is_never_shown_as_an_id(api: Api) -> None:
    remote = Remote(api)  # no practice_sites rows: names are not known here yet
    pid = await make_patient(api)
    aid = await allergy_conflict(api, remote, pid)
    _, html = await _text(api, f"/review/conflicts/{criticality_id(aid)}?lang=ja")
    text = unescape(re.sub(r'data-head[s]?="[^"]*"', "", html))
    assert str(BRANCH) not in text and str(api.edge.site.site_id) not in text
    assert text.count(catalog("ja").text("site.unnamed")) >= 2


async def test_the_status_page_links_to_the_review_page(api: Api) -> None:
    status, html = await _text(api, "/status.html", token=False)
    assert status == 200 and 'href="/review"' in html and "open conflicts" in html
