"""Membership from the roster, never from the hub's word.

    fetched = await fetch_roster(hub, practice_id, local_entries)
    roster, new = await append_entry(hub, practice_id, local_entries, build)
    await reconcile_hub(hub, practice_id, local_entries, fetched.served, roster, keyring,
                        me=site_id, keys=site_keys)

`fetch_roster` reads the entries the hub holds beyond this site's copy and verifies
them on top of it (`sync_protocol.roster.fold`); the caller saves `new` with
`SaveRosterEntries` in one transaction.  `append_entry` builds an entry on the
verified head, signs it, and posts it; when another site took the position first
it fetches and builds again.  `reconcile_hub` gives a hub that lost part of the
chain (rebuilt, restored from an old backup) the entries this site holds, and
makes sure every epoch key this site holds is sealed to the roster's current
recovery kit at the hub, so a revocation interrupted half-way or a replaced kit
still leaves the kit able to open every epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from edge_node.hub_link.client import HubClient
from edge_node.hub_link.context import SyncContext
from edge_node.hub_link.errors import EnrollmentError, HubRefused
from edge_node.store.practice_sites import PracticeSite, SaveSites
from edge_node.store.roster_store import SaveRosterEntries, roster_entries
from sync_protocol.errors import ProtocolError, RosterBroken
from sync_protocol.keys import Keyring, SiteKeyPair
from sync_protocol.kit_keys import seal_epoch_for_kit
from sync_protocol.roster import Roster, SignedEntry, fold

log = logging.getLogger(__name__)

#: Attempts when other sites keep taking the roster's next position first.
APPEND_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Fetched:
    roster: Roster | None
    #: Entries this site did not hold, in order (save them).
    new: list[bytes]
    #: How many entries the hub holds (fewer than this site: it lost some).
    served: int


async def fetch_roster(hub: HubClient, practice_id: UUID, local: Sequence[bytes]) -> Fetched:
    """The roster verified from `local` plus what the hub holds beyond it.

    Raises `RosterBroken` if the hub serves another chain than this site's copy or
    entries that do not chain on it, `MalformedInput` for garbage (the caller keeps its
    copy and says so).  Rosters are small: the whole chain is read each time."""
    served = await hub.roster(after=-1)
    common = min(len(served), len(local))
    if served[:common] != list(local[:common]):
        raise RosterBroken(f"the hub serves another roster for practice {practice_id} than "
                           "the one this site verified",
                           hint="the hub may be lying or was replaced; report it to the "
                           "operator. This site keeps trusting its own copy")
    start = fold(practice_id, local) if local else None
    new = list(served[len(local):])
    roster = fold(practice_id, new, start) if new else start
    return Fetched(roster, new, len(served))


async def append_entry(hub: HubClient, practice_id: UUID, local: Sequence[bytes],
                       build: Callable[[Roster], SignedEntry | None]
                       ) -> tuple[Roster, list[bytes]]:
    """Append `build(verified roster)` at the hub; return the roster after it and every
    entry this site did not hold before (others' and its own), to save.  `build` returns
    None when the roster needs no entry any more (another site wrote the same change
    first): nothing is posted then."""
    held = list(local)
    for _ in range(APPEND_ATTEMPTS):
        fetched = await fetch_roster(hub, practice_id, held)
        held += fetched.new
        for raw in held[fetched.served:]:
            await hub.post_roster_entry(raw)  # a hub that lost entries gets them back first
        roster = fetched.roster
        if roster is None:
            raise EnrollmentError(f"practice {practice_id} has no roster at the hub",
                                  hint="the practice's first site writes it; run this on a "
                                  "site that is already syncing")
        signed = build(roster)
        if signed is None:
            return roster, held[len(local):]
        try:
            await hub.post_roster_entry(signed.raw)
        except HubRefused as exc:
            if exc.hub_code == "roster_moved":
                continue
            raise
        held.append(signed.raw)
        return fold(practice_id, [signed.raw], roster), held[len(local):]
    raise EnrollmentError("the roster kept moving while this entry was written",
                          hint="other sites are changing membership right now; try again")


async def reconcile_hub(hub: HubClient, practice_id: UUID, local: Sequence[bytes],
                        served_count: int, roster: Roster, keyring: Keyring | None, *,
                        me: UUID, keys: SiteKeyPair) -> None:
    """Re-post entries the hub lacks (it holds `served_count` of ours) and seal to the
    current kit every epoch of `keyring` the hub lacks for it.  Errors are logged, not
    raised: the next refresh tries again."""
    try:
        for raw in local[served_count:]:
            await hub.post_roster_entry(raw)
        if keyring is None or not roster.is_approved(me):
            return
        kit = roster.kit
        have = {(epoch, fp) for epoch, fp, _ in await hub.kit_epochs()}
        for key in sorted(keyring.keys.values(), key=lambda k: k.epoch):
            if (key.epoch, kit.fingerprint) in have:
                continue
            sealed = seal_epoch_for_kit(key, practice_id=practice_id, sender_id=me,
                                        sender_keys=keys, kit=kit)
            await hub.put_kit_epoch(key.epoch, kit.fingerprint, sealed.sealed)
            log.info("practice key epoch %d sealed to the recovery kit %s at the hub",
                     key.epoch, kit.fingerprint)
    except (HubRefused, ProtocolError) as exc:
        log.warning("could not bring the hub's roster and kit keys up to date (%s); "
                    "retried at the next refresh", exc.code)


async def refresh_registry(ctx: SyncContext) -> None:
    """Bring this site's roster up to date and trust the sites it proves.

    The practice's site registry (names, public keys) is kept too (`practice_sites`:
    a rebuilt hub needs the keys of a site lost with the old one).  A practice whose
    hub and site hold no roster at all (enrolled before rosters) trusts the hub's
    registry, as it always did, until its first roster entry.
    """
    sites = await ctx.hub.sites()
    local = await ctx.read(roster_entries)
    practice_id = ctx.state.practice_id
    try:
        fetched = await fetch_roster(ctx.hub, practice_id, local)
    except ProtocolError as exc:
        log.warning("the hub's roster was refused (%s): %s; this site keeps its own copy",
                    exc.code, exc.message)
        fetched = None
    except HubRefused as exc:
        if exc.status != 404:
            raise
        log.warning("the hub serves no roster (an older hub): this site trusts the hub's "
                    "site registry until the hub is upgraded")
        fetched = None
    if fetched is None:  # this site's own copy, verified again
        roster = fold(practice_id, local) if local else None
    else:
        if fetched.new:
            await ctx.write(SaveRosterEntries(len(local), tuple(fetched.new)), label="roster")
        roster = fetched.roster
    if roster is not None:
        for member in roster.members.values():
            ctx.directory.add(member.keys)
        ctx.roster = roster
        if fetched is not None:
            await reconcile_hub(ctx.hub, practice_id, [*local, *fetched.new], fetched.served,
                                roster, ctx.keyring, me=ctx.site_id, keys=ctx.edge.site.keys)
    else:
        for site in sites:
            if site.status in ("approved", "revoked"):
                ctx.directory.add(site.public_keys)
    if sites:
        now = ctx.now_ms()
        await ctx.write(SaveSites(tuple(
            PracticeSite(str(s.site_id), s.name, s.status, s.verify_key, s.box_key, now)
            for s in sites)), label="registry")


__all__ = ["APPEND_ATTEMPTS", "Fetched", "append_entry", "fetch_roster", "reconcile_hub",
           "refresh_registry"]
