"""Duplicate patients over HTTP: `$duplicates`, `$merge`, `$unmerge`, and their refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.edge_node.conftest import Api
from tests.edge_node.resources import CLINICAL, OID, encounter, observation

SYL = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"


def jp_patient(kana: str, kanji: str, birth: str = "1980-04-01", **extra: Any
               ) -> dict[str, Any]:
    """A JP Core style patient: the kanji and the kana spelling as two names."""
    return {"resourceType": "Patient", "birthDate": birth, "gender": "male", "name": [
        {"extension": [{"url": SYL, "valueCode": "IDE"}], "use": "official", "text": kanji},
        {"extension": [{"url": SYL, "valueCode": "SYL"}], "use": "official", "text": kana},
    ], **extra}


def params(source: str, target: str) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": source}},
        {"name": "target-patient", "valueReference": {"reference": target}}]}


async def create(api: Api, resource: dict[str, Any]) -> str:
    status, body, _ = await api.request("POST", f"/fhir/{resource['resourceType']}",
                                        json=resource)
    assert status == 201, body
    return str(body["id"])


async def ids(api: Api, query: str) -> list[str]:
    status, bundle, _ = await api.request("GET", query)
    assert status == 200, bundle
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


async def pairs(api: Api) -> list[tuple[str, str, list[str]]]:
    status, body, _ = await api.request("GET", "/fhir/Patient/$duplicates")
    assert status == 200, body
    out = []
    for p in body["parameter"]:
        if p["name"] == "pair":
            refs = [q["valueReference"]["reference"] for q in p["part"] if q["name"] == "patient"]
            out.append((refs[0], refs[1], [q["valueCode"] for q in p["part"]
                                           if q["name"] == "reason"]))
    return out


def part(body: dict[str, Any], name: str) -> list[Any]:
    return [p for p in body["parameter"] if p["name"] == name]


async def test_likely_duplicates_by_kana_name_and_birth_date_or_identifier(api: Api) -> None:
    a = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    b = await create(api, jp_patient("やまだ　たろう", "山田太郎"))  # hiragana, full-width space
    c = await create(api, jp_patient("ﾔﾏﾀﾞ ﾀﾛｳ", "山田 太郎", birth="1980-04-02"))
    d = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎", gender="female"))
    e = await create(api, jp_patient("サトウ ハナコ", "佐藤 花子",
                                     identifier=[{"system": OID, "value": "77"}]))
    f = await create(api, jp_patient("スズキ ハナコ", "鈴木 花子", birth="1990-01-01",
                                     identifier=[{"system": OID, "value": "77"}]))
    assert await pairs(api) == sorted([
        (f"Patient/{a}", f"Patient/{b}", ["name-birthdate"]),
        (f"Patient/{e}", f"Patient/{f}", ["identifier"]),
    ])
    assert c and d  # other birth date; other sex: not listed


async def test_merge_moves_the_visits_and_unmerge_puts_them_back(api: Api) -> None:
    first = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    second = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    assert first < second  # ids are time-ordered: `first` was registered first
    visits = {pid: [await create(api, make(pid)) for make in CLINICAL]
              for pid in (first, second)}
    before = api.counts()

    # Asked the other way round: the record registered first survives all the same.
    status, body, _ = await api.request("POST", "/fhir/Patient/$merge",
                                        json=params(f"Patient/{first}", f"Patient/{second}"))
    assert status == 200, body
    assert part(body, "source-patient")[0]["valueReference"]["reference"] == \
        f"Patient/{second}"
    assert "registered first survives" in part(body, "outcome")[0]["resource"]["issue"][0][
        "diagnostics"]
    assert len(part(body, "moved")) == len(CLINICAL)
    result = part(body, "result")[0]["resource"]
    assert result["id"] == first
    assert result["link"] == [{"other": {"reference": f"Patient/{second}"}, "type": "replaces"}]
    status, source, _ = await api.request("GET", f"/fhir/Patient/{second}")
    assert source["active"] is False
    assert source["link"] == [{"other": {"reference": f"Patient/{first}"},
                               "type": "replaced-by"}]
    for i, make in enumerate(CLINICAL):
        rtype = make(first)["resourceType"]
        assert await ids(api, f"/fhir/{rtype}?patient={first}") == sorted(
            [visits[first][i], visits[second][i]])
        assert await ids(api, f"/fhir/{rtype}?patient={second}") == []
    assert await pairs(api) == []
    after = api.counts()
    assert after["resources"] == before["resources"] + 1  # the undo record; nothing deleted

    # Audited once per patient, naming both.
    for pid in (first, second):
        status, audit, _ = await api.request("GET", f"/audit?patient=Patient/{pid}",
                                             role="auditor")
        assert status == 200, audit
        [row] = [r for r in audit["rows"] if r["action"] == "merge"]
        assert row["user"] == api.user_ids["clinician"]
        assert row["detail"]["source"] == f"Patient/{second}"
        assert row["detail"]["target"] == f"Patient/{first}"
        assert row["detail"]["moved"] == len(CLINICAL)

    status, body, _ = await api.request("POST", "/fhir/Patient/$unmerge",
                                        json=params(f"Patient/{first}", f"Patient/{second}"))
    assert status == 200, body
    assert len(part(body, "moved")) == len(CLINICAL) and part(body, "kept") == []
    status, source, _ = await api.request("GET", f"/fhir/Patient/{second}")
    assert "active" not in source and "link" not in source
    status, target, _ = await api.request("GET", f"/fhir/Patient/{first}")
    assert "link" not in target
    for pid in (first, second):
        for i, make in enumerate(CLINICAL):
            rtype = make(pid)["resourceType"]
            assert await ids(api, f"/fhir/{rtype}?patient={pid}") == [visits[pid][i]]
    assert [p[:2] for p in await pairs(api)] == [(f"Patient/{first}", f"Patient/{second}")]


async def test_unmerge_leaves_a_resource_moved_since_and_reports_it(api: Api) -> None:
    first = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    second = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    third = await create(api, jp_patient("スズキ イチロウ", "鈴木 一郎"))
    visit = await create(api, encounter(second))
    status, _, _ = await api.request("POST", "/fhir/Patient/$merge",
                                     json=params(f"Patient/{second}", f"Patient/{first}"))
    assert status == 200
    status, current, _ = await api.request("GET", f"/fhir/Encounter/{visit}")
    moved = {**{k: v for k, v in current.items() if k != "meta"},
             "subject": {"reference": f"Patient/{third}"}}
    status, _, _ = await api.request("PUT", f"/fhir/Encounter/{visit}", json=moved)
    assert status == 200
    status, body, _ = await api.request("POST", "/fhir/Patient/$unmerge",
                                        json=params(f"Patient/{second}", f"Patient/{first}"))
    assert status == 200, body
    assert part(body, "moved") == []
    [kept] = part(body, "kept")
    assert kept["part"][0]["valueReference"]["reference"] == f"Encounter/{visit}"
    assert await ids(api, f"/fhir/Encounter?patient={third}") == [visit]


async def test_a_visit_written_without_seeing_the_merge_is_moved_by_merging_again(
        api: Api) -> None:
    first = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    second = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    merge = params(f"Patient/{second}", f"Patient/{first}")
    assert (await api.request("POST", "/fhir/Patient/$merge", json=merge))[0] == 200
    late = await create(api, observation(second))
    status, body, _ = await api.request("POST", "/fhir/Patient/$merge", json=merge)
    assert status == 200, body
    assert [p["valueReference"]["reference"] for p in part(body, "moved")] == \
        [f"Observation/{late}"]
    status, body, _ = await api.request("POST", "/fhir/Patient/$merge", json=merge)
    assert status == 409 and "already merged" in body["issue"][0]["diagnostics"]
    # The undo record lists both moves: the unmerge points the late one back too.
    status, body, _ = await api.request("POST", "/fhir/Patient/$unmerge", json=merge)
    assert status == 200, body
    assert await ids(api, f"/fhir/Observation?patient={second}") == [late]


Ids = tuple[str, str, str]
BAD: list[tuple[str, Callable[[Ids], Any], int, str]] = [
    ("clinician", lambda i: params("Patient/nope", f"Patient/{i[0]}"), 404, "does not exist"),
    ("clinician", lambda i: params(f"Patient/{i[0]}", f"Patient/{i[0]}"), 400, "itself"),
    ("clinician", lambda i: params(f"Encounter/{i[0]}", f"Patient/{i[1]}"), 400,
     "must reference a Patient"),
    ("clinician", lambda i: params(f"Patient/{i[0]}", "Patient/bad id!"), 400,
     "not a FHIR id"),
    ("clinician", lambda i: {"resourceType": "Patient"}, 422, "Parameters"),
    ("clinician", lambda i: {"resourceType": "Parameters", "parameter": []}, 400,
     "source-patient"),
    ("clerk", lambda i: params(f"Patient/{i[0]}", f"Patient/{i[2]}"), 403, "may not merge"),
    ("clinician", lambda i: params(f"Patient/{i[2]}", f"Patient/{i[1]}"), 409,
     "already merged into"),
    ("clinician", lambda i: params(f"Patient/{i[1]}", f"Patient/{i[0]}"), 409,
     "already merged into"),
]


@pytest.mark.parametrize(("role", "body", "status", "words"), BAD)
async def test_bad_merges_are_refused_and_change_nothing(
        api: Api, role: str, body: Callable[[Ids], Any], status: int, words: str) -> None:
    a = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    b = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    c = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    await create(api, encounter(b))
    merged = await api.request("POST", "/fhir/Patient/$merge",
                               json=params(f"Patient/{b}", f"Patient/{a}"))
    assert merged[0] == 200
    before = api.counts()
    answer = await api.request("POST", "/fhir/Patient/$merge", role=role, json=body((a, b, c)))
    assert answer[0] == status, answer[1]
    assert answer[1]["resourceType"] == "OperationOutcome"
    assert words in answer[1]["issue"][0]["diagnostics"], answer[1]
    assert api.counts() == before


async def test_unmerge_of_a_pair_that_is_not_merged_is_refused(api: Api) -> None:
    a = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    b = await create(api, jp_patient("ヤマダ タロウ", "山田 太郎"))
    before = api.counts()
    status, body, _ = await api.request("POST", "/fhir/Patient/$unmerge",
                                        json=params(f"Patient/{b}", f"Patient/{a}"))
    assert status == 409 and "is not merged into" in body["issue"][0]["diagnostics"]
    assert api.counts() == before


async def test_metadata_lists_the_patient_operations(api: Api) -> None:
    status, caps, _ = await api.request("GET", "/fhir/metadata")
    assert status == 200
    [listed] = [r for r in caps["rest"][0]["resource"] if r["type"] == "Patient"]
    assert {"duplicates", "merge", "unmerge"} <= {op["name"] for op in listed["operation"]}
    status, _, _ = await api.request("GET", "/fhir/Patient/$duplicates?_count=0")
    assert status == 400
