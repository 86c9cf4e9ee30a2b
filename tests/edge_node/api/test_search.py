"""Search: Patient by identifier, name, birthdate; clinical types by patient and subject;
_lastUpdated, _count and next links; unsupported parameters are 400."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.edge_node.conftest import Api
from tests.edge_node.resources import CLINICAL, OID, observation, patient


async def _create(api: Api, resource: dict[str, Any]) -> str:
    status, body, _ = await api.request("POST", f"/fhir/{resource['resourceType']}",
                                        json=resource)
    assert status == 201, body
    return str(body["id"])


async def _ids(api: Api, query: str) -> list[str]:
    status, bundle, _ = await api.request("GET", query)
    assert status == 200, bundle
    assert bundle["type"] == "searchset"
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


async def test_patient_search_parameters(api: Api) -> None:
    a = await _create(api, patient("Yamada", "Taro", "1980-04-01", "111"))
    b = await _create(api, patient("Yamashita", "Hanako", "1992-11-30", "222"))
    c = await _create(api, patient("Sato", "Ichiro", "1980-12-24", "333"))
    assert await _ids(api, f"/fhir/Patient?identifier={OID}|222") == [b]
    assert await _ids(api, "/fhir/Patient?identifier=333") == [c]
    assert await _ids(api, f"/fhir/Patient?identifier={OID}|999") == []
    assert sorted(await _ids(api, f"/fhir/Patient?identifier={OID}|")) == sorted([a, b, c])
    assert sorted(await _ids(api, "/fhir/Patient?name=yama")) == sorted([a, b])
    assert await _ids(api, "/fhir/Patient?name=HANA") == [b]
    assert sorted(await _ids(api, "/fhir/Patient?birthdate=1980")) == sorted([a, c])
    assert await _ids(api, "/fhir/Patient?birthdate=1980-04-01") == [a]
    assert sorted(await _ids(api, "/fhir/Patient?birthdate=ge1990-01-01")) == [b]
    assert sorted(await _ids(api, "/fhir/Patient?birthdate=lt1980-05")) == [a]
    assert await _ids(api, "/fhir/Patient?name=yama&birthdate=1992") == [b]
    assert sorted(await _ids(api, "/fhir/Patient?name=sato,hanako")) == sorted([b, c])


async def test_clinical_search_by_patient_and_subject(api: Api) -> None:
    p1 = await _create(api, patient(mrn="1"))
    p2 = await _create(api, patient(mrn="2"))
    mine = {}
    for make in CLINICAL:
        mine[make.__name__] = [await _create(api, make(p1)), await _create(api, make(p1))]
        await _create(api, make(p2))
    for make in CLINICAL:
        rtype = make(p1)["resourceType"]
        assert sorted(await _ids(api, f"/fhir/{rtype}?patient={p1}")) == \
            sorted(mine[make.__name__])
        assert sorted(await _ids(api, f"/fhir/{rtype}?patient=Patient/{p1}")) == \
            sorted(mine[make.__name__])
        if rtype != "AllergyIntolerance":
            assert sorted(await _ids(api, f"/fhir/{rtype}?subject=Patient/{p1}")) == \
                sorted(mine[make.__name__])


async def test_deleted_resources_leave_search_results(api: Api) -> None:
    p = await _create(api, patient())
    obs = await _create(api, observation(p))
    assert await _ids(api, f"/fhir/Observation?patient={p}") == [obs]
    status, _, _ = await api.request("DELETE", f"/fhir/Observation/{obs}")
    assert status == 204
    assert await _ids(api, f"/fhir/Observation?patient={p}") == []


async def test_count_and_next_links_page_through_everything(api: Api) -> None:
    p = await _create(api, patient())
    made = [await _create(api, observation(p, float(i))) for i in range(7)]
    seen: list[str] = []
    url = f"/fhir/Observation?patient={p}&_count=3"
    pages = 0
    while url:
        status, bundle, _ = await api.request("GET", url)
        assert status == 200
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        nxt = [lnk["url"] for lnk in bundle["link"] if lnk["relation"] == "next"]
        url = "" if not nxt else (urlsplit(nxt[0]).path + "?" + urlsplit(nxt[0]).query)
        pages += 1
    assert pages == 3
    assert seen == sorted(made)


async def test_last_updated(api: Api) -> None:
    p = await _create(api, patient())
    _, body, _ = await api.request("GET", f"/fhir/Patient/{p}")
    stamp = body["meta"]["lastUpdated"]
    assert await _ids(api, f"/fhir/Patient?_lastUpdated=ge{stamp}") == [p]
    assert await _ids(api, f"/fhir/Patient?_lastUpdated=gt{stamp}") == []
    assert await _ids(api, "/fhir/Patient?_lastUpdated=lt2000-01-01") == []


@pytest.mark.parametrize("query", [
    "/fhir/Patient?family=Yamada",
    "/fhir/Patient?name:exact=Yamada",
    "/fhir/Observation?code=8867-4",
    "/fhir/AllergyIntolerance?subject=Patient/x",
    "/fhir/Patient?_count=0",
    "/fhir/Patient?birthdate=ne1980",
    "/fhir/Patient?birthdate=April",
    "/fhir/Patient?_lastUpdated=2024-01-01",
    "/fhir/Patient?_sort=name",
    "/fhir/Observation?patient=Encounter/1",
])
async def test_unsupported_search_is_a_400_naming_it(api: Api, query: str) -> None:
    status, body, _ = await api.request("GET", query)
    assert status == 400
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"]
