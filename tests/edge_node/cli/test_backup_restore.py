"""`edge backup` (encrypted by default) and `edge restore --from-backup`, as IT staff run them.

One site per module: `edge serve` as a real process takes charts (creates,
updates, a delete, an observation), and the test keeps what the server answered
for each chart and its history.  Each test backs it up, restores into a new
directory with only `chartsync edge ...` commands, and compares; refusals must
leave the new directory as it was.  Real SQLite, real crypto, real processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import nacl.pwhash
import pytest

from chartsync.cli import main
from edge_node.node import init_data_dir
from edge_node.store.backup import backup_encrypted
from edge_node.store.schema import SCHEMA_VERSION
from sync_protocol.backup_file import BackupAbout, BackupSealer, KitSlot, PassphraseSlot
from sync_protocol.keys import Keyring, PracticeKey
from sync_protocol.kit_keys import KitKeyPair
from sync_protocol.recovery import create_recovery_kit, create_shared_recovery_kit
from tests.edge_node.conftest import ROOT, start_serve
from tests.edge_node.resources import observation, patient

PRACTICE = UUID("01936d2e-0000-7000-8000-00000000a1a1")
PASSPHRASE = "backup passphrase of the tests 2026"
KIT_PASSPHRASE = "recovery kit passphrase 2026!"
OPS, MEM = nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN
VECTORS = Path(__file__).resolve().parents[2] / "vectors"

Charts = dict[str, Any]  # "Type/id" -> [status, body, history entries]


@dataclass(frozen=True)
class Site:
    data: Path
    token: str
    charts: Charts


async def read_charts(url: str, token: str, refs: list[str]) -> Charts:
    out: Charts = {}
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        for ref in refs:
            async with http.get(f"{url}/fhir/{ref}") as resp:
                body = await resp.json(content_type=None)
                status = resp.status
            async with http.get(f"{url}/fhir/{ref}/_history") as resp:
                assert resp.status == 200
                # fullUrl names the server (its port); the rest must be the same
                history = json.loads((await resp.text()).replace(url, "BASE"))["entry"]
            if status == 410:
                body = None  # the OperationOutcome names the request, not the chart
            out[ref] = [status, body, history]
    return out


async def write_charts(data: Path, token: str) -> Charts:
    proc, url = await start_serve(data, data.parent / "serve.log")
    try:
        auth = {"Authorization": f"Bearer {token}"}
        refs = []
        async with aiohttp.ClientSession(headers=auth) as http:
            for i, family in enumerate(("Yamada", "Suzuki", "Tanaka")):
                async with http.post(f"{url}/fhir/Patient",
                                     json=patient(family=family, mrn=f"m-{i}")) as resp:
                    assert resp.status == 201, await resp.text()
                    made = await resp.json(content_type=None)
                refs.append(f"Patient/{made['id']}")
                if i < 2:
                    async with http.put(f"{url}/fhir/Patient/{made['id']}",
                                        json={**made, "gender": "female"},
                                        headers={"If-Match": resp.headers["ETag"]}
                                        ) as resp:
                        assert resp.status == 200, await resp.text()
            async with http.post(f"{url}/fhir/Observation",
                                 json=observation(refs[0].split("/")[1])) as resp:
                assert resp.status == 201, await resp.text()
                refs.append(f"Observation/{(await resp.json(content_type=None))['id']}")
            async with http.delete(f"{url}/fhir/{refs[2]}") as resp:
                assert resp.status == 204
        return await read_charts(url, token, refs)
    finally:
        proc.kill()
        await proc.wait()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    data = tmp_path_factory.mktemp("clinic") / "edge"
    _, _, token = init_data_dir(data, now_ms=time.time_ns() // 1_000_000, entropy=os.urandom,
                                admin_name="admin", practice_id=PRACTICE)
    return Site(data, token, asyncio.run(write_charts(data, token)))


def rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every chart row and history version, as stored."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {"resources": conn.execute(
                    "SELECT type, id, version, deleted, json FROM resources ORDER BY type, id"
                ).fetchall(),
                "history": conn.execute(
                    "SELECT type, id, version, origin, seq, user, hlc, recorded_ms, json "
                    "FROM history ORDER BY hid").fetchall()}
    finally:
        conn.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text + "\n", encoding="utf-8")
    return path


def restore(site: Site, backup: Path, new: Path, *options: str) -> int:
    return main(["edge", "restore", "--from-backup", str(backup), "--data", str(new),
                 "--site-key", str(site.data / "site.key"), *options])


def assert_untouched(new: Path, existed: bool = False) -> None:
    if existed:
        assert list(new.iterdir()) == []
    else:
        assert not new.exists()


def fast_backup(site: Site, target: Path, **kwargs: Any) -> Path:
    """A backup written by the store itself, its passphrase at Argon2id's minimum cost."""
    backup_encrypted(site.data, target, [PassphraseSlot(PASSPHRASE, opslimit=OPS, memlimit=MEM)],
                     now_ms=time.time_ns() // 1_000_000, **kwargs)
    return target


async def test_a_passphrase_backup_restores_every_chart_and_its_history(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backup = tmp_path / "usb" / "edge.csbackup"
    backup.parent.mkdir()
    pass_file = write(tmp_path / "backup-pass.txt", PASSPHRASE)
    assert main(["edge", "backup", "--data", str(site.data), "--to", str(backup),
                 "--passphrase-file", str(pass_file)]) == 0
    assert "opens with its passphrase" in capsys.readouterr().out
    assert b"Yamada" not in backup.read_bytes() and b"SQLite format 3" not in backup.read_bytes()
    assert [p.name for p in site.data.iterdir() if p.name.startswith(".backup-")] == []

    new = tmp_path / "replacement" / "edge"
    assert restore(site, backup, new, "--backup-passphrase-file", str(pass_file), "--json") == 0
    out, err = capsys.readouterr()
    said = json.loads(out.strip().splitlines()[-1])
    assert said["resources"] == len(site.charts) and said["history"] == 7
    assert said["hub"] is None and err == ""  # no hub: nothing to warn about
    assert rows(new / "edge.sqlite3") == rows(site.data / "edge.sqlite3")
    assert main(["edge", "check", "--data", str(new)]) == 0
    assert capsys.readouterr().out.strip().endswith("ok")

    proc, url = await start_serve(new, tmp_path / "restored-serve.log")
    try:
        assert await read_charts(url, site.token, list(site.charts)) == site.charts
    finally:
        proc.kill()
        await proc.wait()


@pytest.mark.parametrize("opened_by", ["passphrase kit", "2 of 3 shares"])
def test_the_recovery_kit_opens_a_backup_sealed_to_it(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str], opened_by: str) -> None:
    kit = KitKeyPair.from_seed(os.urandom(32))
    keyring = Keyring(PRACTICE, {1: PracticeKey.generate(1, os.urandom(32))})
    backup = tmp_path / "edge.csbackup"
    # Sealed by the store to a kit made here (this site has no roster; an enrolled site's
    # default, the kit its roster names, is tests/e2e/test_backup_with_kit.py).
    backup_encrypted(site.data, backup, [KitSlot(kit.public())], now_ms=1)
    if opened_by == "passphrase kit":
        kit_text = create_recovery_kit(keyring, KIT_PASSPHRASE, kit=kit, created="2026-12-03",
                                       opslimit=OPS, memlimit=MEM)
        how = ["--passphrase-file", str(write(tmp_path / "kit-pass.txt", KIT_PASSPHRASE))]
    else:
        kit_text, shares = create_shared_recovery_kit(keyring, kit=kit, threshold=2, shares=3,
                                                      created="2026-12-03")
        how = ["--share", str(write(tmp_path / "alice.txt", shares[0])),
               "--share", str(write(tmp_path / "carol.txt", shares[2]))]
    kit_file = write(tmp_path / "recovery-kit.txt", kit_text)

    other = KitKeyPair.from_seed(os.urandom(32))
    other_file = write(tmp_path / "other-kit.txt", create_recovery_kit(
        keyring, KIT_PASSPHRASE, kit=other, created="2026-12-03", opslimit=OPS,
        memlimit=MEM))
    new = tmp_path / "new"
    assert restore(site, backup, new, "--recovery-kit", str(other_file), "--passphrase-file",
                   str(write(tmp_path / "kp.txt", KIT_PASSPHRASE))) == 1
    err = capsys.readouterr().err
    assert f"sealed to recovery kit {kit.public().fingerprint}" in err and "next step:" in err
    assert_untouched(new)

    assert restore(site, backup, new, "--recovery-kit", str(kit_file), *how) == 0
    assert rows(new / "edge.sqlite3") == rows(site.data / "edge.sqlite3")
    assert main(["edge", "check", "--data", str(new)]) == 0


def test_a_kit_from_before_kit_keys_says_so_and_writes_nothing(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = json.loads((VECTORS / "recovery_kit_v1.json").read_text())
    backup = tmp_path / "edge.csbackup"
    backup_encrypted(site.data, backup, [KitSlot(KitKeyPair.from_seed(bytes(32)).public())],
                     now_ms=1)
    new = tmp_path / "new"
    assert restore(site, backup, new, "--recovery-kit",
                   str(write(tmp_path / "kit.txt", old["passphrase_kit"])), "--passphrase-file",
                   str(write(tmp_path / "pass.txt", old["passphrase"]))) == 1
    err = capsys.readouterr().err
    assert "predates kit keys" in err and "--backup-passphrase-file" in err
    assert_untouched(new)


@pytest.mark.parametrize("existed", [False, True])
def test_a_wrong_passphrase_is_named_and_writes_nothing(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str], existed: bool) -> None:
    backup = fast_backup(site, tmp_path / "edge.csbackup")
    new = tmp_path / "new"
    if existed:
        new.mkdir()
    wrong = write(tmp_path / "wrong.txt", PASSPHRASE.upper())
    assert restore(site, backup, new, "--backup-passphrase-file", str(wrong)) == 1
    err = capsys.readouterr().err
    assert "the passphrase does not open the backup" in err and "next step:" in err
    assert_untouched(new, existed)


def _cut_at_chunk(backup: Path) -> bytes:
    raw = backup.read_bytes()
    header_len = 8 + int.from_bytes(raw[4:8], "big") + 24
    first = int.from_bytes(raw[header_len:header_len + 4], "big")
    return raw[:header_len + 4 + first]  # a whole chunk, but not the last one


@pytest.mark.parametrize(("damage", "named"), [
    ("cut at a chunk", "ends before its last chunk (truncated)"),
    ("cut mid-chunk", "ends before its last chunk (truncated)"),
    ("chunk byte flipped", "failed authenticated decryption (altered"),
    ("header byte flipped", "or its header was altered"),
    ("appended bytes", "bytes after the last chunk")])
def test_a_truncated_or_altered_backup_is_refused_and_writes_nothing(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str,
        named: str) -> None:
    backup = fast_backup(site, tmp_path / "edge.csbackup", chunk_bytes=16 * 1024)
    raw = backup.read_bytes()
    middle = len(raw) // 2
    created = raw.index(b"created_ms") + len("created_ms") + 5  # inside its 8-byte value
    damaged = {"cut at a chunk": lambda: _cut_at_chunk(backup),
               "cut mid-chunk": lambda: raw[:-100],
               "chunk byte flipped": lambda: raw[:middle] + bytes([raw[middle] ^ 1])
               + raw[middle + 1:],
               "header byte flipped": lambda: raw[:created] + bytes([raw[created] ^ 1])
               + raw[created + 1:],
               "appended bytes": lambda: raw + b"\0" * 10}[damage]()
    backup.write_bytes(damaged)
    new = tmp_path / "new"
    assert restore(site, backup, new, "--backup-passphrase-file",
                   str(write(tmp_path / "pass.txt", PASSPHRASE))) == 1
    err = capsys.readouterr().err
    assert named in err and "next step:" in err
    assert_untouched(new)


def test_plaintext_only_on_request_and_check_and_restore_read_it(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "edge.sqlite3"
    assert main(["edge", "backup", "--data", str(site.data), "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert "no recovery kit" in err and "--passphrase-file" in err and "--plaintext" in err
    assert list(tmp_path.iterdir()) == []
    assert [p.name for p in site.data.iterdir() if p.name.startswith(".backup-")] == []
    assert main(["edge", "backup", "--data", str(site.data), "--to", str(target), "--plaintext",
                 "--passphrase-file", str(target)]) == 2

    assert main(["edge", "backup", "--data", str(site.data), "--to", str(target),
                 "--plaintext"]) == 0
    assert target.read_bytes().startswith(b"SQLite format 3\0")
    assert main(["edge", "check", "--data", str(target)]) == 0
    new = tmp_path / "new"
    assert restore(site, target, new) == 0
    assert rows(new / "edge.sqlite3") == rows(site.data / "edge.sqlite3")

    encrypted = fast_backup(site, tmp_path / "edge.csbackup")
    capsys.readouterr()
    assert main(["edge", "check", "--data", str(encrypted)]) == 1
    assert "is an encrypted backup" in capsys.readouterr().err


def test_restore_needs_the_old_site_key_and_an_empty_directory(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backup = fast_backup(site, tmp_path / "edge.csbackup")
    pass_file = write(tmp_path / "pass.txt", PASSPHRASE)
    new = tmp_path / "new"
    assert main(["edge", "restore", "--from-backup", str(backup), "--data", str(new),
                 "--backup-passphrase-file", str(pass_file)]) == 1
    err = capsys.readouterr().err
    assert "needs --site-key" in err and "kept apart" in err
    assert_untouched(new)

    stranger = tmp_path / "stranger.key"
    stranger.write_bytes(os.urandom(32))
    assert main(["edge", "restore", "--from-backup", str(backup), "--data", str(new),
                 "--site-key", str(stranger), "--backup-passphrase-file", str(pass_file)]) == 1
    assert "does not open the keys of site" in capsys.readouterr().err
    assert_untouched(new)

    assert restore(site, backup, new, "--backup-passphrase-file", str(pass_file)) == 0
    before = rows(new / "edge.sqlite3")
    assert restore(site, backup, new, "--backup-passphrase-file", str(pass_file)) == 1
    assert "already holds an edge database" in capsys.readouterr().err
    assert rows(new / "edge.sqlite3") == before


async def test_a_backup_taken_while_serving_holds_every_acknowledged_write(
        tmp_path: Path) -> None:
    data = tmp_path / "edge"
    _, _, token = init_data_dir(data, now_ms=time.time_ns() // 1_000_000, entropy=os.urandom,
                                admin_name="admin")
    backup = tmp_path / "edge.csbackup"
    pass_file = write(tmp_path / "pass.txt", PASSPHRASE)
    proc, url = await start_serve(data, tmp_path / "serve.log")
    try:
        async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {token}"}) as http:
            for family in ("Mori", "Abe", "Ono"):
                async with http.post(f"{url}/fhir/Patient", json=patient(family=family)) as r:
                    assert r.status == 201, await r.text()
            # The writes sit in the WAL of a running server; the backup is its own process.
            backing_up = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "chartsync", "edge", "backup", "--data", str(data),
                "--to", str(backup), "--passphrase-file", str(pass_file), cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(backing_up.communicate(), 120)
            assert backing_up.returncode == 0, err
            assert b"encrypted backup written" in out
            async with http.post(f"{url}/fhir/Patient", json=patient(family="Later")) as r:
                assert r.status == 201
    finally:
        proc.kill()
        await proc.wait()
    new = tmp_path / "new"
    assert main(["edge", "restore", "--from-backup", str(backup), "--data", str(new),
                 "--site-key", str(data / "site.key"), "--backup-passphrase-file",
                 str(pass_file)]) == 0
    families = sorted(json.loads(r[4])["name"][0]["family"]
                      for r in rows(new / "edge.sqlite3")["resources"])
    assert families == ["Abe", "Mori", "Ono"]
    assert main(["edge", "check", "--data", str(new)]) == 0


def test_a_header_naming_another_site_than_its_database_is_refused(
        site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Someone holding a file key could seal one site's database under another's header;
    # the header is authenticated, so only the comparison with the database catches it.
    plain = tmp_path / "plain.sqlite3"
    assert main(["edge", "backup", "--data", str(site.data), "--to", str(plain),
                 "--plaintext"]) == 0
    impostor = BackupAbout(practice_id=PRACTICE, site_id=UUID(int=7), created_ms=1,
                           schema_version=SCHEMA_VERSION)
    sealer = BackupSealer(impostor, [PassphraseSlot(PASSPHRASE, opslimit=OPS, memlimit=MEM)])
    backup = tmp_path / "assembled.csbackup"
    backup.write_bytes(sealer.begin() + sealer.add(plain.read_bytes()) + sealer.finish())
    new = tmp_path / "new"
    capsys.readouterr()
    assert restore(site, backup, new, "--backup-passphrase-file",
                   str(write(tmp_path / "pass.txt", PASSPHRASE))) == 1
    err = capsys.readouterr().err
    assert f"header names site {UUID(int=7)}" in err and "assembled from two backups" in err
    assert_untouched(new)
