"""Duplicate patients at three sites: listed alike, merged at one, undone at another.

Three real edges sync through a real hub.  The same person is registered offline at
two branches, each with a visit (Encounter) and a measurement (Observation); every
site lists the pair, a merge anywhere moves every visit under the surviving record
at every site, and an undo anywhere gives each record its own visits back.
Concurrent merges of the pair at two sites, asked in opposite directions, converge
to one outcome with no conflict whichever site's changes the others see first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chartsync.local_practice import Fhir, LocalPractice, local_practice

FAST_SYNC = ("heartbeat_s=1", "mailbox_poll_s=0.3", "backoff_max_s=0.5", "control_poll_s=0.3")
SITES = ("a", "b", "c")
SYL = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"


def patient(kana: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "birthDate": "1961-07-15", "gender": "female",
            "name": [{"extension": [{"url": SYL, "valueCode": "IDE"}], "text": "佐藤 花子"},
                     {"extension": [{"url": SYL, "valueCode": "SYL"}], "text": kana}]}


async def register(fhir: Fhir, kana: str) -> tuple[str, list[str]]:
    """A patient with a visit and a pulse measurement; (patient id, [visit refs])."""
    pid = (await fhir.ok("POST", "/fhir/Patient", patient(kana)))["id"]
    subject = {"reference": f"Patient/{pid}"}
    enc = await fhir.ok("POST", "/fhir/Encounter", {
        "resourceType": "Encounter", "status": "finished", "subject": subject,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}})
    obs = await fhir.ok("POST", "/fhir/Observation", {
        "resourceType": "Observation", "status": "final", "subject": subject,
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 72, "unit": "/min"}})
    return pid, [f"Encounter/{enc['id']}", f"Observation/{obs['id']}"]


def merge_params(source: str, target: str) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}}]}


async def visits_of(fhir: Fhir, pid: str) -> list[str]:
    out = []
    for rtype in ("Encounter", "Observation"):
        bundle = await fhir.ok("GET", f"/fhir/{rtype}?patient={pid}")
        out += [f"{rtype}/{e['resource']['id']}" for e in bundle.get("entry", [])]
    return sorted(out)


async def duplicates(fhir: Fhir) -> Any:
    return (await fhir.ok("GET", "/fhir/Patient/$duplicates"))["parameter"]


async def registered_at_two_branches(lp: LocalPractice) -> tuple[str, str, list[str], list[str]]:
    """The same person registered at a and b while both are offline; synced."""
    for name in ("a", "b"):
        lp.sites[name].link.cut()
    first, first_visits = await register(lp.fhir("a"), "サトウ ハナコ")
    second, second_visits = await register(lp.fhir("b"), "ｻﾄｳ ﾊﾅｺ")
    for name in ("a", "b"):
        lp.sites[name].link.restore()
    await lp.wait(lp.converged, 90, "both registrations everywhere")
    return first, second, first_visits, second_visits


async def test_duplicates_listed_alike_merged_at_one_site_undone_at_another(
        tmp_path: Path) -> None:
    async with local_practice(tmp_path, store=f"sqlite:{tmp_path / 'hub.db'}",
                              site_names=SITES, sync_options=FAST_SYNC) as lp:
        one, two, one_visits, two_visits = await registered_at_two_branches(lp)
        keep, gone = min(one, two), max(one, two)
        listed = [await duplicates(lp.fhir(name)) for name in SITES]
        assert listed[0] == listed[1] == listed[2]
        [pair] = [p for p in listed[0] if p["name"] == "pair"]
        assert [q.get("valueReference", {}).get("reference") or q.get("valueCode")
                for q in pair["part"]] == [f"Patient/{keep}", f"Patient/{gone}",
                                           "name-birthdate"]

        answer = await lp.fhir("c").ok("POST", "/fhir/Patient/$merge", merge_params(gone, keep))
        moved = sorted(p["valueReference"]["reference"] for p in answer["parameter"]
                       if p["name"] == "moved")
        assert moved == sorted(two_visits if gone == two else one_visits)
        await lp.wait(lp.converged, 90, "the merge everywhere")
        for name in SITES:
            fhir = lp.fhir(name)
            assert await visits_of(fhir, keep) == sorted(one_visits + two_visits), name
            assert await visits_of(fhir, gone) == [], name
            source = await fhir.ok("GET", f"/fhir/Patient/{gone}")
            assert source["active"] is False
            assert source["link"] == [{"other": {"reference": f"Patient/{keep}"},
                                       "type": "replaced-by"}]
            assert [p for p in await duplicates(fhir) if p["name"] == "pair"] == []

        answer = await lp.fhir("b").ok("POST", "/fhir/Patient/$unmerge",
                                       merge_params(gone, keep))
        assert [p for p in answer["parameter"] if p["name"] == "kept"] == []
        await lp.wait(lp.converged, 90, "the undo everywhere")
        for name in SITES:
            fhir = lp.fhir(name)
            assert await visits_of(fhir, one) == sorted(one_visits), name
            assert await visits_of(fhir, two) == sorted(two_visits), name
            for pid in (one, two):
                shown = await fhir.ok("GET", f"/fhir/Patient/{pid}")
                assert "link" not in shown and "active" not in shown
            assert await duplicates(fhir) == listed[0]


@pytest.mark.parametrize("first_back", ["a", "b"])
async def test_opposite_concurrent_merges_converge_in_either_delivery_order(
        tmp_path: Path, first_back: str) -> None:
    async with local_practice(tmp_path, store=f"sqlite:{tmp_path / 'hub.db'}",
                              site_names=SITES, sync_options=FAST_SYNC) as lp:
        one, two, one_visits, two_visits = await registered_at_two_branches(lp)
        keep, gone = min(one, two), max(one, two)
        for name in ("a", "b"):
            lp.sites[name].link.cut()
        await lp.fhir("a").ok("POST", "/fhir/Patient/$merge", merge_params(one, two))
        await lp.fhir("b").ok("POST", "/fhir/Patient/$merge", merge_params(two, one))
        # One site's merge reaches the hub (and site c) before the other's.
        lp.sites[first_back].link.restore()
        await lp.wait(lp.converged_push(first_back), 90, f"{first_back}'s merge at the hub")
        lp.sites["b" if first_back == "a" else "a"].link.restore()
        await lp.wait(lp.converged, 90, "both merges everywhere")
        for name in SITES:
            fhir = lp.fhir(name)
            assert await visits_of(fhir, keep) == sorted(one_visits + two_visits), name
            assert await visits_of(fhir, gone) == [], name
            for pid in (keep, gone):
                conflicts = await fhir.ok("GET", f"/fhir/Patient/{pid}/$conflicts")
                assert conflicts.get("parameter", []) == [], (name, pid, conflicts)
            assert (await fhir.ok("GET", f"/fhir/Patient/{gone}"))["active"] is False
        # Both sites' records of what moved are one record: the undo at the third site
        # gives each patient their own visits back everywhere.
        await lp.fhir("c").ok("POST", "/fhir/Patient/$unmerge", merge_params(keep, gone))
        await lp.wait(lp.converged, 90, "the undo everywhere")
        for name in SITES:
            assert await visits_of(lp.fhir(name), one) == sorted(one_visits), name
            assert await visits_of(lp.fhir(name), two) == sorted(two_visits), name


async def test_a_visit_written_where_the_merge_was_not_seen_is_moved_by_merging_again(
        tmp_path: Path) -> None:
    async with local_practice(tmp_path, store=f"sqlite:{tmp_path / 'hub.db'}",
                              site_names=SITES, sync_options=FAST_SYNC) as lp:
        one, two, one_visits, two_visits = await registered_at_two_branches(lp)
        keep, gone = min(one, two), max(one, two)
        lp.sites["b"].link.cut()
        await lp.fhir("a").ok("POST", "/fhir/Patient/$merge", merge_params(gone, keep))
        late = await lp.fhir("b").ok("POST", "/fhir/Encounter", {
            "resourceType": "Encounter", "status": "finished",
            "subject": {"reference": f"Patient/{gone}"}, "class": {"code": "AMB"}})
        lp.sites["b"].link.restore()
        await lp.wait(lp.converged, 90, "merge and late visit everywhere")
        assert await visits_of(lp.fhir("c"), gone) == [f"Encounter/{late['id']}"]
        answer = await lp.fhir("c").ok("POST", "/fhir/Patient/$merge",
                                       merge_params(gone, keep))
        assert [p["valueReference"]["reference"] for p in answer["parameter"]
                if p["name"] == "moved"] == [f"Encounter/{late['id']}"]
        await lp.wait(lp.converged, 90, "the late visit moved everywhere")
        for name in SITES:
            assert await visits_of(lp.fhir(name), keep) == sorted(
                [*one_visits, *two_visits, f"Encounter/{late['id']}"]), name
            assert await visits_of(lp.fhir(name), gone) == [], name
