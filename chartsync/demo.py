"""`chartsync demo`: a hub on the embedded store and two edges on this machine, syncing.

Everything is real: the hub and both edges are separate processes on loopback,
the batches are sealed and signed, the hub cannot read them.  Each edge
reaches the hub through a `Link` this process can cut, to show a clinic going
offline while its LAN keeps working.

Steps: create a practice → enroll "Main clinic" (writes a recovery kit) →
invite, enroll and approve "Branch" (fingerprint checked) → load a small
practice at Main and watch it arrive at Branch → single writes at Main, timed
until readable at Branch → cut Branch's line, write on both sides (the same
allergy's criticality differently) → restore the line, wait until both hold
byte-identical charts, and show the conflict raised for a clinician.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from chartsync.local_practice import LocalPractice, local_practice
from chartsync.sample_practice import PATIENTS, patient_bundle
from conflict import conflicts
from conflict.decode import state_from_canonical

SYNC_DEADLINE_S = 60.0
#: Quick cadence for a demo; production defaults are in edge_node/hub_link/settings.py.
DEMO_SYNC_OPTIONS = ("heartbeat_s=2", "mailbox_poll_s=0.5", "backoff_max_s=2.0",
                     "control_poll_s=0.5")


def say(text: str = "") -> None:
    print(text, flush=True)


def step(n: int, text: str) -> None:
    say(f"\n\033[1m[{n}] {text}\033[0m")


async def _walkthrough(lp: LocalPractice, wait: bool) -> None:
    today = datetime.now(UTC).date().isoformat()
    main, branch = lp.sites["Main clinic"], lp.sites["Branch"]
    at_main, at_branch = lp.fhir("Main clinic"), lp.fhir("Branch")
    say(f"  Main clinic FHIR API {main.edge.url}/fhir, Branch FHIR API {branch.edge.url}/fhir")
    say(f"  recovery kit: {main.recovery_kit}  (a real clinic stores it offline)")

    step(3, f"Load a small practice at Main ({len(PATIENTS)} patients with visits, "
            "allergies, prescriptions, notes)")
    for i in range(len(PATIENTS)):
        await at_main.ok("POST", "/fhir", patient_bundle(i, today))
    expected = main.states()

    async def branch_has_all() -> bool:
        return branch.states().keys() >= expected.keys()
    took = await lp.wait(branch_has_all, SYNC_DEADLINE_S, "initial load at Branch")
    say(f"  {len(expected)} resources written at Main are at Branch after {took:.2f} s")

    step(4, "Write at Main, read at Branch: time until readable")
    found = await at_main.ok("GET", "/fhir/Patient?name=山田")
    patient_id = found["entry"][0]["resource"]["id"]
    latencies = []
    for n in range(5):
        obs = {"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                                    "display": "心拍数"}]},
               "subject": {"reference": f"Patient/{patient_id}"},
               "valueQuantity": {"value": 68 + n, "unit": "/min"}}
        created = await at_main.ok("POST", "/fhir/Observation", obs)

        async def readable(oid: str = created["id"]) -> bool:
            status, _ = await at_branch.call("GET", f"/fhir/Observation/{oid}")
            return status == 200
        latencies.append(await lp.wait(readable, SYNC_DEADLINE_S, "live write") * 1000)
    say("  " + ", ".join(f"{ms:.0f} ms" for ms in latencies))

    step(5, "Cut Branch's line to the hub; both sites keep working on their LAN")
    branch.link.cut()
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

    step(6, "Restore the line: the sites converge and the conflict is raised")
    branch.link.restore()
    before = expected.get(("AllergyIntolerance", aid))

    async def converged() -> bool:
        return await lp.converged() and main.states().get(("AllergyIntolerance", aid)) != before
    took = await lp.wait(converged, SYNC_DEADLINE_S, "convergence")
    states = main.states()
    say(f"  both sites hold byte-identical charts ({len(states)} resources) after {took:.2f} s")
    for record in conflicts(state_from_canonical(states[("AllergyIntolerance", aid)])):
        values = [json.loads(h.value) if h.value else None for h in record.heads]
        say(f"  CONFLICT on AllergyIntolerance/{aid} {record.register}: {values} "
            "— both kept; a clinician resolves it")
    shown = await at_branch.ok("GET", f"/fhir/AllergyIntolerance/{aid}")
    say(f"  shown until resolved: criticality {shown.get('criticality')!r}, "
        f"tags {[t.get('code') for t in shown.get('meta', {}).get('tag', [])]}")

    step(7, "Running. Look around:")
    say(f"  hub dashboard        {lp.hub_url}/dashboard")
    for name, running in lp.sites.items():
        say(f"  {name:12s} status  {running.edge.url}/status.html  (staff token "
            f"{running.token})")
        say(f"  {name:12s} review  {running.edge.url}/review  (the conflict, for a clinician)")
    say(f"  logs and data        {lp.workdir}")
    if wait:
        say("\nPress Ctrl-C to stop everything.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    say("stopping…")


async def run_demo(workdir: Path, *, wait: bool) -> int:
    step(1, "Hub on the embedded store (SQLite); an operator creates the practice")
    step(2, "Enroll 'Main clinic' (makes the practice key), invite 'Branch', approve it "
            "after checking its key fingerprint")
    async with local_practice(workdir, store=f"sqlite:{workdir / 'hub.sqlite3'}",
                              site_names=("Main clinic", "Branch"),
                              sync_options=DEMO_SYNC_OPTIONS, say=say) as lp:
        say(f"  hub {lp.hub_url}, practice {lp.practice_id}")
        await _walkthrough(lp, wait)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chartsync demo", description=__doc__)
    parser.add_argument("--dir", type=Path, help="work directory (default: a new temp dir)")
    parser.add_argument("--no-wait", action="store_true", help="exit after the walkthrough")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="chartsync-demo-"))
    return asyncio.run(run_demo(workdir, wait=not args.no_wait))
