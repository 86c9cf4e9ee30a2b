"""Enrollment as an IT person does it: only `chartsync` commands and a running hub."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from chartsync.local_practice import ROOT, Child, free_port

PASSPHRASE = "cli test passphrase 2026"


def chartsync(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "chartsync", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if ok:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


async def test_first_site_invite_fingerprint_check_and_approval(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'hub.db'}"
    created = chartsync("hub", "practice", "create", "さくら内科", "--store", store)
    token = re.search(r"enrollment token:\s+(\S+)", created.stdout)
    assert token, created.stdout
    hub = Child("hub", [sys.executable, "-m", "cloud_hub", "serve", "--store", store, "--host",
                        "127.0.0.1", "--port", str(free_port())], tmp_path / "hub.log",
                r"listening on (http://\S+)")
    await hub.start()
    try:
        (tmp_path / "pass.txt").write_text(PASSPHRASE)
        main = chartsync("edge", "init", "--data", str(tmp_path / "main"), "--hub", hub.url,
                         "--token", token.group(1), "--name", "Main clinic", "--insecure-http",
                         "--recovery-passphrase-file", str(tmp_path / "pass.txt"))
        assert "RECOVERY KIT written" in main.stdout and "OFFLINE" in main.stdout
        assert (tmp_path / "main" / "recovery-kit.txt").exists()

        refused = chartsync("edge", "init", "--data", str(tmp_path / "x"), "--hub",
                            hub.url, "--token", "cse_bogus.token", "--name", "X",
                            "--insecure-http", ok=False)
        assert refused.returncode == 1 and not (tmp_path / "x" / "edge.sqlite3").exists()
        plain = chartsync("edge", "init", "--data", str(tmp_path / "y"), "--hub", hub.url,
                          "--token", "t", "--name", "Y", ok=False)
        assert plain.returncode != 0 and "insecure-http" in plain.stdout + plain.stderr

        invite = chartsync("edge", "invite", "--data", str(tmp_path / "main"))
        assert len(invite.stdout.split()) == 1  # the token alone, for scripts
        assert "valid until" in invite.stderr and "edge init" in invite.stderr
        branch = chartsync("edge", "init", "--data", str(tmp_path / "branch"), "--hub",
                           hub.url, "--token", invite.stdout.split()[0], "--name", "Branch",
                           "--insecure-http")
        assert "PENDING" in branch.stdout
        site = re.search(r"site (\S+) enrolled", branch.stdout)
        fingerprint = re.search(r"fingerprint (\S+)", branch.stdout)
        assert site and fingerprint

        wrong = fingerprint.group(1)[:-1] + ("A" if fingerprint.group(1)[-1] != "A" else "B")
        refused = chartsync("edge", "approve", site.group(1), "--fingerprint", wrong,
                            "--data", str(tmp_path / "main"), ok=False)
        assert refused.returncode == 1
        assert "fingerprint" in (refused.stdout + refused.stderr).lower()
        approved = chartsync("edge", "approve", site.group(1), "--fingerprint",
                             fingerprint.group(1).lower().replace("-", ""),
                             "--data", str(tmp_path / "main"))
        assert "approved" in approved.stdout
    finally:
        await hub.stop()
