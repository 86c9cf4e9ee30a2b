"""An existing FHIR client, unchanged: fhirpy (async) creates, reads, updates, searches
(following next links) and reads history against the edge."""

from __future__ import annotations

from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from tests.edge_node.conftest import Api
from tests.edge_node.resources import OID


async def test_fhirpy_create_read_update_search_history(api: Api) -> None:
    url = str(api.client.make_url("/fhir"))
    client = AsyncFHIRClient(url, authorization=f"Bearer {api.tokens['clinician']}")

    pat = client.resource("Patient", name=[{"family": "Yamada", "given": ["Taro"]}],
                          birthDate="1980-04-01", identifier=[{"system": OID, "value": "77"}])
    await pat.save()
    assert pat.id
    first = pat["meta"]["versionId"]

    read = await client.reference("Patient", pat.id).to_resource()
    assert read["name"][0]["family"] == "Yamada"

    read["gender"] = "male"
    await read.save()
    second = read["meta"]["versionId"]
    assert second != first

    for i in range(5):
        obs = client.resource("Observation", status="final", code={"text": "pulse"},
                              subject={"reference": f"Patient/{pat.id}"},
                              valueQuantity={"value": 60 + i})
        await obs.save()
    found = await client.resources("Observation").search(patient=pat.id).limit(2).fetch_all()
    assert len(found) == 5
    by_ident = await client.resources("Patient").search(identifier=f"{OID}|77").fetch()
    assert [p.id for p in by_ident] == [pat.id]
    assert await client.resources("Patient").search(name="yama").first() is not None

    history = await read.execute("_history", method="get")
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == [second, first]

    await read.delete()  # type: ignore[no-untyped-call]
    try:
        await client.reference("Patient", pat.id).to_resource()
        raise AssertionError("a deleted patient must not read")
    except ResourceNotFound:
        pass
    try:
        await client.resources("Patient").search(shoe="42").fetch()
        raise AssertionError("an unsupported parameter must be refused")
    except OperationOutcome as exc:
        assert "shoe" in str(exc)
