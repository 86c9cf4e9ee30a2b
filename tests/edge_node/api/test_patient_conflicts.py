""""No known allergies" contradicted by an allergy: flagged on read, search and $conflicts."""

from __future__ import annotations

import uuid
from typing import Any

from edge_node.store.received import AdvanceChain
from edge_node.store.sync_state import AdvanceCursor
from sync_protocol.models import Change, ChangeOp
from tests.edge_node.conftest import Api
from tests.edge_node.resources import allergy, medication_request, patient

OTHER = uuid.UUID(int=0x5EC0)
NKA_CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "716186003",
                        "display": "No known allergy"}]}


async def _create(api: Api, resource: dict[str, Any]) -> dict[str, Any]:
    status, body, _ = await api.request("POST", f"/fhir/{resource['resourceType']}",
                                        json=resource)
    assert status == 201, body
    assert isinstance(body, dict)
    return body


def _flagged(resource: dict[str, Any]) -> bool:
    return any(t.get("code") == "conflict" for t in resource["meta"].get("tag", ()))


async def test_nka_beside_an_allergy_is_flagged_everywhere_it_is_read(api: Api) -> None:
    pid = (await _create(api, patient()))["id"]
    nka = await _create(api, {**allergy(pid), "code": NKA_CODE, "criticality": "low"})
    path = f"/fhir/AllergyIntolerance/{nka['id']}"
    status, alone, _ = await api.request("GET", path)
    assert status == 200 and not _flagged(alone)

    penicillin = await _create(api, allergy(pid))
    status, read, _ = await api.request("GET", path)
    assert status == 200 and _flagged(read)
    assert read["code"] == NKA_CODE  # both records stay
    status, other, _ = await api.request("GET", f"/fhir/AllergyIntolerance/{penicillin['id']}")
    assert not _flagged(other)

    status, found, _ = await api.request("GET", f"/fhir/AllergyIntolerance?patient={pid}")
    flags = {e["resource"]["id"]: _flagged(e["resource"]) for e in found["entry"]}
    assert flags == {nka["id"]: True, penicillin["id"]: False}

    status, params, _ = await api.request("GET", f"{path}/$conflicts")
    assert status == 200
    [conflict] = params["parameter"]
    parts = {p["name"]: p for p in conflict["part"]}
    assert parts["rule"]["valueString"] == "no-known-allergies"
    assert parts["related"]["valueReference"] == {
        "reference": f"AllergyIntolerance/{penicillin['id']}"}

    # Retracting the NKA settles it.
    status, _, _ = await api.request("PUT", path, json={**read, "verificationStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                    "allergyintolerance-verification", "code": "entered-in-error"}]}})
    assert status == 200
    status, params, _ = await api.request("GET", f"{path}/$conflicts")
    assert params["parameter"] == []


async def test_conflicts_name_their_rule_and_the_prescriber(api: Api) -> None:
    pid = (await _create(api, patient()))["id"]
    order = await _create(api, {**medication_request(pid),
                                "requester": {"reference": "Practitioner/dr-1"}})
    path = f"/fhir/MedicationRequest/{order['id']}/$conflicts"
    status, params, _ = await api.request("GET", path)
    assert status == 200 and params["parameter"] == []
    # Another site stopped the order without having seen it as this site has it.
    stop = Change(resource_type="MedicationRequest", resource_id=order["id"], op=ChangeOp.SET,
                  elements={"status": b'"stopped"', "@deleted": b"false"}, replaces={},
                  hlc=1 << 40, origin=OTHER, seq=1, user="u9")
    await api.edge.writer.apply_remote([stop], [
        AdvanceCursor(1), AdvanceChain(str(OTHER), 2, b"\x11" * 32)], label="test batch")
    await api.edge.writer.wait_idle()
    status, params, _ = await api.request("GET", path)
    [conflict] = params["parameter"]
    parts = {p["name"]: p for p in conflict["part"]}
    assert parts["element"]["valueString"] == "status"
    assert parts["rule"]["valueString"] == "stop-vs-modify"
    assert parts["addressedTo"]["valueReference"] == {"reference": "Practitioner/dr-1"}
    status, read, _ = await api.request("GET", f"/fhir/MedicationRequest/{order['id']}")
    assert read["status"] == "stopped" and _flagged(read)
