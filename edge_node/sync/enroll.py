"""Enrollment and key administration: `edge init --hub`, invite, approve, revoke.

    result = await enroll_site(data_dir, settings, token=..., name=..., ...)
    token = await invite(data_dir)
    await approve(data_dir, site_id, fingerprint)      # FingerprintMismatch on a wrong one
    epoch = await revoke(data_dir, site_id, entropy)   # new practice key epoch, sealed on
    result = await reenroll(data_dir, settings, token=..., name=..., now_ms=...)  # rebuilt hub

The hub assigns the site id at enrollment; the data directory is created with
it (dots carry it).  The practice's first site is approved by its token and
generates the practice key (epoch 1); later sites wait, pending, until an
approved site compares their fingerprint and seals the keys to them through
the mailbox.  Revoking rotates the practice key: the new epoch is sealed to
every remaining approved site (this one included, so its running sync loop
adopts it through the same mailbox path) and the revoked site, holding only
older epochs, cannot open anything written after.

A hub lost and rebuilt empty knows none of the sites' credentials.  Each site
re-enrolls there under its old id and keys (`reenroll`, the edge stopped): it
pins the new hub's key, takes a new credential, and goes back to position 0 of
the new log — its own batches are pushed again from sequence 1 and the other
sites' batches it received are queued for relay (`store.rewind`), so the sites
together give the hub back the practice's whole log.  The first site to
re-enroll uses a token from the operator and is approved by it; the others use
`invite` tokens and are approved (fingerprint checked) like new sites.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from edge_node.errors import StoreError
from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.errors import EnrollmentError, FingerprintMismatch, HubRefused, SyncError
from edge_node.node import init_data_dir
from edge_node.store.connection import open_sync
from edge_node.store.ledger import Connection, own_batch_count
from edge_node.store.relay_queue import relay_depth
from edge_node.store.rewind import RewindTo
from edge_node.store.roster_store import SaveRosterEntries, roster_entries, save_roster_entries
from edge_node.store.site import load_site
from edge_node.store.sync_state import (
    SyncState,
    add_key_epochs,
    pending_epoch,
    rebind_hub,
    require_sync_state,
    save_enrollment,
    save_keyring,
    save_pending_epoch,
)
from edge_node.store.transaction import write_transaction
from edge_node.store.users import User
from edge_node.sync.kit_file import RECOVERY_KIT_FILE, write_recovery_kit
from edge_node.sync.membership import append_entry, fetch_roster
from sync_protocol.ids import SiteId
from sync_protocol.key_delivery import seal_keys_for_site
from sync_protocol.keys import Keyring, PracticeKey, SiteKeyPair
from sync_protocol.kit_keys import KitKeyPair, KitPublicKeys, seal_epoch_for_kit
from sync_protocol.roster import EntryKind, Roster, SignedEntry, genesis_entry, sign_entry

log = logging.getLogger(__name__)

Entropy = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class EnrollResult:
    site_id: UUID
    practice_id: UUID
    status: str
    fingerprint: str
    admin: User
    admin_token: str
    recovery_kit: Path | None
    shares: list[str]
    kit_fingerprint: str | None = None


def normalize_fingerprint(text: str) -> str:
    """Fingerprints compare case-insensitively with or without dashes and spaces."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


async def enroll_site(data_dir: Path, settings: HubSettings, *, token: str, name: str,
                      admin_name: str, now_ms: int, entropy: Entropy,
                      passphrase: str | Callable[[], str] | None,
                      shares: tuple[int, int] | None, created: str) -> EnrollResult:
    """Register with the hub, then create `data_dir` with the hub's site id.

    The first site of a practice also creates the practice key and writes
    `recovery-kit.txt` (passphrase, or K-of-N shares).  `passphrase` may be a
    function: it is called only for the first site (a later site gets the
    practice key from an approving site and writes no kit, so nobody is asked
    for a passphrase there).  Raises `StoreError`
    before contacting the hub if `data_dir` is already initialised.
    """
    if (data_dir / "edge.sqlite3").exists():
        raise StoreError(f"{data_dir} already holds an edge database",
                         hint="use a new directory for a new site")
    keys = SiteKeyPair.generate(entropy(64))
    async with HubClient.open(settings) as hub:
        hub_key = await hub.hub_key()
        enrolled = await hub.enroll(token, name, keys.public(UUID(int=0)))
    if enrolled.hub_verify_key != hub_key.verify_key:
        raise EnrollmentError("the hub's enrollment answer names another hub key than "
                              "/v1/hub-key", hint="check the hub URL; try again")
    keyring = None
    if enrolled.status == "approved":
        if passphrase is None and shares is None:
            raise EnrollmentError("the first site needs a recovery passphrase or shares",
                                  hint="pass --recovery-passphrase-file or --recovery-shares")
        if callable(passphrase):
            passphrase = passphrase()
        keyring = Keyring(enrolled.practice_id, {1: PracticeKey.generate(1, entropy(32))})
        kit = KitKeyPair.from_seed(entropy(32))
    site, admin, admin_token = await asyncio.to_thread(
        init_data_dir, data_dir, now_ms=now_ms, entropy=entropy, admin_name=admin_name,
        site_id=SiteId(enrolled.site_id), keys=keys, practice_id=enrolled.practice_id)
    conn = open_sync(data_dir)
    try:
        with write_transaction(conn):
            save_enrollment(conn, data_dir, hub_url=settings.url, hub_ca=settings.ca_file,
                            insecure_http=settings.insecure_http,
                            practice_id=enrolled.practice_id, credential=enrolled.credential,
                            hub_verify_key=enrolled.hub_verify_key, status=enrolled.status,
                            log_id=hub_key.log_id)
            if keyring is not None:
                save_keyring(conn, data_dir, keyring)
                genesis = sign_entry(genesis_entry(enrolled.practice_id,
                                                   keys.public(enrolled.site_id), kit.public(),
                                                   at_ms=now_ms), keys)
                SaveRosterEntries(0, (genesis.raw,)).apply(conn)
    finally:
        conn.close()
    if keyring is not None:
        await _publish_genesis(settings, enrolled.credential, genesis.raw, keyring,
                               practice_id=enrolled.practice_id, site_id=enrolled.site_id,
                               keys=keys, kit=kit.public())
    kit_path: Path | None = None
    words: list[str] = []
    if keyring is not None:
        assert passphrase is None or isinstance(passphrase, str)
        kit_path = data_dir / RECOVERY_KIT_FILE
        words = await write_recovery_kit(kit_path, keyring, kit, passphrase=passphrase,
                                         shares=shares, created=created)
    return EnrollResult(site.site_id, enrolled.practice_id, enrolled.status,
                        keys.fingerprint, admin, admin_token, kit_path, words,
                        None if keyring is None else kit.public().fingerprint)


async def _publish_genesis(settings: HubSettings, credential: str, genesis: bytes,
                           keyring: Keyring, *, practice_id: UUID, site_id: UUID,
                           keys: SiteKeyPair, kit: KitPublicKeys) -> None:
    """Give the hub the roster's genesis and epoch 1 sealed to the kit.  A failure is
    logged only: the data directory holds both, and the sync loop hands them over."""
    try:
        async with HubClient.open(settings, credential=credential) as hub:
            await hub.post_roster_entry(genesis)
            key = keyring.current
            sealed = seal_epoch_for_kit(key, practice_id=practice_id, sender_id=site_id,
                                        sender_keys=keys, kit=kit)
            await hub.put_kit_epoch(key.epoch, kit.fingerprint, sealed.sealed)
    except SyncError as exc:
        log.warning("the roster's genesis did not reach the hub yet (%s); `edge serve` "
                    "sends it", exc.code)


@dataclass(frozen=True, slots=True)
class Reenrolled:
    site_id: UUID
    practice_id: UUID
    status: str
    fingerprint: str
    #: This site's own batches to push again, and other sites' batches queued for relay.
    own_batches: int
    relays: int


async def reenroll(data_dir: Path, settings: HubSettings, *, token: str, name: str,
                   now_ms: int) -> Reenrolled:
    """Enroll this existing site, under its id and keys, with a hub rebuilt after a loss.

    Pins the new hub's key, stores the new credential and hub address, and goes back
    to position 0 of the hub's log (`store.rewind`) in one transaction; the sync loop
    then pushes and relays.  Raises `EnrollmentError` for a token of another practice
    or an answer that does not match (nothing is changed then), `HubRefused` for the
    hub's refusal (for example 409: the hub already knows this site).
    """
    conn, state, keys, site_id = _load(data_dir)
    conn.close()
    if not token.startswith(f"cse_{state.practice_id.hex}."):
        raise EnrollmentError("this enrollment token is not for this site's practice "
                              f"({state.practice_id})",
                              hint="ask the operator for a token of this practice (recreated "
                              "on the new hub under the same practice id)")
    async with HubClient.open(settings) as hub:
        hub_key = await hub.hub_key()
        try:
            enrolled = await hub.enroll(token, name, keys.public(site_id), site_id=site_id)
        except HubRefused as exc:
            if exc.status != 409:
                raise
            raise EnrollmentError(f"the hub at {settings.url} already knows site {site_id}: it "
                                  "was not rebuilt, so there is nothing to re-enroll",
                                  hint="start `chartsync edge serve`; if it cannot sync, "
                                  "see its status page for the reason") from exc
    if enrolled.hub_verify_key != hub_key.verify_key:
        raise EnrollmentError("the hub's enrollment answer names another hub key than "
                              "/v1/hub-key", hint="check the hub URL; try again")
    if (enrolled.site_id, enrolled.practice_id) != (site_id, state.practice_id):
        raise EnrollmentError(f"the hub enrolled site {enrolled.site_id} of practice "
                              f"{enrolled.practice_id}, not this site {site_id}",
                              hint="the hub does not support re-enrollment; upgrade it")
    conn = open_sync(data_dir)
    try:
        with write_transaction(conn):
            rebind_hub(conn, data_dir, hub_url=settings.url, hub_ca=settings.ca_file,
                       insecure_http=settings.insecure_http, credential=enrolled.credential,
                       hub_verify_key=enrolled.hub_verify_key, status=enrolled.status,
                       log_id=hub_key.log_id)
            RewindTo(0, now_ms).apply(conn)
            own = own_batch_count(conn)
            relays = relay_depth(conn)
    finally:
        conn.close()
    log.warning("site re-enrolled on a rebuilt hub (practice %s, site %s): %d own batches "
                "to push again, %d received batches to relay", state.practice_id, site_id,
                own, relays)
    return Reenrolled(site_id, state.practice_id, enrolled.status, keys.fingerprint,
                      int(own), relays)


def _load(data_dir: Path) -> tuple[Connection, SyncState, SiteKeyPair, UUID]:
    conn = open_sync(data_dir)
    try:
        state = require_sync_state(conn, data_dir)
        site = load_site(conn, data_dir)
    except BaseException:
        conn.close()
        raise
    return conn, state, site.keys, site.site_id


def settings_of(state: SyncState) -> HubSettings:
    return HubSettings(state.hub_url, state.hub_ca, state.insecure_http)


async def invite(data_dir: Path, ttl_s: int | None = None) -> tuple[str, int]:
    """A one-time enrollment token for a new site of this practice (and its expiry)."""
    conn, state, _, _ = _load(data_dir)
    conn.close()
    async with HubClient.open(settings_of(state), credential=state.credential) as hub:
        token = await hub.create_enrollment_token(state.practice_id, ttl_s=ttl_s)
    return token.token, token.expires_ms


async def approve(data_dir: Path, site_id: UUID, fingerprint: str, *,
                  now_ms: int | None = None) -> str:
    """Approve a pending site after checking `fingerprint`; seal every key epoch to it.

    Writes a roster entry signed by this site (the hub cannot admit anyone by itself),
    then seals the keys to the keys that entry names.  Raises `FingerprintMismatch`
    (nothing approved) if the fingerprint differs from the one of the keys the site
    registered.  Returns the site's name.
    """
    conn, state, keys, me = _load(data_dir)
    local = roster_entries(conn)
    conn.close()
    if state.keyring is None:
        raise EnrollmentError("this site has no practice key yet, so it cannot approve others",
                              hint="run approve on a site that is already syncing")
    keyring = state.keyring
    async with HubClient.open(settings_of(state), credential=state.credential) as hub:
        registry = {s.site_id: s for s in await hub.sites()}
        target = registry.get(site_id)
        if target is None:
            raise EnrollmentError(f"site {site_id} is not registered in this practice",
                                  hint="copy the site id that `edge init` printed")
        if normalize_fingerprint(target.fingerprint) != normalize_fingerprint(fingerprint):
            raise FingerprintMismatch(
                f"the fingerprint given does not match the keys site {site_id} registered; "
                "the site was NOT approved",
                hint="read the fingerprint again from the new site's screen; if it really "
                "differs, someone else may have enrolled with the token — revoke that site")
        fetched = await fetch_roster(hub, state.practice_id, local)
        roster = fetched.roster
        new = fetched.new
        if roster is None:  # a practice enrolled before rosters: the registry decides
            await hub.approve(site_id)
            recipient = target.public_keys
        else:
            _require_member(roster, me, "approve")
            member = roster.members.get(site_id)
            if member is None:
                stamp = now_ms if now_ms is not None else int(time.time() * 1000)

                def approval(r: Roster) -> SignedEntry | None:
                    if site_id in r.members:  # another member approved it meanwhile
                        return None
                    return sign_entry(r.next_entry(EntryKind.APPROVE, signer=me, at_ms=stamp,
                                                   site=target.public_keys), keys)

                roster, new = await append_entry(hub, state.practice_id, local, approval)
                member = roster.members[site_id]
                if member.keys != target.public_keys or not member.approved:
                    raise EnrollmentError(f"site {site_id} was admitted meanwhile with other "
                                          "keys, or revoked", hint="check `edge roster`")
            elif member.keys != target.public_keys or not member.approved:
                raise EnrollmentError(f"site {site_id} is in the roster with other keys or "
                                      "was revoked; it cannot be approved again",
                                      hint="enroll the machine again with a new token")
            else:
                await hub.approve(site_id)  # a member re-enrolled on a rebuilt hub
            recipient = member.keys
        save_roster_entries(data_dir, len(local), new)
        sealed = seal_keys_for_site(keyring.keys.values(), practice_id=state.practice_id,
                                    sender_id=me, sender_keys=keys, recipient=recipient)
        await hub.post_mail(site_id, sealed)
    log.info("site approved and keys sent", extra={"site_id": str(site_id)})
    return target.name


def _require_member(roster: Roster, me: UUID, what: str) -> None:
    if not roster.is_approved(me):
        raise EnrollmentError(f"this site ({me}) is not an approved member of the practice "
                              f"roster, so it cannot {what} sites",
                              hint="run this on a site that is an approved member")


async def revoke(data_dir: Path, site_id: UUID, entropy: Entropy, *,
                 now_ms: int | None = None) -> int:
    """Revoke `site_id` and rotate the practice key; return the new epoch.

    The new epoch key is stored first as *pending* (never used to seal), then the roster
    entry signed by this site revokes the site at the hub, then the key becomes the
    current epoch here — before this returns, so every change this site seals afterwards
    uses it (a running `edge serve` reads the stored keyring before each seal) — and is
    sealed to every remaining member the roster proves and to the recovery kit.

    Safe to run again after an interruption: a pending key is announced, or promoted if
    its entry made it to the hub, and an announced revocation is only sealed on again.
    If another site revoked the same site first, this site's pending key is dropped
    (its epoch number belongs to the other site's key) and `EnrollmentError` says so.
    """
    conn, state, keys, me = _load(data_dir)
    local = roster_entries(conn)
    try:
        if site_id == me:
            raise EnrollmentError("a site cannot revoke itself here",
                                  hint="run revoke on another approved site")
        if state.keyring is None:
            raise EnrollmentError("this site holds no practice key",
                                  hint="run revoke on a site that is already syncing")
        async with HubClient.open(settings_of(state), credential=state.credential) as hub:
            fetched = await fetch_roster(hub, state.practice_id, local)
            roster = fetched.roster
            if roster is None:
                return await _revoke_unrostered(conn, data_dir, hub, state, keys, me, site_id,
                                                entropy)
            _require_member(roster, me, "revoke")
            target = roster.members.get(site_id)
            if target is None:
                raise EnrollmentError(f"site {site_id} is not a member of the practice roster",
                                      hint="`chartsync edge roster` lists the members")
            pending = pending_epoch(conn, data_dir)
            new = fetched.new
            if target.approved:
                epoch = roster.epoch + 1
                if max(state.keyring.keys) < roster.epoch:
                    raise EnrollmentError(
                        f"this site does not hold key epoch {roster.epoch} yet",
                        hint="wait for its keys to arrive (`edge serve` running), then retry")
                if pending is None or pending.epoch != epoch:
                    pending = PracticeKey.generate(epoch, entropy(32))
                    with write_transaction(conn):
                        save_pending_epoch(conn, data_dir, pending)
                stamp = now_ms if now_ms is not None else int(time.time() * 1000)

                def revocation(r: Roster) -> SignedEntry | None:
                    if not r.is_approved(site_id):  # revoked meanwhile by another site
                        return None
                    return sign_entry(r.next_entry(EntryKind.REVOKE, signer=me, at_ms=stamp,
                                                   site=target.keys, epoch=epoch), keys)

                roster, new = await append_entry(hub, state.practice_id, local, revocation)
            key = _announced_key(conn, data_dir, roster, site_id, me, state.keyring, pending)
            with write_transaction(conn):
                SaveRosterEntries(len(local), tuple(new)).apply(conn)
            for member in roster.approved():
                if member.site_id == me:
                    continue
                await hub.post_mail(member.site_id, seal_keys_for_site(
                    [key], practice_id=state.practice_id, sender_id=me, sender_keys=keys,
                    recipient=member.keys))
            sealed = seal_epoch_for_kit(key, practice_id=state.practice_id, sender_id=me,
                                        sender_keys=keys, kit=roster.kit)
            await hub.put_kit_epoch(key.epoch, roster.kit.fingerprint, sealed.sealed)
            return key.epoch
    finally:
        conn.close()


def _announced_key(conn: Connection, data_dir: Path, roster: Roster, site_id: UUID,
                   me: UUID, keyring: Keyring, pending: PracticeKey | None) -> PracticeKey:
    """The key of the epoch `site_id`'s revocation began, made current here; raises
    `EnrollmentError` when another site's revocation began it (its key comes by mail)."""
    revoked_by = roster.members[site_id].revoked_by
    if revoked_by == me and pending is not None and pending.epoch == roster.epoch:
        with write_transaction(conn):
            add_key_epochs(conn, data_dir, [pending])
            save_pending_epoch(conn, data_dir, None)
        return pending
    if pending is not None:
        with write_transaction(conn):
            save_pending_epoch(conn, data_dir, None)  # made here, announced by nobody
    if roster.epoch in keyring.keys:  # a rerun (promoted before), or delivered by mail
        return keyring.keys[roster.epoch]
    by = str(revoked_by) if revoked_by is not None else "the recovery kit"
    raise EnrollmentError(f"site {site_id} was revoked by another site ({by}), which began "
                          f"key epoch {roster.epoch}",
                          hint="that epoch reaches this site through its mailbox while "
                          "`edge serve` runs; `chartsync edge request-keys` asks for it")


async def _revoke_unrostered(conn: Connection, data_dir: Path, hub: HubClient,
                             state: SyncState, keys: SiteKeyPair, me: UUID, site_id: UUID,
                             entropy: Entropy) -> int:
    """A practice enrolled before rosters: the hub's registry names the members."""
    assert state.keyring is not None
    await hub.revoke(site_id)
    epoch = max(state.keyring.keys) + 1
    new_key = PracticeKey.generate(epoch, entropy(32))
    with write_transaction(conn):
        save_keyring(conn, data_dir, state.keyring.with_key(new_key))
    for site in await hub.sites():
        if site.status != "approved" or site.site_id in (site_id, me):
            continue
        await hub.post_mail(site.site_id, seal_keys_for_site(
            [new_key], practice_id=state.practice_id, sender_id=me, sender_keys=keys,
            recipient=site.public_keys))
    return epoch


__all__ = ["EnrollResult", "approve", "enroll_site", "invite", "normalize_fingerprint",
           "revoke"]
