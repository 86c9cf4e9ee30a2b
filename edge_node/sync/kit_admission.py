"""A machine restored with the recovery kit: admitted by the kit, keys from the kit.

    roster = await admit_with_kit(hub, data_dir, practice_id=..., site_id=..., site_keys=...,
                                  kit=opened.keys, now_ms=...)
    keys = await keys_for_kit(hub, practice_id, kit=opened.keys, roster=roster)

With every site lost, nobody is left to compare a fingerprint and sign the new
site into the roster.  The kit can: its key is named in the roster, so an
approval it signs counts like a member's.  `admit_with_kit` writes that entry
(the hub then approves the site; an operator's approval without it admits
nobody).  `keys_for_kit` opens every epoch key sealed to the kit at the hub,
checking that a member sealed it; together with the epochs written into the kit
itself and any keys waiting in the mailbox, the site holds every epoch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import UUID

from edge_node.hub_link.client import HubClient
from edge_node.store.connection import with_database
from edge_node.store.roster_store import roster_entries, save_roster_entries
from edge_node.sync.membership import append_entry, fetch_roster
from sync_protocol.errors import ProtocolError
from sync_protocol.key_delivery import open_keys_for_site
from sync_protocol.keys import PracticeKey, SiteKeyPair
from sync_protocol.kit_keys import KitKeyPair, open_epoch_for_kit
from sync_protocol.roster import EntryKind, Roster, SignedEntry, sign_entry

log = logging.getLogger(__name__)


async def admit_with_kit(hub: HubClient, data_dir: Path, *, practice_id: UUID, site_id: UUID,
                         site_keys: SiteKeyPair, kit: KitKeyPair | None,
                         now_ms: int) -> Roster | None:
    """Sign this site into the roster with `kit` unless it is a member already; return the
    verified roster (saved in `data_dir`), or None for a practice without one.

    A kit the roster does not name (replaced since, or a kit written before kits had
    keys) admits nobody: the site then waits for a member's `edge approve`.
    """
    local = with_database(data_dir, roster_entries)
    fetched = await fetch_roster(hub, practice_id, local)
    roster, new = fetched.roster, fetched.new
    if roster is not None and site_id not in roster.members:
        if kit is not None and roster.kit == kit.public():
            me = site_keys.public(site_id)

            def approval(r: Roster) -> SignedEntry | None:
                if site_id in r.members:  # a member approved it meanwhile
                    return None
                return sign_entry(r.next_entry(EntryKind.APPROVE, signer=None, at_ms=now_ms,
                                               site=me), kit)

            roster, new = await append_entry(hub, practice_id, local, approval)
            log.warning("site %s admitted to practice %s with the recovery kit", site_id,
                        practice_id)
        else:
            log.warning("the recovery kit is not the one the roster names (replaced, or "
                        "written before kits had keys); a member must approve site %s",
                        site_id)
    save_roster_entries(data_dir, len(local), new)
    return roster


async def keys_for_kit(hub: HubClient, practice_id: UUID, *, kit: KitKeyPair | None,
                       roster: Roster | None, site_id: UUID,
                       site_keys: SiteKeyPair) -> list[PracticeKey]:
    """Every epoch key the hub keeps sealed to `kit`, and every key in this site's mailbox,
    each checked against the roster's members; copies that do not open are skipped."""
    if roster is None:
        return []
    directory = roster.directory()
    keys: list[PracticeKey] = []
    if kit is not None:
        fingerprint = kit.public().fingerprint
        for epoch, kit_fingerprint, sealed in await hub.kit_epochs():
            if kit_fingerprint != fingerprint:
                continue
            try:
                keys.append(open_epoch_for_kit(sealed, practice_id=practice_id, kit=kit,
                                               directory=directory))
            except ProtocolError as exc:
                log.warning("kit-sealed key of epoch %d refused (%s)", epoch, exc.code)
    for mail in await hub.mailbox():
        try:
            delivered = open_keys_for_site(mail.sealed, practice_id=practice_id,
                                           site_id=site_id, site_keys=site_keys,
                                           directory=directory)
        except ProtocolError as exc:
            log.warning("mailbox item refused (%s)", exc.code)
            continue
        keys.extend(delivered.keys.values())
    return keys


__all__ = ["admit_with_kit", "keys_for_kit"]
