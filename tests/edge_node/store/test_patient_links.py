"""The reads behind duplicate listing and merges, on a real edge's database."""

from __future__ import annotations

from typing import Any

from edge_node.store.connection import open_sync
from edge_node.store.patient_links import (
    duplicate_candidates,
    found,
    merge_inputs,
    naming_patient,
    register_values,
)
from tests.edge_node.conftest import Api
from tests.edge_node.resources import encounter, observation, patient


async def _create(api: Api, resource: dict[str, Any]) -> str:
    status, body, _ = await api.request("POST", f"/fhir/{resource['resourceType']}",
                                        json=resource)
    assert status == 201, body
    return str(body["id"])


async def test_candidates_share_a_match_token_and_are_live(api: Api) -> None:
    a = await _create(api, patient("Yamada", "Taro", "1980-04-01", "1"))
    b = await _create(api, patient("YAMADA", "Taro", "1980-04-01", "2"))
    c = await _create(api, patient("Sato", "Hanako", "1990-01-01", "3"))
    d = await _create(api, patient("Suzuki", "Jiro", "1970-01-01", "3"))
    await _create(api, patient("Tanaka", "Ken", "1980-04-01", "4"))
    gone = await _create(api, patient("Sato", "Hanako", "1990-01-01", "5"))
    assert (await api.request("DELETE", f"/fhir/Patient/{gone}"))[0] == 204
    conn = open_sync(api.data_dir)
    try:
        assert [pid for pid, _ in duplicate_candidates(conn, 100)] == sorted([a, b, c, d])
        assert len(duplicate_candidates(conn, 2)) == 2
        assert found(conn, [("Patient", gone)])[("Patient", gone)].resource is None
        assert found(conn, [("Patient", "nobody")]) == {}
        assert register_values(conn, ("Basic", "nothing"), "extension") == []
    finally:
        conn.close()


async def test_resources_naming_a_patient_and_merge_inputs(api: Api) -> None:
    a = await _create(api, patient(mrn="1"))
    b = await _create(api, patient(mrn="2"))
    mine = sorted([await _create(api, encounter(a)), await _create(api, observation(a))])
    await _create(api, encounter(b))
    conn = open_sync(api.data_dir)
    try:
        assert sorted(f.resource_id for f in naming_patient(conn, a, 10)) == mine
        assert len(naming_patient(conn, a, 1)) == 1
        inputs = merge_inputs(conn, b, a, 10)
        assert set(inputs.patients) == {a, b} and inputs.record is None
        assert len(inputs.resources) == 1 and inputs.record_values == []
    finally:
        conn.close()
