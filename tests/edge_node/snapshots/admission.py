"""Play the approving administrator of a restoring machine, only where one is needed.

Before the member-signed roster, a restoring machine waits for an approved site to
approve it; with it, its recovery kit signs it into the roster by itself, and an
approval racing the kit's entry makes that entry refused.  These snapshot tests run
on either side of that change: they approve only when the kit cannot admit.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Final

from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.sync.enroll import approve

#: Whether a recovery kit admits the restoring machine by itself (nobody approves then).
KIT_ADMITS: Final = importlib.util.find_spec("edge_node.sync.kit_admission") is not None


async def approve_if_pending(hub_url: str, credential: str, approver: Path, name: str,
                             deadline_s: float = 30.0) -> None:
    """Wait until site `name` is approved, approving it from `approver` unless the kit
    admits it by itself."""
    settings = HubSettings.parse(hub_url, insecure_http=True)
    async with asyncio.timeout(deadline_s):
        while True:
            async with HubClient.open(settings, credential=credential) as hub:
                found = [s for s in await hub.sites() if s.name == name]
            if found and found[0].status == "approved":
                return
            if found and found[0].status == "pending" and not KIT_ADMITS:
                await approve(approver, found[0].site_id, found[0].fingerprint)
                return
            await asyncio.sleep(0.05)  # yield between hub polls; the deadline bounds the wait
