"""An enrolled site's backups open with the practice's recovery kit, with no hub needed after.

Only `chartsync` commands and a running hub: the first site of a practice writes the
recovery kit (passphrase, or 2 of 3 shares) and the roster naming it; `edge serve` takes
charts; `edge backup` with no passphrase seals to the kit the roster names; the hub is
stopped; `edge restore --from-backup` with the kit brings every chart back.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chartsync.local_practice import ROOT, Child, free_port
from tests.edge_node.conftest import start_serve
from tests.edge_node.resources import patient

KIT_PASSPHRASE = "kit passphrase of the e2e test 2026"


def chartsync(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "chartsync", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if ok:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT type, id, version, json FROM {t} ORDER BY type, id, "
                                "version").fetchall() for t in ("resources", "history")}
    finally:
        conn.close()


async def write_charts(data: Path, token: str, log: Path) -> None:
    proc, url = await start_serve(data, log)
    try:
        async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {token}"}) as http:
            for family in ("Kato", "Ito"):
                async with http.post(f"{url}/fhir/Patient", json=patient(family=family)) as r:
                    assert r.status == 201, await r.text()
    finally:
        proc.kill()
        await proc.wait()


@pytest.mark.parametrize("kit_kind", ["passphrase", "2-of-3"])
async def test_a_backup_sealed_to_the_kit_restores_with_it_and_no_hub(
        tmp_path: Path, kit_kind: str) -> None:
    store = f"sqlite:{tmp_path / 'hub.db'}"
    created = chartsync("hub", "practice", "create", "さくら内科", "--store", store)
    token = re.search(r"enrollment token:\s+(\S+)", created.stdout)
    assert token, created.stdout
    hub = Child("hub", [sys.executable, "-m", "cloud_hub", "serve", "--store", store, "--host",
                        "127.0.0.1", "--port", str(free_port())], tmp_path / "hub.log",
                r"listening on (http://\S+)")
    await hub.start()
    data = tmp_path / "main"
    kit_pass = tmp_path / "kit-pass.txt"
    kit_pass.write_text(KIT_PASSPHRASE)
    try:
        how = (["--recovery-passphrase-file", str(kit_pass)] if kit_kind == "passphrase"
               else ["--recovery-shares", "2-of-3"])
        init = chartsync("edge", "init", "--data", str(data), "--hub", hub.url, "--token",
                         token.group(1), "--name", "Main clinic", "--insecure-http", *how)
        admin_token = init.stdout.split("shown only now:\n")[1].split()[0]
        shares = re.findall(r"share \d: (.+)", init.stdout)
        await write_charts(data, admin_token, tmp_path / "serve.log")
        backup = tmp_path / "usb" / "main.csbackup"
        backup.parent.mkdir()
        made = chartsync("edge", "backup", "--data", str(data), "--to", str(backup))
        assert "opens with recovery kit" in made.stdout and "passphrase" not in made.stdout
    finally:
        await hub.stop()

    # The machine is gone and so is the hub: the kit file, the kit's passphrase or two
    # custodians' shares, a copy of site.key and the backup are all that is left.
    if kit_kind == "passphrase":
        opens = ["--passphrase-file", str(kit_pass)]
    else:
        assert len(shares) == 3
        opens = []
        for i in (0, 2):
            (tmp_path / f"share-{i}.txt").write_text(shares[i])
            opens += ["--share", str(tmp_path / f"share-{i}.txt")]
    new = tmp_path / "replacement"
    wrong = chartsync("edge", "restore", "--from-backup", str(backup), "--data", str(new),
                      "--site-key", str(data / "site.key"), "--backup-passphrase-file",
                      str(kit_pass), ok=False)
    assert wrong.returncode == 1 and "has no passphrase slot" in wrong.stderr
    assert not new.exists()
    restored = chartsync("edge", "restore", "--from-backup", str(backup), "--data", str(new),
                         "--site-key", str(data / "site.key"), "--recovery-kit",
                         str(data / "recovery-kit.txt"), *opens)
    # Served while the hub still holds its later changes, the copy would fork its chain
    # (tried: the hub answers chain_broken), so the command says which hub and what to do.
    assert f"syncs with {hub.url}" in restored.stderr
    assert "edge restore --hub" in restored.stderr and "reenroll" in restored.stderr
    assert rows(new / "edge.sqlite3") == rows(data / "edge.sqlite3")
    assert len(rows(new / "edge.sqlite3")["resources"]) == 2
    assert chartsync("edge", "check", "--data", str(new)).stdout.strip().endswith("ok")
