"""`chartsync demo`: a hub on the embedded store and two edges on this machine, syncing.

Everything is real: the hub and both edges are separate processes on loopback,
the batches are sealed and signed, the hub cannot read them.  The Branch
edge reaches the hub through a `Link` this process can cut, to show a clinic
going offline while its LAN keeps working.

Steps: create a practice → enroll "Main clinic" (writes a recovery kit) →
invite, enroll and approve "Branch" (fingerprint checked) → load a small
practice at Main and watch it arrive at Branch → single writes at Main, timed
until readable at Branch → cut Branch's line, write on both sides (the same
allergy's criticality differently) → restore the line, wait until both hold
byte-identical charts, and show the conflict raised for a clinician.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from chartsync.link import Link
from chartsync.sample_practice import PATIENTS, patient_bundle
from conflict import conflicts
from conflict.decode import state_from_canonical
from edge_node.node import open_sync
from edge_node.store.users import Role, add_user
from edge_node.sync.enroll import approve, enroll_site, invite
from edge_node.sync.hub_client import HubSettings

START_DEADLINE_S = 60.0
SYNC_DEADLINE_S = 60.0
DEMO_PASSPHRASE = "demo only: sakura-naika 2026"
#: Quick cadence for a demo; production defaults are in edge_node/sync/settings.py.
DEMO_SYNC_OPTIONS = ("heartbeat_s=2", "mailbox_poll_s=0.5", "backoff_max_s=2.0",
                     "control_poll_s=0.5")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def say(text: str = "") -> None:
    print(text, flush=True)


def step(n: int, text: str) -> None:
    say(f"\n\033[1m[{n}] {text}\033[0m")


@dataclass
class Child:
    """A child process whose output goes to a log file."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path
    url: str = ""

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _start(name: str, argv: list[str], log: Path, ready: str) -> Child:
    """Start `argv`, wait until its log shows the `ready` pattern (with a URL group)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = log.open("wb")
    proc = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=out, env=env,
                                                stdin=asyncio.subprocess.DEVNULL)
    out.close()
    pattern = re.compile(ready)
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        match = pattern.search(log.read_text(errors="replace"))
        if match:
            return Child(name, proc, log, match.group(1))
        if proc.returncode is not None:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
    raise RuntimeError(f"{name} did not start; see {log}")


class Fhir:
    """A small FHIR client for one edge and one staff token."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        async with self.session.request(method, self.base + path, data=data,
                                        headers=self.headers) as resp:
            raw = await resp.read()
            return resp.status, (json.loads(raw) if raw else None)

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path} answered {status}: {answer}")
        return answer


async def _until(check: Callable[[], Any], deadline_s: float = SYNC_DEADLINE_S) -> float:
    """Call the async `check` until it is truthy; return the seconds it took."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > deadline_s:
            raise TimeoutError("the edges did not get there in time; see the logs")
        await asyncio.sleep(0.005)  # a demo polls the API; tests wait on conditions
    return time.monotonic() - start


def _states(data_dir: Path) -> dict[tuple[str, str], bytes]:
    conn = sqlite3.connect(f"file:{data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    try:
        return {(t, i): bytes(s) for t, i, s in conn.execute("SELECT type, id, state FROM resources")}
    finally:
        conn.close()


def _staff_token(data_dir: Path, name: str) -> str:
    conn = open_sync(data_dir)
    try:
        _, token = add_user(conn, name=name, role=Role.CLINICIAN, now_ms=wall_ms(),
                            random_bytes=os.urandom(42))
        return token
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def _children() -> AsyncIterator[list[Child]]:
    children: list[Child] = []
    try:
        yield children
    finally:
        for child in reversed(children):
            await child.stop()


async def run_demo(workdir: Path, *, wait: bool) -> int:
    py = sys.executable
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:{workdir / 'hub.sqlite3'}"
    today = datetime.now(UTC).date().isoformat()
    async with _children() as children, aiohttp.ClientSession() as session:
        step(1, "Hub on the embedded store; an operator creates the practice")
        created = await asyncio.create_subprocess_exec(
            py, "-m", "chartsync", "hub", "practice", "create", "さくら内科クリニック",
            "--store", store, "--json", stdout=asyncio.subprocess.PIPE)
        out, _ = await created.communicate()
        practice = json.loads(out)
        hub = await _start("hub", [py, "-m", "cloud_hub", "serve", "--store", store,
                                   "--host", "127.0.0.1", "--port", "0"],
                           logs / "hub.log", r"listening on (http://\S+)")
        children.append(hub)
        say(f"  hub {hub.url}  practice {practice['practice_id']}")
        hub_port = int(hub.url.rsplit(":", 1)[1].rstrip("/"))

        async with Link.open("127.0.0.1", hub_port) as branch_line:
            step(2, "Enroll 'Main clinic' (the first site makes the practice key)")
            main_dir, branch_dir = workdir / "main-clinic", workdir / "branch"
            main = await enroll_site(
                main_dir, HubSettings.parse(hub.url, insecure_http=True),
                token=practice["enrollment_token"], name="Main clinic", admin_name="admin",
                now_ms=wall_ms(), entropy=os.urandom, passphrase=DEMO_PASSPHRASE, shares=None,
                created=today)
            say(f"  site {main.site_id}, fingerprint {main.fingerprint}")
            say(f"  recovery kit: {main.recovery_kit}  (a real clinic stores it offline)")

            step(3, "Invite 'Branch'; it enrolls, Main approves it after checking its fingerprint")
            token, _ = await invite(main_dir)
            branch = await enroll_site(
                branch_dir, HubSettings.parse(branch_line.url, insecure_http=True),
                token=token, name="Branch", admin_name="admin", now_ms=wall_ms(),
                entropy=os.urandom, passphrase=None, shares=None, created=today)
            say(f"  Branch shows fingerprint {branch.fingerprint} (status {branch.status})")
            await approve(main_dir, branch.site_id, branch.fingerprint)
            say("  `chartsync edge approve` matched it and sent the practice key sealed to Branch")

            tokens = {d: _staff_token(d, "dr-sato") for d in (main_dir, branch_dir)}
            edges = {}
            for name, data_dir in (("Main clinic", main_dir), ("Branch", branch_dir)):
                argv = [py, "-m", "edge_node", "serve", "--data", str(data_dir),
                        "--host", "127.0.0.1", "--port", "0"]
                for option in DEMO_SYNC_OPTIONS:
                    argv += ["--sync-option", option]
                child = await _start(name, argv, logs / f"{data_dir.name}.log",
                                     r"listening (http://\S+)")
                children.append(child)
                edges[name] = Fhir(session, child.url, tokens[data_dir])
                say(f"  {name}: FHIR API {child.url}/fhir")
            at_main, at_branch = edges["Main clinic"], edges["Branch"]

            step(4, f"Load a small practice at Main ({len(PATIENTS)} patients with visits, "
                    "allergies, prescriptions, notes)")
            for i in range(len(PATIENTS)):
                await at_main.ok("POST", "/fhir", patient_bundle(i, today))
            expected = _states(main_dir)

            async def branch_has_all() -> bool:
                return _states(branch_dir).keys() >= expected.keys()
            took = await _until(branch_has_all)
            say(f"  {len(expected)} resources written at Main are at Branch ({took:.2f} s, "
                "including Branch receiving its key)")

            step(5, "Write at Main, read at Branch: time until readable")
            patient_id = (await at_main.ok("GET", "/fhir/Patient?name=山田"))["entry"][0]["resource"]["id"]
            latencies = []
            for n in range(5):
                obs = {"resourceType": "Observation", "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                                            "display": "心拍数"}]},
                       "subject": {"reference": f"Patient/{patient_id}"},
                       "valueQuantity": {"value": 68 + n, "unit": "/min"}}
                created_obs = await at_main.ok("POST", "/fhir/Observation", obs)

                async def readable() -> bool:
                    status, _ = await at_branch.call("GET", f"/fhir/Observation/{created_obs['id']}")
                    return status == 200
                latencies.append(await _until(readable) * 1000)
            say("  " + ", ".join(f"{ms:.0f} ms" for ms in latencies))

            step(6, "Cut Branch's line to the hub; both sites keep working on their LAN")
            branch_line.cut()
            allergy = (await at_main.ok("GET", f"/fhir/AllergyIntolerance?patient={patient_id}"))[
                "entry"][0]["resource"]
            aid = allergy["id"]
            for fhir, value, site in ((at_main, "high", "Main"), (at_branch, "unable-to-assess",
                                                                   "Branch")):
                current = await fhir.ok("GET", f"/fhir/AllergyIntolerance/{aid}")
                current["criticality"] = value
                await fhir.ok("PUT", f"/fhir/AllergyIntolerance/{aid}", current)
                say(f"  {site}: allergy {allergy['code']['text']} criticality set to {value!r}")
            note = {"resourceType": "DocumentReference", "status": "current",
                    "type": {"text": "経過記録"}, "subject": {"reference": f"Patient/{patient_id}"},
                    "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                                "data": "5YiG6Zmi44Gn5Y+X6Ki644CC"}}]}
            await at_branch.ok("POST", "/fhir/DocumentReference", note)
            sync = (await at_branch.ok("GET", "/status")).get("sync") or {}
            say(f"  Branch status: {sync.get('state')} since {sync.get('since')} — "
                f"{sync.get('outbox_depth')} changes waiting to go out")

            step(7, "Restore the line: the sites converge and the conflict is raised")
            branch_line.restore()

            async def converged() -> bool:
                a, b = _states(main_dir), _states(branch_dir)
                return a == b and ("AllergyIntolerance", aid) in a and a[
                    ("AllergyIntolerance", aid)] != expected.get(("AllergyIntolerance", aid))
            took = await _until(converged)
            states = _states(main_dir)
            say(f"  both sites hold byte-identical charts ({len(states)} resources) "
                f"after {took:.2f} s")
            state = state_from_canonical(states[("AllergyIntolerance", aid)])
            for record in conflicts(state):
                values = [json.loads(h.value) if h.value else None for h in record.heads]
                say(f"  CONFLICT on AllergyIntolerance/{aid} {record.register}: {values} "
                    "— kept both; a clinician resolves it")
            shown = await at_branch.ok("GET", f"/fhir/AllergyIntolerance/{aid}")
            say(f"  shown until resolved: criticality {shown.get('criticality')!r}, "
                f"tags {[t.get('code') for t in shown.get('meta', {}).get('tag', [])]}")

            step(8, "Running. Look around:")
            say(f"  hub dashboard     {hub.url}/dashboard")
            for name, fhir in edges.items():
                say(f"  {name:12s} status  {fhir.base}/status   FHIR {fhir.base}/fhir")
            say(f"  staff tokens      Main {tokens[main_dir]}\n"
                f"                    Branch {tokens[branch_dir]}")
            say(f"  logs and data     {workdir}")
            if wait:
                say("\nPress Ctrl-C to stop everything.")
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await stop.wait()
            say("stopping…")
    return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="chartsync demo", description=__doc__)
    parser.add_argument("--dir", type=Path, help="work directory (default: a new temp dir)")
    parser.add_argument("--no-wait", action="store_true", help="exit after the walkthrough")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="chartsync-demo-"))
    return asyncio.run(run_demo(workdir, wait=not args.no_wait))
