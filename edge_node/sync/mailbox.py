"""The mailbox: this site's approval at the hub and the practice keys sealed to it.

    await Mailbox(ctx, recovery).run()   # one task of the sync loop, forever

Until the site is approved, each poll asks the hub for its status and keeps it
(`sync_state.enrolled_status`).  Once approved, each poll opens the key deliveries
waiting for it (`sync_protocol.key_delivery`), adds their epochs to the keyring (kept
sealed at rest in the same step as the hub's copy is deleted), starts the state digest
with the first key, and wakes the pusher and the held batches (`keys_changed`).  A
delivery that does not open is deleted, logged.  Relays waiting for their site to be
approved at the hub are tried again at every poll.  Raises the hub's transient
failures for the caller's backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from uuid import UUID

from edge_node.hub_link.context import SyncContext
from edge_node.store.sync_state import SetEnrolledStatus, StoreKeyring, keyring_row
from edge_node.sync.membership import refresh_registry
from edge_node.sync.recovery import HubRecovery
from sync_protocol.errors import ProtocolError
from sync_protocol.key_delivery import open_keys_for_site
from sync_protocol.keys import Keyring, PracticeKey

log = logging.getLogger(__name__)

#: Poll at least this often while the site has no practice key yet.
KEYLESS_POLL_S = 1.0


def key_added(keyring: Keyring | None, practice_id: UUID, key: PracticeKey) -> Keyring:
    """`keyring` with `key` (a new keyring for the practice's first key; pure)."""
    if keyring is None:
        return Keyring(practice_id, {key.epoch: key})
    return keyring.with_key(key)


class Mailbox:
    def __init__(self, ctx: SyncContext, recovery: HubRecovery) -> None:
        self.ctx = ctx
        self._recovery = recovery

    async def run(self) -> None:
        """Poll every `mailbox_poll_s` (every second while keyless); never returns."""
        ctx = self.ctx
        while True:
            if ctx.state.enrolled_status != "approved":
                me = await ctx.hub.me()
                if me.status != ctx.state.enrolled_status:
                    await ctx.write(SetEnrolledStatus(me.status), label="status")
                    ctx.state = replace(ctx.state, enrolled_status=me.status)
                    ctx.status.keys(me.status, ctx.keyring is not None)
            if ctx.state.enrolled_status == "approved":
                await self._open_mail()
                if self._recovery.relays_waiting:
                    await self._recovery.drain_relays()  # a site re-enrolled and approved?
            poll = ctx.settings.mailbox_poll_s
            if ctx.keyring is None:
                poll = min(poll, KEYLESS_POLL_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await asyncio.Event().wait()

    async def _open_mail(self) -> None:
        ctx = self.ctx
        items = await ctx.hub.mailbox()
        if not items:
            return
        await refresh_registry(ctx)
        first_keys = ctx.keyring is None
        for mail in items:
            try:
                delivered = open_keys_for_site(
                    mail.sealed, practice_id=ctx.state.practice_id, site_id=ctx.site_id,
                    site_keys=ctx.edge.site.keys, directory=ctx.directory)
            except ProtocolError as exc:
                log.warning("mailbox item refused (%s); deleted", exc.code)
                await ctx.hub.delete_mail(mail.mail_id)
                continue
            keyring = ctx.keyring
            for key in delivered.keys.values():
                keyring = key_added(keyring, ctx.state.practice_id, key)
            assert keyring is not None
            await ctx.write(StoreKeyring(keyring_row(ctx.data_dir, keyring)), label="keys")
            ctx.keyring = keyring
            await ctx.hub.delete_mail(mail.mail_id)
            log.info("practice key epochs %s received", sorted(delivered.keys))
        if first_keys and ctx.keyring is not None:
            await ctx.edge.writer.start_digest(ctx.keyring.digest_key)
        ctx.status.keys(ctx.state.enrolled_status, ctx.keyring is not None)
        ctx.keys_changed.set()
        ctx.push_due.set()


__all__ = ["KEYLESS_POLL_S", "Mailbox", "key_added"]
