"""`PUT/GET /v1/snapshots` on both stores: only a snapshot signed by the uploading site, at
a sane position and with the signed bytes is stored; a refused one changes nothing."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from cloud_hub.store.base import SnapshotInfo
from sync_protocol.ids import PracticeId
from sync_protocol.snapshot_signature import attestation_from_headers, verify_attestation
from tests.cloud_hub.harness import Harness, Member
from tests.cloud_hub.snapshots import attested, upload
from tests.cloud_hub.test_retention import with_config


async def _held(harness: Harness, pid: uuid.UUID) -> tuple[list[SnapshotInfo], list[bytes]]:
    """What the store holds: the verified snapshots and their bytes."""
    found = await harness.store.list_snapshots(PracticeId(pid))
    return found, [await harness.store.snapshot_chunk(PracticeId(pid), i.snapshot_id, 0,
                                                      i.size) or b"" for i in found]


async def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    assert body["code"] == code and body["message"] and body["hint"], body
    return body


async def test_a_signed_snapshot_is_listed_and_served_with_its_attestation(
        harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    for _ in range(3):
        assert (await harness.push(a, clinic.seal(a.site, 1))).status == 200
    bodies = {2: b"two" * 1000, 3: b"three" * 1000}
    atts = {seq: attested(clinic.practice_id, a.site, seq, body) for seq, body in bodies.items()}
    for seq in (2, 3):
        put = await upload(harness, a, bodies[seq], atts[seq])
        assert put.status == 201, await put.text()
        assert (await put.json())["snapshot_id"] == str(atts[seq].claim.snapshot_id)
    listed = (await (await harness.client.get("/v1/snapshots", headers=b.headers)).json())
    assert [(s["snapshot_id"], s["hub_seq"], s["site_id"], s["size"], s["signature"],
             s["log_after_kept"]) for s in listed["snapshots"]] == [
        (str(atts[s].claim.snapshot_id), s, str(a.site.site_id), len(bodies[s]),
         atts[s].signature.hex(), True) for s in (3, 2)]
    for path, seq in (("/v1/snapshots/latest", 3),
                      (f"/v1/snapshots/{atts[2].claim.snapshot_id}", 2)):
        got = await harness.client.get(path, headers=b.headers)
        assert got.status == 200
        body = await got.read()
        att = attestation_from_headers(got.headers, clinic.practice_id)
        verify_attestation(att, a.site.keys.public(a.site.site_id))
        assert att == atts[seq]
        assert hashlib.blake2b(body, digest_size=32).digest() == att.claim.digest
    missing = await harness.client.get(f"/v1/snapshots/{uuid.uuid4()}", headers=b.headers)
    await _problem(missing, 404, "not_found")
    # Another practice sees none of them.
    _, (c,) = await harness.practice_with_sites(1)
    theirs = await harness.client.get(f"/v1/snapshots/{atts[2].claim.snapshot_id}",
                                      headers=c.headers)
    await _problem(theirs, 404, "not_found")
    assert (await (await harness.client.get("/v1/snapshots", headers=c.headers)).json()) == {
        "snapshots": []}


async def test_forged_corrupt_foreign_and_old_uploads_change_nothing(
        harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One stolen credential cannot evict the genuine snapshots, whatever it uploads; the
    staging files of the uploads never stay behind."""
    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    with_config(harness, snapshots_kept=2, retention_batches=1)
    clinic, (a, b) = await harness.practice_with_sites()
    pid = clinic.practice_id
    for _ in range(6):
        assert (await harness.push(a, clinic.seal(a.site, 1))).status == 200
    genuine = b"genuine snapshot" * 100
    assert (await upload(harness, a, genuine, attested(pid, a.site, 4, genuine))).status == 201
    held = await _held(harness, pid)
    trimmed = (await harness.store.log_bounds(PracticeId(pid))).trimmed_through
    assert trimmed == 4
    junk = b"attacker bytes" * 100

    async def refused(member: Member, att: Any, status: int, code: str,
                      body: bytes = junk) -> None:
        for _ in range(3):  # as often as a thief likes
            await _problem(await upload(harness, member, body, att), status, code)
        assert await _held(harness, pid) == held
        assert (await harness.store.log_bounds(PracticeId(pid))).trimmed_through == trimmed
        assert list(staging.iterdir()) == []

    await refused(a, None, 400, "malformed")  # unsigned
    corrupt = attested(pid, a.site, 5, junk)
    await refused(a, corrupt, 400, "tampered", junk[:-1] + b"!")  # bytes changed on the way
    await refused(a, corrupt, 400, "tampered", junk[:-1])  # truncated
    # Signed with another site's key but claiming a: a's registered key says no.
    await refused(a, attested(pid, a.site, 5, junk, signer=b.site.keys), 401, "bad_signature")
    # b's genuine signature, uploaded with a's credential.
    await refused(a, attested(pid, b.site, 5, junk), 403, "wrong_origin")
    # a's own signature over an older position (a replayed or stale snapshot).
    await refused(a, attested(pid, a.site, 3, junk), 409, "snapshot_behind")
    await refused(a, attested(pid, a.site, 7, junk), 400, "bad_request")  # past the head
    # A pending (unapproved) site cannot upload even with its own signature.
    pending = await harness.enroll(clinic, await harness.token(pid, a.headers), "thief")
    await refused(pending, attested(pid, pending.site, 5, junk), 403, "site_pending")
    # The genuine site goes on: a newer verified snapshot replaces nothing but the oldest.
    newer = b"newer" * 100
    assert (await upload(harness, a, newer, attested(pid, a.site, 6, newer))).status == 201
    assert [i.hub_seq for i in (await _held(harness, pid))[0]] == [6, 4]
    # Retention (1 batch) then trimmed through 5: the log after the older one is gone.
    listed = await (await harness.client.get("/v1/snapshots", headers=b.headers)).json()
    assert [(s["hub_seq"], s["log_after_kept"]) for s in listed["snapshots"]] == [
        (6, True), (4, False)]
    assert (await _held(harness, pid))[1][0] == newer
    assert list(staging.iterdir()) == []
