"""The review queue's JSON API: list with filters and paging, detail, resolve, audit, _tag."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson

from edge_node.fhir.conflict_query import conflict_id
from edge_node.fhir.search import CONFLICT_TAG
from edge_node.store.apply import CONFLICT_TAG_SYSTEM
from edge_node.store.practice_sites import PracticeSite, SaveSites
from sync_protocol.models import Change, ChangeOp, Dot
from tests.edge_node.conftest import Api, wall_ms
from tests.edge_node.resources import patient

BRANCH = UUID("0190c1a2-7b3e-7000-8000-0000000000b2")
TAG = "urn:chartsync:tag|conflict"


@dataclass
class Remote:
    """Another site's changes, applied at the edge as the puller would."""

    api: Api
    seq: int = 0
    sites: list[str] = field(default_factory=list)

    async def name_sites(self) -> None:
        own = str(self.api.edge.site.site_id)
        sites = tuple(PracticeSite(s, n, "approved", b"v" * 32, b"b" * 32, wall_ms())
                      for s, n in ((own, "本院 Main"), (str(BRANCH), "Branch Nishi")))
        await self.api.edge.writer.apply_remote([], [SaveSites(sites)], label="sites")

    async def write(self, rtype: str, rid: str, register: str, value: Any, *,
                    replaces: tuple[Dot, ...] | None = None) -> None:
        """Write `value` having seen `replaces` (None: every current head)."""
        state = await self.api.edge.reader.state(rtype, rid)
        assert state is not None
        heads = state.registers[register].heads if register in state.registers else ()
        seen = tuple(h.dot for h in heads) if replaces is None else replaces
        self.seq += 1
        hlc = max(h.hlc for reg in state.registers.values() for h in reg.heads) + 1
        delete = register == "@deleted"
        change = Change(resource_type=rtype, resource_id=rid,
                        op=ChangeOp.DELETE if delete else ChangeOp.SET,
                        elements={"@deleted": b"true"} if delete else
                        {register: orjson.dumps(value), "@deleted": b"false"},
                        replaces={register: seen} if seen else {}, hlc=hlc,
                        origin=BRANCH, seq=self.seq, user="nurse-nishi")
        await self.api.edge.writer.apply_remote([change], [], label="test batch")

    async def edit(self, rtype: str, rid: str, values: dict[str, Any],
                   seen: dict[str, tuple[Dot, ...]], hlc: int) -> None:
        """One edit writing several registers (None: removed), having seen `seen`."""
        self.seq += 1
        elements = {k: None if v is None else orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
                    for k, v in values.items()}
        change = Change(resource_type=rtype, resource_id=rid, op=ChangeOp.SET,
                        elements={**elements, "@deleted": b"false"},
                        replaces={k: v for k, v in seen.items() if v}, hlc=hlc,
                        origin=BRANCH, seq=self.seq, user="dr-nishi")
        await self.api.edge.writer.apply_remote([change], [], label="test batch")


async def make_patient(api: Api, family: str = "山田") -> str:
    status, body, _ = await api.request("POST", "/fhir/Patient", json=patient(family=family))
    assert status == 201
    return str(body["id"])


async def allergy_conflict(api: Api, remote: Remote, pid: str, *, local: str = "high",
                           other: str = "unable-to-assess") -> str:
    """An AllergyIntolerance whose criticality was changed at this site and at BRANCH,
    both from "low"; returns its id."""
    status, body, _ = await api.request("POST", "/fhir/AllergyIntolerance", json={
        "resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{pid}"},
        "code": {"text": "ペニシリン"}, "criticality": "low"})
    assert status == 201
    aid = str(body["id"])
    state = await api.edge.reader.state("AllergyIntolerance", aid)
    assert state is not None
    low = tuple(h.dot for h in state.registers["criticality"].heads)
    status, body, _ = await api.request("PUT", f"/fhir/AllergyIntolerance/{aid}", json={
        "resourceType": "AllergyIntolerance", "id": aid,
        "patient": {"reference": f"Patient/{pid}"}, "code": {"text": "ペニシリン"},
        "criticality": local})
    assert status == 200
    # The other site changed the same "low" before it saw this site's edit.
    await remote.write("AllergyIntolerance", aid, "criticality", other, replaces=low)
    return aid


def criticality_id(aid: str) -> str:
    return conflict_id("AllergyIntolerance", aid, "criticality")


def audit_rows(api: Api, action: str | None = None) -> list[dict[str, Any]]:
    conn = sqlite3.connect(api.data_dir / "edge.sqlite3")
    try:
        rows = conn.execute("SELECT user, action, resource_type, resource_id, patient_ref, "
                            "outcome, detail FROM audit ORDER BY seq").fetchall()
    finally:
        conn.close()
    out = [{"user": r[0], "action": r[1], "type": r[2], "id": r[3], "patient": r[4],
            "outcome": r[5], "detail": orjson.loads(r[6])} for r in rows]
    return [r for r in out if action is None or r["action"] == action]


async def test_a_conflict_is_listed_and_detailed_with_who_where_when_and_ancestor(
        api: Api) -> None:
    remote = Remote(api)
    await remote.name_sites()
    pid = await make_patient(api)
    aid = await allergy_conflict(api, remote, pid)
    status, listing, _ = await api.request("GET", "/conflicts")
    assert status == 200, listing
    [item] = listing["items"]
    assert item["id"] == criticality_id(aid) and item["patient"] == f"Patient/{pid}"
    assert item["resourceType"] == "AllergyIntolerance" and item["resourceId"] == aid
    assert item["register"] == "criticality" and item["rule"] == "allergy-severity"
    assert item["reason"].startswith("Two sites recorded a different allergy severity")
    assert item["values"] == 2 and item["opened"].endswith("Z")
    assert listing["next"] is None

    status, detail, _ = await api.request("GET", f"/conflicts/{item['id']}",
                                          headers={"Accept-Language": "ja"})
    assert status == 200, detail
    assert detail["reason"].startswith("2つの拠点で異なるアレルギー重症度")
    by_value = {v["value"]: v for v in detail["values"]}
    assert set(by_value) == {"high", "unable-to-assess"}
    mine, theirs = by_value["high"], by_value["unable-to-assess"]
    assert mine["site"] == {"id": str(api.edge.site.site_id), "name": "本院 Main"}
    assert theirs["site"] == {"id": str(BRANCH), "name": "Branch Nishi"}
    assert mine["user"] == api.user_ids["clinician"] and mine["userName"] == "clinician"
    assert theirs["user"] == "nurse-nishi" and theirs["userName"] is None
    assert mine["shown"] and not theirs["shown"]  # the higher severity is shown
    for v in (mine, theirs):
        assert v["recorded"].endswith("Z") and v["clinicalTime"].endswith("Z")
        assert v["head"].count(",") == 1 and not v["removed"]
    assert [v["index"] for v in detail["values"]] == [0, 1]
    assert detail["ancestor"]["status"] == "known"
    [before] = detail["ancestor"]["values"]
    assert before["value"] == "low" and before["site"]["name"] == "本院 Main"
    # Reading the detail is audited with the patient.
    await api.edge.writer.flush()
    reads = [r for r in audit_rows(api, "read") if r["detail"].get("conflict") == "criticality"]
    assert reads and reads[-1]["patient"] == f"Patient/{pid}"
    assert reads[-1]["user"] == api.user_ids["clinician"]
    searches = [r for r in audit_rows(api, "search") if "conflicts" in r["detail"]]
    assert searches[-1]["patient"] == f"Patient/{pid}"


async def test_the_ancestor_is_unknown_without_a_replaced_write(api: Api) -> None:
    remote = Remote(api)
    pid = await make_patient(api)
    status, body, _ = await api.request("POST", "/fhir/AllergyIntolerance", json={
        "resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{pid}"},
        "code": {"text": "卵"}})
    aid = body["id"]
    # The other site wrote a code without having seen this one: nothing was replaced.
    await remote.write("AllergyIntolerance", aid, "code", {"text": "卵白"}, replaces=())
    cid = conflict_id("AllergyIntolerance", aid, "code")
    status, detail, _ = await api.request("GET", f"/conflicts/{cid}")
    assert status == 200
    assert detail["ancestor"] == {"status": "unknown", "values": []}
    status, body, _ = await api.request("GET", "/conflicts?rule=allergy-substance")
    assert [i["register"] for i in body["items"]] == ["code"]
    # A site name not known here yet: the id is there, the name is null.
    by_site = {v["site"]["id"]: v["site"]["name"] for v in detail["values"]}
    assert by_site == {str(api.edge.site.site_id): None, str(BRANCH): None}


async def test_filters(api: Api) -> None:
    remote = Remote(api)
    p1, p2 = await make_patient(api, "山田"), await make_patient(api, "佐藤")
    a1 = await allergy_conflict(api, remote, p1)
    a2 = await allergy_conflict(api, remote, p2)
    await remote.write("Patient", p2, "birthDate", "1981-04-01", replaces=())

    async def ids(query: str) -> list[str]:
        status, body, _ = await api.request("GET", f"/conflicts?{query}")
        assert status == 200, body
        return sorted(i["id"] for i in body["items"])

    both = sorted([criticality_id(a1), criticality_id(a2)])
    bdate = conflict_id("Patient", p2, "birthDate")
    assert await ids("type=AllergyIntolerance") == both
    assert await ids("type=Patient") == [bdate]
    assert await ids(f"patient=Patient/{p1}") == [criticality_id(a1)]
    assert await ids(f"patient={p2}") == sorted([criticality_id(a2), bdate])
    assert await ids("rule=demographics") == [bdate]
    assert await ids("rule=allergy-severity") == both
    assert await ids("rule=note-text") == []
    assert await ids("newer-than=1h") == sorted([*both, bdate])
    assert await ids("older-than=1h") == []
    assert await ids("older-than=0s&newer-than=1d") == sorted([*both, bdate])
    status, grouped, _ = await api.request("GET", "/conflicts?_sort=patient")
    patients = [i["patient"] for i in grouped["items"]]
    assert status == 200 and patients == sorted(patients) and len(set(patients)) == 2


async def test_bad_list_parameters_are_refused_with_what_to_send(api: Api) -> None:
    for query, words in (("older-than=2 hours", "is not an age"),
                         ("older-than=5y", "is not an age"),
                         ("rule=everything", "is not a rule name"),
                         ("_count=0", "_count"), ("_count=100000", "_count"),
                         ("_sort=name", "_sort"), ("cursor=abc", "paging token"),
                         ("patient=Patient/a b", "not a Patient reference"),
                         ("colour=red", "not served"), ("type=Patient&type=Patient", "twice")):
        status, body, _ = await api.request("GET", f"/conflicts?{query}")
        assert status == 400, (query, body)
        assert body["resourceType"] == "OperationOutcome"
        assert words in body["issue"][0]["diagnostics"], (query, body)
    status, body, _ = await api.request("GET", "/conflicts?type=Spaceship")
    assert status == 404 and "not served" in body["issue"][0]["diagnostics"]
    status, body, _ = await api.request("GET", "/conflicts/not-an-id!")
    assert status == 404 and "not a conflict id" in body["issue"][0]["diagnostics"]
    status, body, _ = await api.request("GET", f"/conflicts/{criticality_id('nope')}")
    assert status == 404 and "no open conflict" in body["issue"][0]["diagnostics"]
    status, _, _ = await api.request("GET", "/conflicts", role="auditor")
    assert status == 403
    async with api.client.get("/conflicts") as resp:
        assert resp.status == 401


async def test_paging_survives_conflicts_opened_and_closed_meanwhile(api: Api) -> None:
    remote = Remote(api)
    pid = await make_patient(api)
    made = [await allergy_conflict(api, remote, pid) for _ in range(5)]
    status, page1, _ = await api.request("GET", "/conflicts?_count=2")
    assert status == 200 and len(page1["items"]) == 2 and page1["cursor"]
    assert page1["next"].startswith("/conflicts?") and "_count=2" in page1["next"]
    seen = [i["id"] for i in page1["items"]]
    # Meanwhile: one more conflict opens (newest: sorts before the cursor) and one not yet
    # listed is resolved.
    await allergy_conflict(api, remote, pid)
    status, rest_before, _ = await api.request("GET", page1["next"])
    victim = rest_before["items"][0]
    _, detail, _ = await api.request("GET", f"/conflicts/{victim['id']}")
    status, _, _ = await api.request("POST", f"/conflicts/{victim['id']}/resolve", json={
        "choose": 0, "heads": [v["head"] for v in detail["values"]]})
    assert status == 200
    cursor = page1["next"]
    while cursor:
        status, page, _ = await api.request("GET", cursor)
        assert status == 200, page
        seen += [i["id"] for i in page["items"]]
        cursor = page["next"]
    expected = {criticality_id(a) for a in made} - {victim["id"]}
    assert len(seen) == len(set(seen)) and set(seen) == expected
    opened = [i["opened"] for i in page1["items"]]
    assert opened == sorted(opened, reverse=True)


async def test_resolve_keeps_the_chosen_value_everywhere_and_audits_the_decision(
        api: Api) -> None:
    remote = Remote(api)
    pid = await make_patient(api)
    aid = await allergy_conflict(api, remote, pid)
    # A second, unrelated conflict on the same record must stay open.
    await remote.write("AllergyIntolerance", aid, "code", {"text": "アモキシシリン"},
                       replaces=())
    status, tagged, _ = await api.request("GET", f"/fhir/AllergyIntolerance?_tag={TAG}")
    assert status == 200 and [e["resource"]["id"] for e in tagged["entry"]] == [aid]
    cid = criticality_id(aid)
    _, detail, _ = await api.request("GET", f"/conflicts/{cid}")
    heads = [v["head"] for v in detail["values"]]
    remote_head = next(v["head"] for v in detail["values"] if v["value"] == "unable-to-assess")
    before = api.counts()
    status, answer, _ = await api.request("POST", f"/conflicts/{cid}/resolve", json={
        "choose": remote_head, "heads": heads, "reason": "本人に確認 / confirmed with patient"})
    assert status == 200, answer
    assert answer["resolved"] and answer["value"] == "unable-to-assess"
    assert answer["chose"] == remote_head
    after = api.counts()
    # The clinician's version, and this site's view of it (the other conflict stays open).
    assert after["history"] == before["history"] + 2 and after["outbox"] == before["outbox"] + 1
    status, body, _ = await api.request("GET", f"/fhir/AllergyIntolerance/{aid}")
    assert body["criticality"] == "unable-to-assess"
    state = await api.edge.reader.state("AllergyIntolerance", aid)
    assert state is not None and len(state.registers["criticality"].heads) == 1
    assert len(state.registers["code"].heads) == 2  # the other conflict is untouched
    status, listing, _ = await api.request("GET", f"/conflicts?patient=Patient/{pid}")
    assert [i["register"] for i in listing["items"]] == ["code"]
    status, _, _ = await api.request("GET", f"/conflicts/{cid}")
    assert status == 404
    [row] = [r for r in audit_rows(api, "update") if r["detail"].get("resolved")]
    assert row["user"] == api.user_ids["clinician"] and row["outcome"] == 200
    assert row["patient"] == f"Patient/{pid}" and row["id"] == aid
    assert row["detail"] == {"resolved": "criticality", "chose": remote_head,
                             "reason": "本人に確認 / confirmed with patient"}
    # Closing the last conflict takes the record out of the _tag search.
    code_id = conflict_id("AllergyIntolerance", aid, "code")
    _, detail, _ = await api.request("GET", f"/conflicts/{code_id}")
    status, _, _ = await api.request(
        "POST", f"/conflicts/{detail['id']}/resolve",
        json={"value": {"text": "ペニシリン系"}, "heads": [v["head"] for v in detail["values"]]})
    assert status == 200
    status, tagged, _ = await api.request("GET", f"/fhir/AllergyIntolerance?_tag={TAG}")
    assert status == 200 and tagged.get("entry", []) == []
    status, body, _ = await api.request("GET", f"/fhir/AllergyIntolerance/{aid}")
    assert body["code"] == {"text": "ペニシリン系"}
    assert "tag" not in body["meta"]


async def test_a_stale_resolve_is_refused_and_writes_nothing(api: Api) -> None:
    remote = Remote(api)
    pid = await make_patient(api)
    aid = await allergy_conflict(api, remote, pid)
    cid = criticality_id(aid)
    _, detail, _ = await api.request("GET", f"/conflicts/{cid}")
    heads = [v["head"] for v in detail["values"]]
    # Another site adds a third value after the clinician read the conflict.
    await remote.write("AllergyIntolerance", aid, "criticality", "low", replaces=())
    before = api.counts()
    status, body, _ = await api.request("POST", f"/conflicts/{cid}/resolve",
                                        json={"choose": 0, "heads": heads})
    assert status == 409, body
    assert "changed since it was read" in body["issue"][0]["diagnostics"]
    assert api.counts() == before
    _, detail, _ = await api.request("GET", f"/conflicts/{cid}")
    assert len(detail["values"]) == 3


async def test_bad_resolve_requests_say_what_to_send(api: Api) -> None:
    remote = Remote(api)
    pid = await make_patient(api)
    aid = await allergy_conflict(api, remote, pid)
    cid = criticality_id(aid)
    _, detail, _ = await api.request("GET", f"/conflicts/{cid}")
    heads = [v["head"] for v in detail["values"]]
    before = api.counts()
    for body, status_code, words in (
            ({"heads": heads}, 400, "exactly one of choose"),
            ({"choose": 0, "value": "low", "heads": heads}, 400, "exactly one of choose"),
            ({"choose": 0}, 400, "heads"),
            ({"choose": 5, "heads": heads}, 400, "is not the index of a value"),
            ({"choose": "nonsense", "heads": heads}, 400, "is not a head id"),
            ({"choose": f"{BRANCH},999", "heads": heads}, 400, "is not one of the values"),
            ({"choose": 0, "heads": ["x", "y"]}, 400, "is not a head id"),
            ({"choose": 0, "heads": heads, "reason": "x" * 1001}, 400, "reason"),
            ({"choose": 0, "heads": heads, "colour": "red"}, 400, "colour"),
            ({"value": "extreme", "heads": heads}, 422, "criticality"),
            ([1, 2], 400, "resolve body")):
        status, answer, _ = await api.request("POST", f"/conflicts/{cid}/resolve", json=body)
        assert status == status_code, (body, answer)
        assert words in answer["issue"][0]["diagnostics"], (body, answer)
    status, answer, _ = await api.request("POST", f"/conflicts/{cid}/resolve", data=b"{",
                                          headers={"Content-Type": "application/json"})
    assert status == 400
    status, _, _ = await api.request("POST", f"/conflicts/{cid}/resolve", role="clerk",
                                     json={"choose": 0, "heads": heads})
    assert status == 403
    assert api.counts() == before
    await api.edge.writer.flush()  # read and refusal rows go with the next group commit
    refused = [r for r in audit_rows(api) if r["outcome"] == 403 and r["id"] == aid]
    assert refused and refused[-1]["action"] == "update"


async def test_tag_search_refuses_other_tags(api: Api) -> None:
    assert TAG == CONFLICT_TAG == f"{CONFLICT_TAG_SYSTEM}|conflict"  # the tag apply writes
    status, body, _ = await api.request("GET", "/fhir/Patient?_tag=urn:other|x")
    assert status == 400 and "only urn:chartsync:tag|conflict" in body["issue"][0]["diagnostics"]
    status, body, _ = await api.request("GET", f"/fhir/Patient?_tag={TAG}")
    assert status == 200 and body.get("entry", []) == []


async def test_an_edit_against_a_delete_is_resolved_either_way(api: Api) -> None:
    remote = Remote(api)
    pid = await make_patient(api)
    decided: dict[bool, str] = {}
    for keep in (True, False):
        status, body, _ = await api.request("POST", "/fhir/AllergyIntolerance", json={
            "resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{pid}"},
            "code": {"text": "ラテックス"}})
        aid = body["id"]
        state = await api.edge.reader.state("AllergyIntolerance", aid)
        assert state is not None
        live = tuple(h.dot for h in state.registers["@deleted"].heads)
        status, _, _ = await api.request("PUT", f"/fhir/AllergyIntolerance/{aid}", json={
            **{k: v for k, v in body.items() if k != "meta"}, "note": [{"text": "確認済"}]})
        assert status == 200
        await remote.write("AllergyIntolerance", aid, "@deleted", True, replaces=live)
        cid = conflict_id("AllergyIntolerance", aid, "@deleted")
        status, detail, _ = await api.request("GET", f"/conflicts/{cid}")
        assert status == 200 and detail["rule"] == "delete-vs-edit"
        assert sorted(v["value"] for v in detail["values"]) == [False, True]
        choice = next(v["head"] for v in detail["values"] if v["value"] is not keep)
        status, answer, _ = await api.request("POST", f"/conflicts/{cid}/resolve", json={
            "choose": choice, "heads": [v["head"] for v in detail["values"]]})
        assert status == 200, answer
        assert answer["deleted"] is not keep
        decided[keep] = aid
    status, body, _ = await api.request("GET", f"/fhir/AllergyIntolerance/{decided[True]}")
    assert status == 200 and body["note"] == [{"text": "確認済"}]
    status, _, _ = await api.request("GET", f"/fhir/AllergyIntolerance/{decided[False]}")
    assert status == 410
    status, listing, _ = await api.request("GET", "/conflicts")
    assert listing["items"] == []


async def test_keeping_one_side_of_an_order_keeps_its_whole_edit(api: Api) -> None:
    """Stop at this site, dose change at the other: the order's parts resolve together."""
    remote = Remote(api)
    pid = await make_patient(api)
    drug = {"medicationCodeableConcept": {"text": "アムロジピン 5mg"}}
    dose = [{"text": "1日1回 朝食後"}]
    order = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
             "subject": {"reference": f"Patient/{pid}"}, **drug, "dosageInstruction": dose}
    status, body, _ = await api.request("POST", "/fhir/MedicationRequest", json=order)
    assert status == 201
    mid = body["id"]
    state = await api.edge.reader.state("MedicationRequest", mid)
    assert state is not None
    group = ("status", "medication[x]", "dosageInstruction", "dispenseRequest", "doNotPerform")
    seen = {n: tuple(h.dot for h in state.registers[n].heads) for n in group
            if n in state.registers}
    before = max(h.hlc for reg in state.registers.values() for h in reg.heads)
    status, _, _ = await api.request("PUT", f"/fhir/MedicationRequest/{mid}",
                                     json={**order, "id": mid, "status": "stopped"})
    assert status == 200
    new_dose = [{"text": "1日2回 朝夕食後"}]
    await remote.edit("MedicationRequest", mid, {
        "status": "active", "medication[x]": drug, "dosageInstruction": new_dose,
        "dispenseRequest": None, "doNotPerform": None}, seen, hlc=before + 1)
    status, listing, _ = await api.request("GET", "/conflicts?type=MedicationRequest")
    by_register = {i["register"]: i for i in listing["items"]}
    assert {"status", "dosageInstruction"} <= set(by_register)
    assert {i["rule"] for i in listing["items"]} == {"order-stop-vs-modify"}
    _, shown, _ = await api.request("GET", f"/fhir/MedicationRequest/{mid}")
    assert shown["status"] == "stopped"  # the stop is shown until the prescriber decides
    assert shown["dosageInstruction"] == dose  # this site's edit is the newer one
    _, detail, _ = await api.request("GET", f"/conflicts/{by_register['status']['id']}")
    theirs = next(v["head"] for v in detail["values"] if v["value"] == "active")
    status, answer, _ = await api.request(
        "POST", f"/conflicts/{by_register['status']['id']}/resolve",
        json={"choose": theirs, "heads": [v["head"] for v in detail["values"]]})
    assert status == 200, answer
    _, kept, _ = await api.request("GET", f"/fhir/MedicationRequest/{mid}")
    assert kept["status"] == "active" and kept["dosageInstruction"] == new_dose
    status, listing, _ = await api.request("GET", "/conflicts?type=MedicationRequest")
    assert listing["items"] == []
