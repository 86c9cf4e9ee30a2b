"""Operators see sites agree: heartbeats reach the hub and digests match at one cursor."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from chartsync.local_practice import ROOT, local_practice

FAST_SYNC = ("heartbeat_s=0.5", "mailbox_poll_s=0.3", "backoff_max_s=0.5",
             "control_poll_s=0.3")


async def test_sites_at_one_cursor_report_equal_digests_to_the_dashboard(
        tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'hub.db'}"
    async with local_practice(tmp_path, store=store, site_names=("a", "b"),
                              sync_options=FAST_SYNC) as lp:
        created = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "chartsync", "hub", "operator", "create", "--store", store],
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        operator = created.stdout.split()[0]
        for i in range(5):
            await lp.fhir("a" if i % 2 else "b").ok("POST", "/fhir/Patient", {
                "resourceType": "Patient", "name": [{"family": f"佐藤{i}"}]})
        await lp.wait(lp.converged, 60, "converged")
        last: dict[str, Any] = {}

        async def agreed() -> bool:
            nonlocal last
            async with lp.session.get(f"{lp.hub_url}/v1/dashboard",
                                      headers={"Authorization": f"Bearer {operator}"}) as r:
                assert r.status == 200, await r.text()
                last = await r.json()
            [practice] = last["practices"]
            return any(a["agree"] and sum(len(g["site_ids"]) for g in a["groups"]) == 2
                       for a in practice["agreement"])
        await lp.wait(agreed, 60, "digest agreement on the dashboard")
        [practice] = last["practices"]
        sites = {s["name"]: s for s in practice["sites"]}
        assert set(sites) == {"a", "b"}
        assert sites["a"]["state_digest"] == sites["b"]["state_digest"] is not None
