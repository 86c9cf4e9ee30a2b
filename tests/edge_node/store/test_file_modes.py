"""The data directory is its owner's alone: 0700, every file in it 0600, from creation on.

Run as a clinic's IT person would: `edge init` into a directory an installer made 0755,
`edge serve` as a real process writing charts (database, WAL, shared memory, lock),
`edge backup` (plaintext and encrypted), `edge restore --from-backup` into a new
directory and `edge serve` on it, and `edge check`, which names a file whose mode was
widened later.  The test process keeps a permissive umask, so only the edge's own care
makes files private.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from chartsync.cli import main
from tests.edge_node.conftest import start_serve
from tests.edge_node.resources import patient


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def admin_token(out: str) -> str:
    return out.strip().splitlines()[-1]


def assert_private(data: Path, *, served: bool = False) -> None:
    if served:
        names = {p.name for p in data.iterdir()}
        assert {"edge.sqlite3", "edge.sqlite3-wal", "edge.sqlite3-shm", "site.key"} <= names
    assert mode_of(data) == 0o700
    widened = {p.name: oct(mode_of(p)) for p in data.rglob("*") if mode_of(p) & 0o077}
    assert widened == {}


async def serve_and_write(data: Path, log: Path, token: str) -> None:
    """`edge serve` as a real process takes 3 charts; the files it made stay private."""
    proc, url = await start_serve(data, log)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                async with http.post(f"{url}/fhir/Patient", json=patient(),
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == 201, await resp.text()
        assert_private(data, served=True)
    finally:
        proc.kill()
        await proc.wait()


@pytest.mark.usefixtures("permissive_umask")
async def test_init_serve_backup_leave_nothing_readable_by_others(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "edge"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    assert main(["edge", "init", "--data", str(data)]) == 0
    token = admin_token(capsys.readouterr().out)
    assert mode_of(data) == 0o700
    assert {p.name: mode_of(p) for p in data.iterdir()} == {
        p.name: 0o600 for p in data.iterdir()}

    await serve_and_write(data, tmp_path / "serve.log", token)

    usb = tmp_path / "usb"
    usb.mkdir()
    assert main(["edge", "backup", "--data", str(data), "--to", str(usb / "edge.sqlite3"),
                 "--plaintext"]) == 0
    assert mode_of(usb / "edge.sqlite3") == 0o600
    passphrase = tmp_path / "pass.txt"
    passphrase.write_text("file modes passphrase 2026\n")
    assert main(["edge", "backup", "--data", str(data), "--to", str(usb / "edge.csbackup"),
                 "--passphrase-file", str(passphrase)]) == 0
    assert mode_of(usb / "edge.csbackup") == 0o600
    assert_private(data)
    assert main(["edge", "check", "--data", str(data)]) == 0
    assert "ok" in capsys.readouterr().out

    restored = tmp_path / "replacement" / "edge"
    assert main(["edge", "restore", "--from-backup", str(usb / "edge.csbackup"), "--data",
                 str(restored), "--site-key", str(data / "site.key"),
                 "--backup-passphrase-file", str(passphrase)]) == 0
    assert {p.name for p in restored.iterdir()} == {"edge.sqlite3", "site.key"}
    assert_private(restored)
    await serve_and_write(restored, tmp_path / "restored-serve.log", token)
    assert main(["edge", "check", "--data", str(restored)]) == 0


def test_check_names_a_widened_file(tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "edge"
    assert main(["edge", "init", "--data", str(data)]) == 0
    capsys.readouterr()
    os.chmod(data / "edge.sqlite3", 0o644)
    assert main(["edge", "check", "--data", str(data)]) == 1
    out = capsys.readouterr().out
    assert f"PROBLEM: {data / 'edge.sqlite3'} is mode 0644" in out
    # SQLite gives the shared-memory file the database's mode, so the read-only check
    # itself may have made one 0644 too: do what each hint says, as the IT person would.
    hints = re.findall(r"run `chmod 600 (.+?)`", out)
    assert str(data / "edge.sqlite3") in hints
    for path in hints:
        os.chmod(path, 0o600)
    assert main(["edge", "check", "--data", str(data)]) == 0
