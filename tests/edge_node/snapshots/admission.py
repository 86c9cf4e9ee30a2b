"""Play the approving administrator of a restoring machine, only if one is needed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.sync.enroll import approve


async def approve_if_pending(hub_url: str, credential: str, approver: Path, name: str,
                             deadline_s: float = 30.0) -> None:
    """Wait until site `name` is registered; approve it from `approver` if it is pending.

    Returns at once when it is approved already (a restore whose recovery kit admits
    the machine by itself needs no approver).
    """
    settings = HubSettings.parse(hub_url, insecure_http=True)
    async with asyncio.timeout(deadline_s):
        while True:
            async with HubClient.open(settings, credential=credential) as hub:
                found = [s for s in await hub.sites() if s.name == name]
            if found and found[0].status == "approved":
                return
            if found and found[0].status == "pending":
                await approve(approver, found[0].site_id, found[0].fingerprint)
                return
            await asyncio.sleep(0.05)  # yield between hub polls; the deadline bounds the wait
