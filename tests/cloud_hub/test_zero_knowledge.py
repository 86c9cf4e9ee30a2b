"""A full `pg_dump` of the hub holds no patient name, identifier or note text, and not the
hub's signing seed (which lives in the hub key file)."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from cloud_hub.keyprint import read_seed
from cloud_hub.store.locator import open_store
from sync_protocol.batch import read_sealed
from sync_protocol.models import Change
from tests.cloud_hub.harness import running_hub
from tests.cloud_hub.snapshots import attested, upload
from tests.sync_protocol.conftest import Site

NAME_FAMILY, NAME_GIVEN = "Yamadaxq", "Hanakozz"
KANJI_NAME = "山田花子"
MRN = "MRN-4711-QZ9"
NOTE = "Severe reaction to peanuts observed during the 2019 visit"
PATIENT_ID = "0193a8f0-1111-7000-8000-00000000beef"


def pg_dump_binary() -> str:
    for candidate in ("/usr/bin/pg_dump", "/usr/lib/postgresql/15/bin/pg_dump"):
        if Path(candidate).exists():
            return candidate
    found = shutil.which("pg_dump")
    if found is None:
        pytest.skip("postgres: no pg_dump binary to dump the hub database with")
    return found


def charts(site: Site) -> list[Change]:
    patient: dict[str, object] = {"resourceType": "Patient", "name": [
        {"family": NAME_FAMILY, "given": [NAME_GIVEN]}, {"text": KANJI_NAME}],
        "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11234567", "value": MRN}],
        "birthDate": "1961-04-02"}
    note: dict[str, object] = {
        "resourceType": "AllergyIntolerance", "criticality": "high",
        "patient": {"reference": f"Patient/{PATIENT_ID}"}, "note": [{"text": NOTE}]}
    return [site.change(patient, rid=PATIENT_ID), site.change(note)]


async def test_pg_dump_of_the_hub_holds_no_chart_content(pg_dsn: str, tmp_path: Path) -> None:
    binary = pg_dump_binary()
    needles = [NAME_FAMILY, NAME_GIVEN, KANJI_NAME, MRN, NOTE[:30], PATIENT_ID, "1961-04-02",
               "Patient/"]
    key_file = tmp_path / "hub-signing.key"
    async with open_store(pg_dsn) as store, running_hub(store, key_file) as harness:
        client = harness.client
        clinic, (a, b) = await harness.practice_with_sites()
        sealed = clinic.seal(a.site, changes=charts(a.site))
        assert (await harness.push(a, sealed)).status == 200
        await client.post(f"/v1/mailbox/{b.site.site_id}", data=b"sealed practice key",
                          headers=a.headers)
        snapshot = sealed[-200:]
        assert (await upload(harness, a, snapshot, attested(
            clinic.practice_id, a.site, 1, snapshot))).status == 201
    done = await asyncio.to_thread(subprocess.run, [binary, "--dbname", pg_dsn],
                                   capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    dump = done.stdout.decode("utf-8", errors="replace")
    # The dump is real: it holds the batch (bytea as hex) and the practice id.
    assert read_sealed(sealed).hash.hex() in dump and str(clinic.practice_id) in dump
    for needle in needles:
        raw = needle.encode()
        assert needle not in dump, needle
        assert raw.hex() not in dump, f"{needle} (hex)"
        assert raw.hex().upper() not in dump, f"{needle} (HEX)"
    # The hub's signing seed is in its key file only: a stolen dump cannot forge receipts.
    seed = read_seed(key_file)
    assert harness.hub_verify_key.hex() in dump, "the public key is kept, as hex"
    for form in (seed.hex(), seed.hex().upper(), base64.b64encode(seed).decode(),
                 base64.urlsafe_b64encode(seed).decode().rstrip("=")):
        assert form not in dump, "hub signing seed in the dump"
    assert seed.decode("latin-1") not in done.stdout.decode("latin-1")
