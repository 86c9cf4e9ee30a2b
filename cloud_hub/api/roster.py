"""The practice roster and the kit-sealed epoch keys: stored and served, never made here.

The hub cannot sign a roster entry (it holds no member's key), so it cannot add
a member.  It checks each posted entry as every site will (`sync_protocol.roster`),
so the chain it serves stays well formed, and stores it only at the next free
position (two sites appending at once: the second gets `RosterMoved` and
rebuilds its entry on the new head).  An entry that admits or revokes a site also
sets that site's registry status in the same transaction.

A pending site may post exactly one kind of entry: its own approval signed with
the recovery kit (a machine restored with the kit when no site is left).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.body import read_json
from cloud_hub.api.context import hub
from cloud_hub.api.messages import KitEpochIn, KitEpochOut, RosterEntryIn
from cloud_hub.errors import BadRequest, Forbidden, RosterMoved, not_found
from cloud_hub.log_keys import PRACTICE_ID, SITE_ID
from cloud_hub.notifier import REGISTRY_CHANGED
from cloud_hub.store.base import (
    HubStore,
    KitEpochRecord,
    RosterStatusChange,
    SiteRecord,
    SiteStatus,
)
from sync_protocol.errors import ProtocolError
from sync_protocol.ids import KeyEpoch, PracticeId, SiteId
from sync_protocol.kit_keys import sealed_epoch_of
from sync_protocol.roster import EntryKind, Roster, SignedEntry, fold

log = logging.getLogger(__name__)

_MAX_BODY = 16 * 1024


async def practice_roster(store: HubStore, practice_id: PracticeId) -> Roster | None:
    """The roster the stored chain proves, or None before the genesis."""
    entries = await store.roster_entries(practice_id, -1)
    return fold(practice_id, entries) if entries else None


async def get_roster(request: web.Request) -> web.Response:
    """Entries after `?after=` (default: all); pending sites may read it (public keys)."""
    site = await auth.site(request, approved=False)
    try:
        after = int(request.query.get("after", "-1"))
    except ValueError:
        raise BadRequest("after: not an integer", hint="pass the last position you hold, "
                         "or -1 for the whole roster") from None
    entries = await hub(request).store.roster_entries(site.practice_id, max(after, -1))
    return web.json_response({"entries": [RosterEntryIn(entry=e).model_dump(mode="json")
                                          ["entry"] for e in entries]})


def _status_change(signed: SignedEntry) -> RosterStatusChange | None:
    entry = signed.entry
    if entry.site is None:
        return None
    if entry.kind is EntryKind.APPROVE:
        return RosterStatusChange(SiteId(entry.site), SiteStatus.APPROVED,
                                  None if entry.signer is None else SiteId(entry.signer))
    if entry.kind is EntryKind.REVOKE:
        return RosterStatusChange(SiteId(entry.site), SiteStatus.REVOKED, None)
    return None


async def _check_subject(store: HubStore, practice_id: PracticeId,
                         signed: SignedEntry) -> None:
    """A site the entry admits that is registered here must have exactly the keys the
    entry names.  One not registered (yet) is fine: a site gives a rebuilt hub back the
    entries it holds before every site has re-enrolled there."""
    entry = signed.entry
    if entry.kind not in (EntryKind.APPROVE, EntryKind.GENESIS) or entry.site is None:
        return
    registered = await store.get_site(practice_id, SiteId(entry.site))
    if registered is None:
        return
    if (registered.verify_key, registered.box_key) != (entry.verify_key, entry.box_key):
        raise BadRequest(f"roster entry {entry.seq} names other keys for site {entry.site} "
                         "than the site registered",
                         hint="compare the site's fingerprint again; it may have enrolled "
                         "anew")
    if entry.kind is EntryKind.APPROVE and registered.status is SiteStatus.REVOKED:
        raise Forbidden(f"site {entry.site} was revoked and cannot be approved again",
                        hint="enroll the machine again with a new token")


def _may_post(caller: SiteRecord, signed: SignedEntry) -> None:
    if caller.status is SiteStatus.APPROVED:
        return
    entry = signed.entry
    if not (entry.kind is EntryKind.APPROVE and entry.signer is None
            and entry.site == caller.site_id):
        raise Forbidden(f"site {caller.site_id} is {caller.status.value}: it may post only "
                        "its own approval signed with the recovery kit",
                        hint="an approved site approves it with `chartsync edge approve`")


async def post_roster(request: web.Request) -> web.Response:
    """Append one signed entry at the next position, as every site will verify it."""
    caller = await auth.site(request, approved=False)
    ctx = hub(request)
    body = await read_json(request, RosterEntryIn, _MAX_BODY)
    practice_id = caller.practice_id
    try:
        signed = SignedEntry.parse(body.entry)
        _may_post(caller, signed)
        stored = await ctx.store.roster_entries(practice_id, -1)
        if signed.entry.seq != len(stored):
            raise RosterMoved(f"roster entry for position {signed.entry.seq}, but the roster "
                              f"of practice {practice_id} continues at {len(stored)}",
                              hint="fetch the roster again and build the entry on its head",
                              head_seq=len(stored) - 1)
        before = fold(practice_id, stored) if stored else None
        after = fold(practice_id, [body.entry], before)
    except ProtocolError as exc:
        raise BadRequest(f"roster entry refused: {exc.message}", hint=exc.hint) from exc
    if signed.entry.seq in after.ignored:
        raise Forbidden(f"roster entry {signed.entry.seq} has no effect: its signer is not an "
                        "approved member (or the kit), or it changes nothing",
                        hint="sign it on an approved site, with the current recovery kit")
    await _check_subject(ctx.store, practice_id, signed)
    change = _status_change(signed)
    if not await ctx.store.append_roster_entry(practice_id, signed.entry.seq, body.entry,
                                               ctx.now_ms(), change):
        raise RosterMoved(f"roster position {signed.entry.seq} of practice {practice_id} was "
                          "taken meanwhile", hint="fetch the roster again and retry",
                          head_seq=signed.entry.seq)
    ctx.notifier.publish(practice_id, REGISTRY_CHANGED)
    log.info("roster entry %d (%s) stored", signed.entry.seq, signed.entry.kind.value,
             extra={PRACTICE_ID: str(practice_id), SITE_ID: str(caller.site_id)})
    return web.json_response({"seq": signed.entry.seq}, status=201)


async def put_kit_epoch(request: web.Request) -> web.Response:
    """Keep an epoch key sealed to the practice's current recovery kit."""
    caller = await auth.site(request)
    ctx = hub(request)
    try:
        epoch = int(request.match_info["epoch"])
    except ValueError:
        raise not_found("key epoch") from None
    body = await read_json(request, KitEpochIn, _MAX_BODY)
    try:
        claimed = sealed_epoch_of(body.sealed)
        roster = await practice_roster(ctx.store, caller.practice_id)
    except ProtocolError as exc:
        raise BadRequest(f"kit-sealed key refused: {exc.message}", hint=exc.hint) from exc
    if claimed != epoch:
        raise BadRequest(f"the sealed key is for epoch {claimed}, not {epoch}",
                         hint="PUT it under its own epoch")
    if roster is None or roster.kit.fingerprint != body.kit_fingerprint:
        raise BadRequest("kit-sealed key for a kit the practice roster does not name",
                         hint="seal it to the recovery kit of the roster's latest kit entry")
    await ctx.store.put_kit_epoch(caller.practice_id, KitEpochRecord(
        KeyEpoch(epoch), body.kit_fingerprint, body.sealed, ctx.now_ms()))
    return web.Response(status=204)


async def list_kit_epochs(request: web.Request) -> web.Response:
    caller = await auth.site(request)
    items = await hub(request).store.kit_epochs(caller.practice_id)
    out: list[dict[str, Any]] = [
        KitEpochOut(epoch=i.epoch, kit_fingerprint=i.kit_fingerprint, sealed=i.sealed,
                    created_ms=i.created_ms).model_dump(mode="json") for i in items]
    return web.json_response({"items": out})
