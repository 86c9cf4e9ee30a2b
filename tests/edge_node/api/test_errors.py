"""Every refusal: the status code, an OperationOutcome a person can act on, and nothing
written (resources, history, outbox, search tokens and audit rows of writes unchanged)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.edge_node.conftest import Api
from tests.edge_node.resources import observation, patient


@pytest.fixture
async def seeded(api: Api) -> tuple[Api, str]:
    status, body, _ = await api.request("POST", "/fhir/Patient", json=patient())
    assert status == 201
    await api.edge.writer.wait_idle()
    return api, str(body["id"])


async def _refused(api: Api, method: str, path: str, status: int, **kw: Any) -> dict[str, Any]:
    before = api.counts()
    got, body, headers = await api.request(method, path, **kw)
    assert got == status, body
    assert headers["Content-Type"].startswith("application/fhir+json")
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"]
    await api.edge.writer.wait_idle()
    assert api.counts() == before
    return dict(body)


async def test_unknown_type(seeded) -> None:
    api, _ = seeded
    await _refused(api, "POST", "/fhir/Spaceship", 404, json={"resourceType": "Spaceship"})
    await _refused(api, "GET", "/fhir/Spaceship/1", 404)


async def test_invalid_json(seeded) -> None:
    api, pid = seeded
    body = await _refused(api, "POST", "/fhir/Patient", 400, data=b'{"resourceType": "Pat')
    assert "not valid JSON" in body["issue"][0]["diagnostics"]
    await _refused(api, "PUT", f"/fhir/Patient/{pid}", 400, data=b"\xff\xfe")


@pytest.mark.parametrize("resource", [
    {"resourceType": "Observation", "status": "final"},  # no code
    {"resourceType": "Observation", "status": "done", "code": {"text": "x"}},  # bad status
    {"resourceType": "Patient", "birthDate": "1980-13-01"},
    {"resourceType": "Patient", "name": None},
    {"resourceType": "Patient", "name": "Yamada"},
    {"resourceType": "Encounter", "status": "finished"},  # no class
    {"resourceType": "AllergyIntolerance", "patient": {"reference": "Group/1"}},
    {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/1"}},  # no medication[x]
    {"resourceType": "DocumentReference", "status": "current", "content": []},
    {"resourceType": "Condition"},  # no subject
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
     "valueQuantity": {"value": 1}, "valueString": "x"},  # two members of value[x]
    ["not", "an", "object"],
])
async def test_resource_failing_validation(seeded, resource: Any) -> None:
    api, _ = seeded
    rtype = resource["resourceType"] if isinstance(resource, dict) else "Patient"
    body = await _refused(api, "POST", f"/fhir/{rtype}", 422, json=resource)
    assert "Yamada" not in body["issue"][0]["diagnostics"]


async def test_type_of_body_differs_from_url(seeded) -> None:
    api, _ = seeded
    await _refused(api, "POST", "/fhir/Observation", 422, json=patient())


async def test_id_mismatch(seeded) -> None:
    api, pid = seeded
    await _refused(api, "PUT", f"/fhir/Patient/{pid}", 400, json={**patient(), "id": "other"})
    await _refused(api, "PUT", f"/fhir/Patient/{pid}", 400, json=patient())


async def test_body_too_large(seeded) -> None:
    api, _ = seeded
    huge = patient(text={"status": "generated", "div": "x" * (300 * 1024)})
    await _refused(api, "POST", "/fhir/Patient", 413, json=huge)


async def test_stale_if_match_is_412_and_bad_etag_is_400(seeded) -> None:
    api, pid = seeded
    current = {**patient(), "id": pid}
    await _refused(api, "PUT", f"/fhir/Patient/{pid}", 412, json=current,
                   headers={"If-Match": 'W/"7"'})
    await _refused(api, "DELETE", f"/fhir/Patient/{pid}", 412, headers={"If-Match": 'W/"2"'})
    await _refused(api, "PUT", f"/fhir/Patient/{pid}", 400, json=current,
                   headers={"If-Match": "yesterday"})


async def test_unsupported_search_parameter(seeded) -> None:
    api, _ = seeded
    await _refused(api, "GET", "/fhir/Patient?shoe_size=42", 400)


async def test_missing_and_bad_ids(seeded) -> None:
    api, pid = seeded
    await _refused(api, "GET", "/fhir/Patient/no-such-id", 404)
    await _refused(api, "DELETE", "/fhir/Patient/no-such-id", 404)
    await _refused(api, "GET", f"/fhir/Patient/{pid}/_history/9", 404)
    await _refused(api, "GET", "/fhir/Patient/bad%20id", 400)


async def test_method_not_allowed_and_unknown_path(seeded) -> None:
    api, pid = seeded
    await _refused(api, "PATCH", f"/fhir/Patient/{pid}", 405, json={})
    await _refused(api, "GET", "/nothing/here", 404)


async def test_conditional_create_is_refused(seeded) -> None:
    api, _ = seeded
    await _refused(api, "POST", "/fhir/Patient", 400, json=patient(),
                   headers={"If-None-Exist": "identifier=1"})


async def test_refusals_are_audited_with_their_status(seeded) -> None:
    api, pid = seeded
    await api.request("PUT", f"/fhir/Patient/{pid}", json={**patient(), "id": pid},
                      headers={"If-Match": 'W/"5"'})
    await api.request("POST", "/fhir/Observation", json={"resourceType": "Observation"})
    await api.edge.writer.wait_idle()
    _, body, _ = await api.request("GET", f"/audit?user={api.user_ids['clinician']}",
                                        role="admin")
    outcomes = [(r["action"], r["outcome"]) for r in body["rows"]]
    assert ("update", 412) in outcomes and ("create", 422) in outcomes


async def test_require_if_match_answers_428(tmp_path) -> None:
    import os

    from aiohttp.test_utils import TestClient, TestServer

    from edge_node.api.app import build_app
    from edge_node.config import EdgeConfig
    from edge_node.node import Edge
    from tests.edge_node.conftest import make_data_dir, wall_ms

    tokens, _ = make_data_dir(tmp_path / "e")
    config = EdgeConfig(tmp_path / "e", require_if_match=True)
    async with Edge.open(config, clock=wall_ms, entropy=os.urandom) as edge, \
            TestClient(TestServer(build_app(edge))) as client:
        hdrs = {"Authorization": f"Bearer {tokens['clinician']}"}
        resp = await client.post("/fhir/Patient", json=patient(), headers=hdrs)
        pid = (await resp.json())["id"]
        etag = resp.headers["ETag"]
        resp = await client.put(f"/fhir/Patient/{pid}", json={**patient(), "id": pid},
                                headers=hdrs)
        assert resp.status == 428
        resp = await client.put(f"/fhir/Patient/{pid}", json={**patient(), "id": pid},
                                headers={**hdrs, "If-Match": etag})
        assert resp.status == 200
        resp = await client.get("/fhir/metadata", headers=hdrs)
        caps = await resp.json(content_type=None)
        assert caps["rest"][0]["resource"][0]["versioning"] == "versioned-update"


async def test_observation_for_later_use(seeded) -> None:
    api, pid = seeded
    status, _, _ = await api.request("POST", "/fhir/Observation", json=observation(pid))
    assert status == 201
