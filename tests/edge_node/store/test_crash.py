"""SIGKILL under a concurrent write storm, 22 times: nothing acknowledged is ever lost.

Each round starts `python -m edge_node serve` as a child process, runs 16
concurrent writers (creates, and updates of resources acknowledged before),
and kills the child with SIGKILL once a randomly chosen number of writes has
been acknowledged — while other requests are in flight.  After each kill:

* every write that got a 2xx is in history with exactly the body it returned;
* the outbox replayed onto an empty state reproduces every stored resource
  (canonical state bytes and the served JSON);
* `edge check` passes.

The kill moments are random but seeded (the seed is in the failure message).
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import msgpack
import orjson

from conflict import canonical_state, materialize_json, merge_all
from edge_node.store.check import check_path
from sync_protocol.wire import decode_changes
from tests.edge_node.conftest import make_data_dir, start_serve
from tests.edge_node.resources import observation, patient

ROUNDS = 22
WORKERS = 16
START_TIMEOUT_S = 30.0
ROUND_TIMEOUT_S = 30.0

Acked = dict[tuple[str, str, str], bytes]


async def _storm(base: str, token: str, acked: Acked, rng: random.Random, kill_after: int,
                 proc: asyncio.subprocess.Process) -> None:
    live = [k[:2] for k in acked]
    got = 0
    done = asyncio.Event()

    async def worker(n: int, session: aiohttp.ClientSession) -> None:
        nonlocal got
        wrng = random.Random(rng.random())
        while not done.is_set():
            if live and wrng.random() < 0.5:
                rtype, rid = wrng.choice(live)
                body: dict[str, Any] = (patient(mrn=str(wrng.random())) if rtype == "Patient"
                                        else observation("p", wrng.random()))
                method, url = "PUT", f"{base}/fhir/{rtype}/{rid}"
                body["id"] = rid
            else:
                body = patient(mrn=str(n)) if wrng.random() < 0.5 else observation("p", 1.0)
                method, url = "POST", f"{base}/fhir/{body['resourceType']}"
            try:
                async with session.request(method, url, json=body) as resp:
                    raw = await resp.read()
                    if resp.status in (200, 201):
                        parsed = orjson.loads(raw)
                        key = (parsed["resourceType"], parsed["id"])
                        acked[(*key, parsed["meta"]["versionId"])] = raw
                        live.append(key)
                        got += 1
                        if got >= kill_after and not done.is_set():
                            proc.send_signal(signal.SIGKILL)
                            done.set()
                    else:
                        assert resp.status < 500 or done.is_set(), raw
            except (aiohttp.ClientError, ConnectionError):
                if not done.is_set():
                    raise

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        await asyncio.gather(*(worker(n, session) for n in range(WORKERS)))


def _seq(version_id: str) -> int:
    return int(version_id.split("-")[0])


def _verify(data: Path, acked: Acked, seed: int, round_no: int) -> None:
    where = f"seed {seed}, round {round_no}"
    conn = sqlite3.connect(data / "edge.sqlite3")
    try:
        history = {(t, i, v): j for t, i, v, j in conn.execute(
            "SELECT type, id, vid, json FROM history")}
        for key, body in acked.items():
            assert key in history, f"{where}: acknowledged {key} lost"
            assert orjson.loads(history[key]) == orjson.loads(body), f"{where}: {key} differs"
        site = conn.execute("SELECT site_id FROM site").fetchone()[0]
        changes = []
        for seq, raw in conn.execute("SELECT seq, change FROM outbox ORDER BY seq"):
            changes += decode_changes(msgpack.unpackb(raw, raw=False), origin=UUID(site),
                                      seq_from=seq)
        replayed = merge_all(changes)
        stored = {(t, i): (bytes(s), j) for t, i, s, j in conn.execute(
            "SELECT type, id, state, json FROM resources")}
        assert set(replayed) == set(stored), where
        for rkey, state in replayed.items():
            raw_state, served = stored[rkey]
            assert canonical_state(state) == raw_state, f"{where}: {rkey} state"
            resource = orjson.loads(served)
            del resource["meta"]
            assert orjson.loads(materialize_json(state) or b"null") == resource, where
    finally:
        conn.close()
    report = check_path(data)
    assert report.ok, (where, report.problems)


async def test_sigkill_under_write_storm_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data = tmp_path / "e"
    tokens, _ = make_data_dir(data)
    seed = random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    acked: Acked = {}
    log = tmp_path / "serve.log"
    for round_no in range(ROUNDS):
        proc, base = await start_serve(data, log, START_TIMEOUT_S)
        try:
            async with asyncio.timeout(ROUND_TIMEOUT_S):
                await _storm(base, tokens["clinician"], acked, rng, rng.randint(5, 80), proc)
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        _verify(data, acked, seed, round_no)
    # The last restart serves every acknowledged write's latest version.
    proc, base = await start_serve(data, log, START_TIMEOUT_S)
    try:
        # One site writes everything: its version ids "<seq>-<site>" order by seq.
        latest: dict[tuple[str, str], int] = {}
        for rtype, rid, vid in acked:
            latest[(rtype, rid)] = max(_seq(vid), latest.get((rtype, rid), 0))
        headers = {"Authorization": f"Bearer {tokens['clinician']}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            for (rtype, rid), seq in sorted(latest.items())[:200]:
                async with session.get(f"{base}/fhir/{rtype}/{rid}") as resp:
                    assert resp.status == 200
                    assert _seq((await resp.json(content_type=None))["meta"]["versionId"]) \
                        >= seq
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
    assert len(acked) > ROUNDS * 5
