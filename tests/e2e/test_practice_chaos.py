"""The mission under faults: three edges and a hub on PostgreSQL, as real processes.

Random creates, updates and deletes go through the FHIR API of every edge while
edges are stopped and started (SIGTERM and SIGKILL), one edge is cut off from
the hub for a while, and the hub is killed with SIGKILL and restarted.  At the
end every edge holds byte-identical resources, conflict sets and histories;
every write that got a 2xx is there; no change was applied twice.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path
from typing import Any

import pytest

from chartsync.local_practice import LocalPractice, local_practice

SITES = ("north", "south", "east")
OPS = 240
CONVERGE_DEADLINE_S = 120.0
FAST_SYNC = ("heartbeat_s=1", "mailbox_poll_s=0.3", "backoff_max_s=0.5", "control_poll_s=0.3")


def _patient(rnd: random.Random) -> dict[str, Any]:
    family = rnd.choice(["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤"])
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["テスト"]}],
            "gender": rnd.choice(["male", "female"]),
            "birthDate": f"19{rnd.randint(30, 99)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}"}


def _allergy(rnd: random.Random, patient: str) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{patient}"},
            "criticality": rnd.choice(["low", "high"]),
            "code": {"text": rnd.choice(["さば", "卵", "ペニシリン"])}}


class Workload:
    """Random chart edits at running edges; remembers every acknowledged write."""

    def __init__(self, lp: LocalPractice, seed: int) -> None:
        self.lp, self.rnd = lp, random.Random(seed)
        self.ids: list[tuple[str, str]] = []
        #: (site, type, id, versionId, body sent or None for delete) of every 2xx write
        self.acked: list[tuple[str, str, str, str, dict[str, Any] | None]] = []

    async def one(self, running: list[str]) -> None:
        site = self.rnd.choice(running)
        fhir = self.lp.fhir(site)
        roll = self.rnd.random()
        try:
            if not self.ids or roll < 0.35:
                if self.ids and self.rnd.random() < 0.5:
                    patient = self.rnd.choice([i for t, i in self.ids if t == "Patient"] or [""])
                    body = _allergy(self.rnd, patient) if patient else _patient(self.rnd)
                else:
                    body = _patient(self.rnd)
                status, answer = await fhir.call("POST", f"/fhir/{body['resourceType']}", body)
                if status == 201:
                    self.ids.append((body["resourceType"], answer["id"]))
                    self.acked.append((site, body["resourceType"], answer["id"],
                                       answer["meta"]["versionId"], body))
            elif roll < 0.9:
                rtype, rid = self.rnd.choice(self.ids)
                status, current = await fhir.call("GET", f"/fhir/{rtype}/{rid}")
                if status != 200:
                    return  # not arrived here yet, or deleted: an ordinary race
                body = {k: v for k, v in current.items() if k != "meta"}
                if rtype == "Patient":
                    body["gender"] = self.rnd.choice(["male", "female", "other"])
                else:
                    body["criticality"] = self.rnd.choice(["low", "high"])
                status, answer = await fhir.call("PUT", f"/fhir/{rtype}/{rid}", body)
                if status == 200:
                    self.acked.append((site, rtype, rid, answer["meta"]["versionId"], body))
            else:
                rtype, rid = self.rnd.choice(self.ids)
                status, _ = await fhir.call("GET", f"/fhir/{rtype}/{rid}")
                if status == 200:
                    status, _ = await fhir.call("DELETE", f"/fhir/{rtype}/{rid}")
                    if status in (200, 204):
                        self.acked.append((site, rtype, rid, "", None))
        except (TimeoutError, OSError):
            pass  # the edge was being stopped: no answer, so nothing was promised


@pytest.mark.slow
async def test_three_edges_converge_through_stops_cuts_and_a_killed_hub(
        tmp_path: Path, pg_dsn: str) -> None:
    rnd = random.Random(20261124)
    async with local_practice(tmp_path, store=pg_dsn, site_names=SITES,
                              sync_options=FAST_SYNC) as lp:
        work = Workload(lp, seed=7)
        running = list(SITES)
        for n in range(OPS):
            await work.one(running)
            event = n % 40
            if event == 10:  # stop an edge politely or brutally, write elsewhere, restart it
                victim = rnd.choice(running)
                await lp.sites[victim].edge.stop(rnd.choice([signal.SIGTERM, signal.SIGKILL]))
                running.remove(victim)
            elif event == 20:
                for name in SITES:
                    if not lp.sites[name].edge.running:
                        await lp.sites[name].edge.start()
                        running.append(name)
            elif event == 25 and n < OPS // 2:
                lp.sites["east"].link.cut()  # east works offline for a while
            elif event == 30:
                await lp.hub.stop(signal.SIGKILL)
            elif event == 35:
                await lp.hub.start()
        lp.sites["east"].link.restore()
        if not lp.hub.running:
            await lp.hub.start()
        for name in SITES:
            if not lp.sites[name].edge.running:
                await lp.sites[name].edge.start()

        await lp.wait(lp.converged, CONVERGE_DEADLINE_S, "convergence of three edges")

        sites = list(lp.sites.values())
        # Byte-identical charts and conflict sets.
        states = [s.states() for s in sites]
        assert all(st == states[0] for st in states[1:])
        conflict_sets = [sorted(s.query("SELECT type, id, register, heads, shown_origin, "
                                        "shown_seq FROM conflicts")) for s in sites]
        assert all(c == conflict_sets[0] for c in conflict_sets[1:])
        # The same author versions in every history, byte for byte (what each author
        # wrote, under its version id), none applied twice; each site's merged views
        # are its own and left out here.
        histories = []
        for s in sites:
            rows = s.query("SELECT type, id, origin, seq, user, hlc, vid, json FROM history "
                           "WHERE kind = 'author'")
            assert len(rows) == len(set((r[2], r[3]) for r in rows)), f"{s.name}: double apply"
            histories.append(rows)
        first = {(r[2], r[3]): r for r in histories[0]}
        for s, h in zip(sites[1:], histories[1:], strict=True):
            here = {(r[2], r[3]): r for r in h}
            assert here.keys() == first.keys(), (s.name, sorted(here.keys() ^ first.keys())[:5])
            differing = [(here[k], first[k]) for k in here if here[k] != first[k]]
            assert not differing, f"{s.name}: {len(differing)} rows differ: " + "; ".join(
                f"{a[2:6]} vs {b[2:6]}" for a, b in differing[:3])
        # Every acknowledged write reads, by its version id, as it was answered, at every
        # site: vread is the same everywhere.
        assert len(work.acked) > OPS // 3
        for site, rtype, rid, version, body in work.acked:
            if body is None:
                continue
            answers = [await lp.fhir(other).ok("GET", f"/fhir/{rtype}/{rid}/_history/{version}")
                       for other in SITES]
            assert all(a == answers[0] for a in answers[1:]), (site, rtype, rid, version)
            for key, value in body.items():
                if key not in ("id", "resourceType"):
                    assert answers[0].get(key) == value, (site, rtype, rid, version, key)
        # Deleted resources stay deleted everywhere (unless a concurrent edit conflicts).
        total = sum(1 for _ in states[0])
        assert total == len(set(work.ids))
