"""`chartsync hub site list | register-former | approve` on both stores: registering the
sites lost with a hub from a survivor's `edge sites --json`, and the operator's approval
for disaster recovery; each change audited, bad input refused before anything is written."""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
import uuid
from pathlib import Path

import nacl.utils
import pytest

from chartsync.cli import main
from cloud_hub.store.base import NewSite, OperatorAction, SiteStatus
from cloud_hub.store.locator import open_store
from sync_protocol.ids import PracticeId, SiteId
from sync_protocol.keys import SiteKeyPair


def _entry(name: str) -> dict[str, object]:
    """One entry as `chartsync edge sites --json` prints it."""
    site_id = uuid.uuid4()
    pub = SiteKeyPair.generate(nacl.utils.random(64)).public(SiteId(site_id))
    return {"status": "approved", "last_seen_ms": 1, "register": {
        "site_id": str(site_id), "name": name,
        "verify_key": base64.b64encode(pub.verify_key).decode(),
        "box_key": base64.b64encode(pub.box_key).decode()}}


def _hub(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["hub", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _actions(url: str, pid: str) -> list[OperatorAction]:
    async def read() -> list[OperatorAction]:
        async with open_store(url, pool_size=1) as store:
            return await store.operator_actions(PracticeId(uuid.UUID(pid)))
    return asyncio.run(read())


def _pending_site(url: str, pid: str) -> str:
    """A site enrolled with a token and not approved yet (a restored machine)."""
    async def enroll() -> str:
        async with open_store(url, pool_size=1) as store:
            practice = PracticeId(uuid.UUID(pid))
            token_hash = nacl.utils.random(32)
            await store.add_enrollment_token(practice, token_hash, 2**40, 1)
            site_id = SiteId(uuid.uuid4())
            pub = SiteKeyPair.generate(nacl.utils.random(64)).public(site_id)
            await store.enroll_site(practice, token_hash, NewSite(
                site_id, "restored", pub.verify_key, pub.box_key, nacl.utils.random(32)), 2)
            return str(site_id)
    return asyncio.run(enroll())


def test_register_former_sites_and_approve(store_url: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _hub(capsys, "practice", "create", "Sato Clinic", "--store", store_url,
                          "--json")
    assert code == 0, err
    pid = json.loads(out)["practice_id"]
    branch, annex = _entry("Branch"), _entry("Annex")
    listing = tmp_path / "sites.json"
    listing.write_text(json.dumps([branch, annex]))

    # Bad input: a clear message, exit 1, nothing registered.
    (tmp_path / "junk.json").write_text("not json")
    broken = json.loads(json.dumps([branch, annex]))
    broken[1]["register"]["verify_key"] = "c2hvcnQ="
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    for path, said in (("junk.json", "is not a JSON list of sites"),
                       ("broken.json", "entry 2 of"),
                       ("absent.json", "cannot read")):
        code, _, err = _hub(capsys, "site", "register-former", "--practice-id", pid, "--from",
                            str(tmp_path / path), "--store", store_url)
        assert code == 1 and said in err and "edge sites --data DIR --json" in err, err
    code, _, err = _hub(capsys, "site", "register-former", "--practice-id", pid, "--from",
                        str(listing), "--site", str(uuid.uuid4()), "--store", store_url)
    assert code == 1 and "has no site" in err
    code, _, err = _hub(capsys, "site", "register-former", "--practice-id", str(uuid.uuid4()),
                        "--from", str(listing), "--store", store_url)
    assert code == 1 and "this hub has no practice" in err and "practice list" in err
    code, out, _ = _hub(capsys, "site", "list", "--practice-id", pid, "--store", store_url,
                        "--json")
    assert code == 0 and json.loads(out) == []
    assert _actions(store_url, pid) == []

    # Only the chosen site, then the whole file: the known one is left as it is.
    branch_id = branch["register"]["site_id"]  # type: ignore[index]
    code, out, err = _hub(capsys, "site", "register-former", "--practice-id", pid, "--from",
                          str(listing), "--site", str(branch_id), "--store", store_url)
    assert code == 0, err
    assert out.split() == [branch_id, "registered", "(revoked)", "Branch"]
    code, out, err = _hub(capsys, "site", "register-former", "--practice-id", pid, "--from",
                          str(listing), "--store", store_url, "--json")
    assert code == 0, err
    assert [(s["name"], s["status"], s["registered"]) for s in json.loads(out)] == [
        ("Branch", "revoked", False), ("Annex", "revoked", True)]
    code, out, _ = _hub(capsys, "site", "list", "--practice-id", pid, "--store", store_url,
                        "--json")
    assert sorted((s["name"], s["status"]) for s in json.loads(out)) == [
        ("Annex", "revoked"), ("Branch", "revoked")]

    # Disaster recovery: the operator approves a restored site; a revoked one never.
    restored = _pending_site(store_url, pid)
    code, out, err = _hub(capsys, "site", "approve", restored, "--practice-id", pid,
                          "--store", store_url)
    assert code == 0, err
    assert out.split()[:2] == [restored, SiteStatus.APPROVED.value]
    code, _, err = _hub(capsys, "site", "approve", str(branch_id), "--practice-id", pid,
                        "--store", store_url)
    assert code == 1 and "was revoked" in err and "next step:" in err
    code, _, err = _hub(capsys, "site", "approve", str(uuid.uuid4()), "--practice-id", pid,
                        "--store", store_url)
    assert code == 1 and "has no site" in err
    assert main(["hub", "site", "approve", "not-a-uuid", "--practice-id", pid,
                 "--store", store_url]) == 2

    actions = _actions(store_url, pid)
    assert [(str(a.site_id), a.action) for a in actions] == [
        (branch_id, "registered_former_site"),
        (annex["register"]["site_id"], "registered_former_site"),  # type: ignore[index]
        (restored, "approved")]
    assert {a.operator_ref for a in actions} == {f"console:{getpass.getuser()}"}
