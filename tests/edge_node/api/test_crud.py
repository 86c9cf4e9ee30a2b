"""FHIR create, read, vread, update, delete and history over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.edge_node.conftest import Api


def patient(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Yamada", "given": ["Taro"]}],
            "birthDate": "1980-04-01",
            "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51", "value": "12345"}],
            **extra}


async def test_create_read_update_vread_history_delete(api: Api) -> None:
    status, body, headers = await api.request("POST", "/fhir/Patient", json=patient())
    assert status == 201
    pid = body["id"]
    v1_id = body["meta"]["versionId"]
    # A version id names the change that wrote it: "<seq>-<site id>", the same at every site.
    assert v1_id.endswith("-" + api.edge.site.site_id.hex)
    assert headers["ETag"] == f'W/"{v1_id}"'
    assert headers["Location"].endswith(f"/fhir/Patient/{pid}/_history/{v1_id}")
    assert headers["Content-Type"].startswith("application/fhir+json")

    status, read, headers = await api.request("GET", f"/fhir/Patient/{pid}")
    assert status == 200 and read == body and headers["ETag"] == f'W/"{v1_id}"'

    changed = {**read, "gender": "male"}
    status, body2, headers = await api.request("PUT", f"/fhir/Patient/{pid}", json=changed,
                                               headers={"If-Match": f'W/"{v1_id}"'})
    v2_id = body2["meta"]["versionId"]
    assert status == 200 and v2_id not in (v1_id, "") and body2["gender"] == "male"

    status, body, _ = await api.request("PUT", f"/fhir/Patient/{pid}", json=changed,
                                        headers={"If-Match": f'W/"{v1_id}"'})
    assert status == 412 and body["resourceType"] == "OperationOutcome"

    status, v1, _ = await api.request("GET", f"/fhir/Patient/{pid}/_history/{v1_id}")
    assert status == 200 and "gender" not in v1

    status, _, headers = await api.request("DELETE", f"/fhir/Patient/{pid}")
    assert status == 204
    v3_id = headers["ETag"][3:-1]
    status, body, _ = await api.request("GET", f"/fhir/Patient/{pid}")
    assert status == 410 and body["resourceType"] == "OperationOutcome"

    status, hist, _ = await api.request("GET", f"/fhir/Patient/{pid}/_history")
    assert status == 200 and hist["type"] == "history"
    methods = [e["request"]["method"] for e in hist["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in hist["entry"]] == [
        f'W/"{v}"' for v in (v3_id, v2_id, v1_id)]
    assert hist["entry"][1]["resource"]["gender"] == "male"
    status, _, _ = await api.request("GET", f"/fhir/Patient/{pid}/_history/{v3_id}")
    assert status == 410
    status, v2, _ = await api.request("GET", f"/fhir/Patient/{pid}/_history/{v2_id}")
    assert status == 200 and v2 == body2
    status, _, _ = await api.request("GET", f"/fhir/Patient/{pid}/_history/2")
    assert status == 404  # the site's row counter is not a version id
