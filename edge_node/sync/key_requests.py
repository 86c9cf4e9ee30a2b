"""Asking the practice's members to re-send key epochs this site lacks.

    asked = await request_keys(data_dir)    # the members asked

A site that missed a key delivery (its mailbox item was lost with a hub, or it
was restored from a kit the roster no longer names) posts a signed request to
every approved member; each member's sync loop answers with the epochs the
request says are missing, sealed to the keys the roster names for this site
(`edge_node.sync.mailbox`).  Only members the roster proves are answered.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from edge_node.hub_link.client import HubClient
from edge_node.hub_link.errors import EnrollmentError
from edge_node.store.roster_store import membership_inputs, save_roster_entries
from edge_node.sync.enroll import settings_of
from edge_node.sync.membership import fetch_roster
from sync_protocol.key_delivery import seal_key_request


async def request_keys(data_dir: Path) -> list[UUID]:
    """Post a key request to every other approved member; return their ids.  Raises
    `EnrollmentError` when this site is not a member the roster proves."""
    state, site, local = membership_inputs(data_dir)
    have = [] if state.keyring is None else sorted(state.keyring.keys)
    async with HubClient.open(settings_of(state), credential=state.credential) as hub:
        fetched = await fetch_roster(hub, state.practice_id, local)
        roster = fetched.roster
        if roster is None or not roster.is_approved(site.site_id):
            raise EnrollmentError(f"site {site.site_id} is not an approved member of the "
                                  "practice roster, so no member will answer",
                                  hint="an approved site admits it with `chartsync edge "
                                  "approve`; with no site left, restore with the kit")
        save_roster_entries(data_dir, len(local), fetched.new)
        asked = [m.site_id for m in roster.approved() if m.site_id != site.site_id]
        for member in asked:
            await hub.post_mail(member, seal_key_request(
                practice_id=state.practice_id, sender_id=site.site_id, sender_keys=site.keys,
                to=member, have=have))
    return asked


__all__ = ["request_keys"]
