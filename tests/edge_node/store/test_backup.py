"""A backup is an export of every chart: the audit log says who took it, and when."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import nacl.pwhash

from edge_node.config import EdgeConfig
from edge_node.node import Edge
from edge_node.store.backup import backup, backup_encrypted
from sync_protocol.backup_file import PassphraseSlot
from tests.edge_node.conftest import make_data_dir, wall_ms

PASSPHRASE = "correct horse battery staple"


async def test_each_backup_is_audited_as_an_export_by_whoever_ran_it(tmp_path: Path) -> None:
    data = tmp_path / "e"
    make_data_dir(data)
    slot = PassphraseSlot(PASSPHRASE, opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
                          memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN)
    backup_encrypted(data, tmp_path / "monday.csbackup", [slot], now_ms=wall_ms(),
                     by_whom="os:itstaff")
    backup(data, tmp_path / "tuesday.sqlite3", now_ms=wall_ms(), by_whom="os:night-job")
    # The events reach the audit chain when the edge next opens (or serves).
    async with Edge.open(EdgeConfig(data), clock=wall_ms, entropy=os.urandom):
        pass
    conn = sqlite3.connect(data / "edge.sqlite3")
    try:
        rows = conn.execute("SELECT user, action, patient_ref, detail FROM audit "
                            "WHERE action = 'export' ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert [(u, a, p, json.loads(d)) for u, a, p, d in rows] == [
        ("os:itstaff", "export", None,
         {"backup": "monday.csbackup", "form": "encrypted", "patients": "all"}),
        ("os:night-job", "export", None,
         {"backup": "tuesday.sqlite3", "form": "plaintext", "patients": "all"}),
    ]
