"""A clinician sees every kept value of a conflict and resolves it once for all sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chartsync.local_practice import LocalPractice, local_practice

FAST_SYNC = ("heartbeat_s=1", "mailbox_poll_s=0.3", "backoff_max_s=0.5", "control_poll_s=0.3")


def _values(parameters: dict[str, Any]) -> dict[str, list[str]]:
    out = {}
    for conflict in parameters.get("parameter", []):
        element = next(p["valueString"] for p in conflict["part"] if p["name"] == "element")
        out[element] = sorted(next(q["valueString"] for q in p["part"] if q["name"] == "content")
                              for p in conflict["part"] if p["name"] == "value")
    return out


async def _conflicts_everywhere(lp: LocalPractice, path: str) -> list[dict[str, list[str]]]:
    return [_values(await lp.fhir(name).ok("GET", path)) for name in lp.sites]


async def test_conflict_is_shown_kept_through_plain_saves_and_closed_by_resolve(
        tmp_path: Path) -> None:
    async with local_practice(tmp_path, store=f"sqlite:{tmp_path / 'hub.db'}",
                              site_names=("a", "b"), sync_options=FAST_SYNC) as lp:
        a, b = lp.fhir("a"), lp.fhir("b")
        patient = await a.ok("POST", "/fhir/Patient", {"resourceType": "Patient",
                                                       "name": [{"family": "山田"}]})
        allergy = await a.ok("POST", "/fhir/AllergyIntolerance", {
            "resourceType": "AllergyIntolerance", "criticality": "low",
            "code": {"text": "ペニシリン"}, "patient": {"reference": f"Patient/{patient['id']}"}})
        path = f"/fhir/AllergyIntolerance/{allergy['id']}"
        await lp.wait(lp.converged, 60, "allergy everywhere")

        lp.sites["b"].link.cut()
        for fhir, value in ((a, "high"), (b, "unable-to-assess")):
            body = {k: v for k, v in (await fhir.ok("GET", path)).items() if k != "meta"}
            await fhir.ok("PUT", path, {**body, "criticality": value})
        lp.sites["b"].link.restore()
        await lp.wait(lp.converged, 60, "converged with a conflict")
        expected = {"criticality": ['"high"', '"unable-to-assess"']}
        assert await _conflicts_everywhere(lp, f"{path}/$conflicts") == [expected, expected]

        # A form that saves on top of the conflict (another element) does not hide it.
        body = {k: v for k, v in (await a.ok("GET", path)).items() if k != "meta"}
        await a.ok("PUT", path, {**body, "note": [{"text": "再確認予定"}]})
        await lp.wait(lp.converged, 60, "plain save spread")
        assert await _conflicts_everywhere(lp, f"{path}/$conflicts") == [expected, expected]

        # The clinician decides; every site closes the conflict.
        body = {k: v for k, v in (await b.ok("GET", path)).items() if k != "meta"}
        resolved = await b.ok("POST", f"{path}/$resolve", {**body, "criticality": "high"})
        assert resolved["criticality"] == "high"
        await lp.wait(lp.converged, 60, "resolution spread")
        assert await _conflicts_everywhere(lp, f"{path}/$conflicts") == [{}, {}]
        for fhir in (a, b):
            shown = await fhir.ok("GET", path)
            assert shown["criticality"] == "high" and shown["note"] == [{"text": "再確認予定"}]
            assert "conflict" not in [t.get("code") for t in shown["meta"].get("tag", [])]
        # History keeps every value: each site's versions show what it displayed, and
        # the writer of the losing value has it in its own history.
        seen = set()
        for fhir in (a, b):
            history = await fhir.ok("GET", f"{path}/_history?_count=50")
            seen |= {e["resource"].get("criticality") for e in history["entry"]}
        assert {"high", "unable-to-assess", "low"} <= seen
