"""Tokens and roles; the hash-chained audit log, its queries and AuditEvent export;
Provenance per version; /status; the CapabilityStatement."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from edge_node.fhir.search import CONFLICT_TAG, SEARCH_PARAMS
from edge_node.fhir.types import SERVED_TYPES
from edge_node.store.check import check_path
from tests.edge_node.conftest import Api
from tests.edge_node.resources import observation, patient


async def test_requests_without_a_valid_token_get_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        for method, path in [("GET", "/fhir/metadata"), ("GET", "/status"),
                             ("POST", "/fhir/Patient"), ("GET", "/audit")]:
            async with api.client.request(method, path, headers=headers, json=patient()) as r:
                assert r.status == 401
                body = await r.json(content_type=None)
                assert body["resourceType"] == "OperationOutcome"
    assert api.counts()["resources"] == 0


async def test_roles(api: Api) -> None:
    status, made, _ = await api.request("POST", "/fhir/Patient", json=patient(), role="clerk")
    assert status == 201
    pid = made["id"]
    status, _, _ = await api.request("POST", "/fhir/Observation", json=observation(pid),
                                     role="clerk")
    assert status == 403
    status, _, _ = await api.request("GET", f"/fhir/Patient/{pid}", role="auditor")
    assert status == 403
    for role in ("clinician", "clerk"):
        status, _, _ = await api.request("GET", "/audit", role=role)
        assert status == 403
    for role in ("admin", "auditor"):
        status, _, _ = await api.request("GET", "/audit", role=role)
        assert status == 200


async def test_audit_answers_who_opened_which_chart(api: Api) -> None:
    status, made, _ = await api.request("POST", "/fhir/Patient", json=patient())
    pid = made["id"]
    await api.request("POST", "/fhir/Observation", json=observation(pid))
    await api.request("GET", f"/fhir/Patient/{pid}", role="clerk")
    await api.request("GET", f"/fhir/Observation?patient={pid}", role="clerk")
    await api.edge.writer.wait_idle()
    status, body, _ = await api.request("GET", f"/audit?user={api.user_ids['clerk']}",
                                        role="auditor")
    assert status == 200
    rows = body["rows"]
    assert [(r["action"], r["patient"], r["outcome"]) for r in rows] == [
        ("read", f"Patient/{pid}", 200), ("search", f"Patient/{pid}", 200)]
    assert rows[1]["detail"] == {"params": ["patient"], "count": 1}
    assert all(r["client"] == "127.0.0.1" for r in rows)
    status, body, _ = await api.request("GET", f"/audit?patient={pid}", role="admin")
    assert {r["action"] for r in body["rows"]} == {"create", "read", "search"}
    status, body, _ = await api.request(
        "GET", f"/audit?patient={pid}&since=2000-01-01&until=2000-01-02", role="admin")
    assert body["rows"] == []
    status, bundle, _ = await api.request("GET", f"/audit?patient={pid}&format=AuditEvent",
                                          role="admin")
    events = [e["resource"] for e in bundle["entry"]]
    assert all(e["resourceType"] == "AuditEvent" for e in events)
    assert {e["action"] for e in events} >= {"C", "R"}
    status, _, _ = await api.request("GET", "/audit?colour=red", role="admin")
    assert status == 400


async def test_check_detects_an_edited_and_a_deleted_audit_row(api: Api) -> None:
    for i in range(3):
        await api.request("POST", "/fhir/Patient", json=patient(mrn=str(i)))
    await api.edge.writer.wait_idle()
    assert check_path(api.data_dir).ok
    conn = sqlite3.connect(api.data_dir / "edge.sqlite3")
    seq, user = conn.execute("SELECT seq, user FROM audit WHERE action = 'create' "
                             "ORDER BY seq LIMIT 1 OFFSET 1").fetchone()
    conn.execute("UPDATE audit SET user = 'someone-else' WHERE seq = ?", (seq,))
    conn.commit()
    problems = check_path(api.data_dir).problems
    assert any(f"audit row {seq} was altered" in p for p in problems)
    conn.execute("UPDATE audit SET user = ? WHERE seq = ?", (user, seq))
    conn.commit()
    assert check_path(api.data_dir).ok
    conn.execute("DELETE FROM audit WHERE seq = ?", (seq,))
    conn.commit()
    conn.close()
    problems = check_path(api.data_dir).problems
    assert any("missing" in p for p in problems)
    assert any("audit rows of writes" in p for p in problems)


async def test_provenance_per_version(api: Api) -> None:
    status, made, _ = await api.request("POST", "/fhir/Patient", json=patient(),
                                        headers={"X-Device-Id": "pc-reception-1"})
    pid = made["id"]
    _, changed, _ = await api.request("PUT", f"/fhir/Patient/{pid}",
                                      json={**made, "gender": "male"})
    v1, v2 = made["meta"]["versionId"], changed["meta"]["versionId"]
    status, bundle, _ = await api.request("GET", f"/fhir/Provenance?target=Patient/{pid}")
    assert status == 200
    provs = [e["resource"] for e in bundle["entry"]]
    assert [p["target"][0]["reference"] for p in provs] == [
        f"Patient/{pid}/_history/{v2}", f"Patient/{pid}/_history/{v1}"]
    # Who, where, when: the clinical time is the author's clock, the same at every site.
    assert provs[1]["occurredDateTime"] == made["meta"]["lastUpdated"]
    assert provs[1]["id"] == f"a-{v1}"
    first = provs[1]
    who = {a["type"]["coding"][0]["code"]: a["who"]["identifier"]["value"] for a in first["agent"]}
    assert who == {"author": api.user_ids["clinician"], "custodian": str(api.edge.site.site_id),
                   "enterer": "pc-reception-1"}
    assert first["activity"]["coding"][0]["code"] == "CREATE"
    status, one, _ = await api.request(
        "GET", f"/fhir/Provenance?target=Patient/{pid}/_history/{v2}")
    assert len(one["entry"]) == 1
    status, _, _ = await api.request("GET", "/fhir/Provenance?patient=1")
    assert status == 400


async def test_status_reports_the_outbox(api: Api) -> None:
    await api.request("POST", "/fhir/Patient", json=patient())
    status, body, _ = await api.request("GET", "/status", role="auditor")
    assert status == 200
    assert body["site_id"] == str(api.edge.site.site_id)
    assert body["outbox_depth"] == 1
    for key in ("practice_id", "last_push", "last_pull", "hub_reachable", "hub"):
        assert body[key] is None


async def test_metadata_lists_exactly_what_is_served(api: Api) -> None:
    status, caps, _ = await api.request("GET", "/fhir/metadata")
    assert status == 200 and caps["resourceType"] == "CapabilityStatement"
    rest = caps["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
    listed = {r["type"]: r for r in rest["resource"]}
    assert set(listed) == {*SERVED_TYPES, "Provenance"}
    for rtype in SERVED_TYPES:
        names = {p["name"] for p in listed[rtype]["searchParam"]}
        assert names == {*SEARCH_PARAMS[rtype], "_lastUpdated", "_count", "_tag"}
        assert {i["code"] for i in listed[rtype]["interaction"]} == {
            "read", "vread", "update", "delete", "history-instance", "create", "search-type"}
    # Every listed search parameter really works (no 400).
    for rtype in SERVED_TYPES:
        for p in listed[rtype]["searchParam"]:
            value = {"token": "x|y", "string": "ya", "date": "ge2020-01-01",
                     "reference": "Patient/x", "number": "5"}[p["type"]]
            if p["name"] == "_tag":  # the one tag served: resources with an open conflict
                value = CONFLICT_TAG
            status, _, _ = await api.request("GET", f"/fhir/{rtype}?{p['name']}={value}")
            assert status == 200, (rtype, p)


async def test_process_log_carries_no_patient_data_or_tokens(
        tmp_path, caplog) -> None:
    import logging
    import os

    from aiohttp.test_utils import TestClient, TestServer

    from edge_node.api.app import AccessLogger, build_app
    from edge_node.config import EdgeConfig
    from edge_node.node import Edge
    from tests.edge_node.conftest import make_data_dir, wall_ms

    caplog.set_level(logging.DEBUG)
    tokens, _ = make_data_dir(tmp_path / "e")
    hdrs = {"Authorization": f"Bearer {tokens['clinician']}"}
    async with Edge.open(EdgeConfig(tmp_path / "e"), clock=wall_ms, entropy=os.urandom) as edge:
        server = TestServer(build_app(edge))
        # aiohttp's default access log would print query strings (names): use ours.
        await server.start_server(access_log_class=AccessLogger,
                                  access_log=logging.getLogger("edge_node.access"))
        async with TestClient(server) as client:
            resp = await client.post("/fhir/Patient", json=patient("Kuroda", "Misaki"),
                                     headers=hdrs)
            pid = (await resp.json(content_type=None))["id"]
            for path in ("/fhir/Patient?name=Kuroda", f"/fhir/Patient/{pid}",
                         "/fhir/Patient?name=Kuroda&shoe=1"):
                await (await client.get(path, headers=hdrs)).read()
            await (await client.post("/fhir/Patient", json={"resourceType": "Patient",
                                                           "name": "Kuroda"},
                                     headers=hdrs)).read()
    assert "GET /fhir/{type}" in caplog.text  # the access log did run
    for secret in ("Kuroda", "Misaki", "1980-04-01", tokens["clinician"]):
        assert secret not in caplog.text


async def test_a_disabled_account_or_replaced_token_is_refused_within_the_recheck_time(
        api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    """`edge user disable` / `edge user token` in another process while the edge serves."""
    from chartsync.cli import main
    from edge_node.api.app import AUTH
    from edge_node.api.auth import ACCOUNT_RECHECK_S

    now = [1000.0]
    api.client.app[AUTH].monotonic = lambda: now[0]
    assert (await api.request("GET", "/fhir/Patient", role="clerk"))[0] == 200
    data = str(api.data_dir)
    assert await asyncio.to_thread(main, ["edge", "user", "disable", "clerk", "--data", data]) == 0
    now[0] += ACCOUNT_RECHECK_S
    status, body, _ = await api.request("GET", "/fhir/Patient", role="clerk")
    assert status == 401 and "disabled" in body["issue"][0]["diagnostics"]
    assert await asyncio.to_thread(main, ["edge", "user", "enable", "clerk", "--data", data]) == 0
    assert (await api.request("GET", "/fhir/Patient", role="clerk"))[0] == 200

    old = api.tokens["clinician"]
    assert (await api.request("GET", "/fhir/Patient"))[0] == 200
    assert await asyncio.to_thread(
        main, ["edge", "user", "token", "clinician", "--data", data]) == 0
    now[0] += ACCOUNT_RECHECK_S
    assert (await api.request("GET", "/fhir/Patient"))[0] == 401
    new = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(new) == 43 and new != old
    api.tokens["clinician"] = new
    assert (await api.request("GET", "/fhir/Patient"))[0] == 200


async def test_account_changes_are_audited_in_the_chain(
        api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    """Account changes from `edge user` (another process) reach the chained audit log:
    the ones made before the edge opened at start, the others with the next group."""
    import getpass

    from chartsync.cli import main

    data = str(api.data_dir)
    ids = api.user_ids
    # make_data_dir added four accounts before the edge opened: chained at its start.
    status, body, _ = await api.request("GET", "/audit?user=setup", role="admin")
    assert status == 200
    assert [(r["action"], r["detail"]["account"], r["role"]) for r in body["rows"]] == [
        ("account-add", ids[role], "operator")
        for role in ("admin", "clinician", "clerk", "auditor")]
    assert main(["edge", "user", "disable", "clerk", "--data", data]) == 0
    assert main(["edge", "user", "enable", "clerk", "--data", data]) == 0
    assert main(["edge", "user", "token", "clinician", "--data", data]) == 0
    assert main(["edge", "user", "add", "sato", "--role", "clerk", "--data", data]) == 0
    assert main(["edge", "user", "add", "sato", "--role", "clerk", "--data", data]) == 1
    capsys.readouterr()
    by = f"os:{getpass.getuser()}"
    status, body, _ = await api.request("GET", f"/audit?user={by}", role="auditor")
    rows = body["rows"]
    assert [(r["action"], r["detail"]) for r in rows[:3]] == [
        ("account-disable", {"account": ids["clerk"], "account_role": "clerk"}),
        ("account-enable", {"account": ids["clerk"], "account_role": "clerk"}),
        ("account-token", {"account": ids["clinician"], "account_role": "clinician"})]
    assert [r["action"] for r in rows] == [  # the refused second add left nothing
        "account-disable", "account-enable", "account-token", "account-add"]
    assert all(r["client"] == "local" and r["patient"] is None for r in rows)
    status, bundle, _ = await api.request("GET", f"/audit?user={by}&format=AuditEvent",
                                          role="admin")
    events = [e["resource"] for e in bundle["entry"]]
    assert {e["type"]["code"] for e in events} == {"110137"}
    assert events[0]["entity"][0]["what"]["identifier"]["value"] == ids["clerk"]
    assert [e["action"] for e in events] == ["U", "U", "U", "C"]
    await api.edge.writer.wait_idle()
    conn = sqlite3.connect(api.data_dir / "edge.sqlite3")
    try:
        assert conn.execute("SELECT count(*) FROM account_events").fetchone() == (0,)
    finally:
        conn.close()
    report = check_path(api.data_dir)
    assert report.ok, report.problems
