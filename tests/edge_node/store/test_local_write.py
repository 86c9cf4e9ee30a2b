"""The local write path refuses in-place changes of confirmed records (記録の確定)."""

from __future__ import annotations

from typing import Any

from tests.edge_node.conftest import Api
from tests.edge_node.resources import (
    CORRECTION_REASON,
    corrected,
    document_reference,
    medication_request,
    observation,
    patient,
)

CONFIRMER = "http://chartsync.example/fhir/StructureDefinition/correction-confirmer"


async def _create(api: Api, resource: dict[str, Any]) -> dict[str, Any]:
    status, body, _ = await api.request("POST", f"/fhir/{resource['resourceType']}",
                                        json=resource)
    assert status == 201, body
    assert isinstance(body, dict)
    return body


def _issue(body: dict[str, Any]) -> str:
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0].get("diagnostics", "")) + " " + str(
        body["issue"][0].get("details", {}).get("text", ""))


async def test_a_final_observation_is_corrected_not_overwritten(api: Api) -> None:
    pid = (await _create(api, patient()))["id"]
    obs = await _create(api, observation(pid, 72.0))
    path = f"/fhir/Observation/{obs['id']}"
    status, body, _ = await api.request("PUT", path, json={**obs, "valueQuantity": {
        "value": 80.0, "unit": "/min"}})
    assert status == 422
    text = _issue(body)
    assert "cannot be changed in place" in text and "correction" in text
    assert body["issue"][0]["code"] == "business-rule"
    status, read, _ = await api.request("GET", path)
    assert read["meta"]["versionId"] == obs["meta"]["versionId"]  # nothing was written

    fixed = corrected({**obs, "valueQuantity": {"value": 80.0, "unit": "/min"}}, "再測定")
    status, body, _ = await api.request("PUT", path, json=fixed)
    assert status == 200, body
    assert body["status"] == "amended"
    assert body["meta"]["versionId"] not in ("", obs["meta"]["versionId"])
    stamps = {e["url"]: e["valueString"] for e in body["extension"]}
    assert stamps == {CORRECTION_REASON: "再測定", CONFIRMER: api.user_ids["clinician"]}
    # Provenance names the confirming user of the correction.
    _, provs, _ = await api.request(
        "GET", f"/fhir/Provenance?target={path[6:]}/_history/{body['meta']['versionId']}")
    [prov] = [e["resource"] for e in provs["entry"]]
    assert {"type": {"coding": [{"system": (
        "http://terminology.hl7.org/CodeSystem/provenance-participant-type"),
        "code": "verifier"}]}, "who": {"identifier": {
            "system": "urn:chartsync:user", "value": api.user_ids["clinician"]}}} in prov["agent"]
    # The same reason again is not a new correction.
    status, _, _ = await api.request("PUT", path, json={**body, "valueQuantity": {
        "value": 81.0, "unit": "/min"}})
    assert status == 422


async def test_a_note_is_amended_by_a_new_document(api: Api) -> None:
    pid = (await _create(api, patient()))["id"]
    doc = await _create(api, document_reference(pid))
    path = f"/fhir/DocumentReference/{doc['id']}"
    edited = {**doc, "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}]}
    status, body, _ = await api.request("PUT", path, json=edited)
    assert status == 422 and "relatesTo" in _issue(body)
    amendment = {**document_reference(pid), "relatesTo": [
        {"code": "appends", "target": {"reference": f"DocumentReference/{doc['id']}"}}]}
    await _create(api, amendment)
    status, body, _ = await api.request("PUT", path, json={**doc, "status": "superseded"})
    assert status == 200, body  # a lifecycle move is not an edit of the content


async def test_an_issued_order_is_stopped_not_edited(api: Api) -> None:
    pid = (await _create(api, patient()))["id"]
    order = await _create(api, medication_request(pid))
    path = f"/fhir/MedicationRequest/{order['id']}"
    status, body, _ = await api.request("PUT", path, json={
        **order, "dosageInstruction": [{"text": "2 tablets"}]})
    assert status == 422 and "priorPrescription" in _issue(body)
    status, body, _ = await api.request("PUT", path, json={**order, "status": "stopped"})
    assert status == 200 and body["status"] == "stopped"
