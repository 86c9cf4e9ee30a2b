"""Replacing the recovery kit: new passphrase or new custodians; the old kit stops.

    replaced = await replace_kit(data_dir, passphrase=..., shares=None,
                                 entropy=os.urandom, created="2026-12-03", now_ms=...)

The new kit is written first (beside the old file), then a roster entry signed
by this site names its public keys, then every epoch this site holds is sealed
to it at the hub, and only then does the new file take the old one's place.
From that entry on, sites seal new epochs to the new kit only: the old kit
still opens the epochs sealed to it before, and no later one.  Interrupted
before the entry, nothing changed; after it, running the command again makes
yet another kit (the one written before was never handed out).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edge_node.hub_link.client import HubClient
from edge_node.hub_link.errors import EnrollmentError
from edge_node.store.roster_store import membership_inputs, save_roster_entries
from edge_node.sync.enroll import Entropy, settings_of
from edge_node.sync.kit_file import RECOVERY_KIT_FILE, write_recovery_kit
from edge_node.sync.membership import append_entry
from sync_protocol.kit_keys import KitKeyPair, seal_epoch_for_kit
from sync_protocol.roster import EntryKind, Roster, SignedEntry, sign_entry


@dataclass(frozen=True, slots=True)
class ReplacedKit:
    path: Path
    words: list[str]
    fingerprint: str
    old_fingerprint: str


async def replace_kit(data_dir: Path, *, passphrase: str | None,
                      shares: tuple[int, int] | None, entropy: Entropy, created: str,
                      now_ms: int) -> ReplacedKit:
    """Make a new recovery kit for the practice; raises `EnrollmentError` when this site
    is not an approved member holding the practice key."""
    state, site, local = membership_inputs(data_dir)
    if state.keyring is None:
        raise EnrollmentError("this site holds no practice key",
                              hint="replace the kit on a site that is already syncing")
    keyring, me, keys = state.keyring, site.site_id, site.keys
    kit = KitKeyPair.from_seed(entropy(32))
    staged = data_dir / f"{RECOVERY_KIT_FILE}.new"
    words = await write_recovery_kit(staged, keyring, kit, passphrase=passphrase,
                                     shares=shares, created=created)
    async with HubClient.open(settings_of(state), credential=state.credential) as hub:
        old: list[str] = []

        def entry(roster: Roster) -> SignedEntry:
            if not roster.is_approved(me):
                raise EnrollmentError("this site is not an approved member of the roster",
                                      hint="replace the kit on an approved site")
            old.append(roster.kit.fingerprint)
            return sign_entry(roster.next_entry(EntryKind.KIT, signer=me, at_ms=now_ms,
                                                kit=kit.public()), keys)

        _, new = await append_entry(hub, state.practice_id, local, entry)
        save_roster_entries(data_dir, len(local), new)
        public = kit.public()
        for key in sorted(keyring.keys.values(), key=lambda k: k.epoch):
            sealed = seal_epoch_for_kit(key, practice_id=state.practice_id, sender_id=me,
                                        sender_keys=keys, kit=public)
            await hub.put_kit_epoch(key.epoch, public.fingerprint, sealed.sealed)
    path = data_dir / RECOVERY_KIT_FILE
    os.replace(staged, path)
    return ReplacedKit(path, words, public.fingerprint, old[-1])


__all__ = ["ReplacedKit", "replace_kit"]
