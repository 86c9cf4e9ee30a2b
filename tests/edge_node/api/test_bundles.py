"""Transaction Bundles apply all or nothing, with urn:uuid references resolved; batch
Bundles answer per entry."""

from __future__ import annotations

from typing import Any

from tests.edge_node.conftest import Api
from tests.edge_node.resources import encounter, observation, patient


def _entry(method: str, url: str, resource: dict[str, Any] | None = None,
           full_url: str | None = None
           ) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": {"method": method, "url": url}}
    if resource is not None:
        entry["resource"] = resource
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def visit(ref: str = "urn:uuid:11111111-1111-4111-8111-111111111111"
          ) -> list[dict[str, Any]]:
    return [
        _entry("POST", "Patient", patient(), ref),
        _entry("POST", "Encounter", encounter("x") | {"subject": {"reference": ref}}),
        _entry("POST", "Observation", observation("x") | {"subject": {"reference": ref}}),
    ]


async def test_transaction_resolves_urn_uuid_references(api: Api) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": visit()}
    status, body, _ = await api.request("POST", "/fhir", json=bundle)
    assert status == 200, body
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created"] * 3
    pid = body["entry"][0]["response"]["location"].split("/")[1]
    status, found, _ = await api.request("GET", f"/fhir/Observation?patient={pid}")
    assert len(found["entry"]) == 1
    assert found["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    status, enc, _ = await api.request("GET", f"/fhir/Encounter?subject=Patient/{pid}")
    assert len(enc["entry"]) == 1


async def test_transaction_with_one_bad_entry_writes_nothing(api: Api) -> None:
    entries = [*visit(), _entry("POST", "Observation", {"resourceType": "Observation"})]
    before = api.counts()
    status, body, _ = await api.request(
        "POST", "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert status == 422
    assert "entry 3" in body["issue"][0]["diagnostics"]
    await api.edge.writer.wait_idle()
    assert api.counts() == before


async def test_transaction_refused_in_the_writer_writes_nothing(api: Api) -> None:
    status, made, _ = await api.request("POST", "/fhir/Patient", json=patient())
    pid = made["id"]
    before = api.counts()
    entries = [
        *visit(),
        {**_entry("PUT", f"Patient/{pid}", {**patient(), "id": pid}),
         "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"9"'}}]
    status, body, _ = await api.request(
        "POST", "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert status == 412
    assert "nothing in the transaction was written" in body["issue"][0]["diagnostics"]
    await api.edge.writer.wait_idle()
    assert api.counts() == before


async def test_batch_answers_per_entry(api: Api) -> None:
    status, made, _ = await api.request("POST", "/fhir/Patient", json=patient())
    pid = made["id"]
    entries = [
        _entry("POST", "Patient", patient(mrn="9")),
        _entry("POST", "Observation", {"resourceType": "Observation"}),
        _entry("PUT", f"Patient/{pid}", {**patient(), "id": pid, "gender": "female"}),
        _entry("DELETE", "Patient/does-not-exist"),
        _entry("GET", f"Patient/{pid}"),
        _entry("POST", "Spaceship", {"resourceType": "Spaceship"}),
    ]
    status, body, _ = await api.request(
        "POST", "/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries})
    assert status == 200
    assert body["type"] == "batch-response"
    got = [e["response"]["status"] for e in body["entry"]]
    assert got == ["201 Created", "422", "200 OK", "404", "400", "404"]
    assert body["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    status, read, _ = await api.request("GET", f"/fhir/Patient/{pid}")
    assert read["gender"] == "female"
    assert read["meta"]["versionId"] not in ("", made["meta"]["versionId"])
    assert read["meta"]["versionId"] == body["entry"][2]["response"]["etag"][3:-1]


async def test_bundle_refusals(api: Api) -> None:
    before = api.counts()
    for body, want in [
        ({"resourceType": "Patient"}, 422),
        ({"resourceType": "Bundle", "type": "collection", "entry": []}, 422),
        ({"resourceType": "Bundle", "type": "transaction",
          "entry": [_entry("POST", "Patient", patient())] * 51}, 413),
    ]:
        status, out, _ = await api.request("POST", "/fhir", json=body)
        assert status == want and out["resourceType"] == "OperationOutcome"
    await api.edge.writer.wait_idle()
    assert api.counts() == before


async def test_transaction_is_one_group_commit(api: Api) -> None:
    before = api.edge.writer.statistics().groups
    entries = [_entry("POST", "Patient", patient(mrn=str(i))) for i in range(40)]
    status, _, _ = await api.request(
        "POST", "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert status == 200
    await api.edge.writer.wait_idle()
    # One group for the 40 writes (+ at most one for a read's audit row queued meanwhile).
    assert api.edge.writer.statistics().groups - before <= 2
    assert api.edge.writer.statistics().largest_group >= 40
