"""The mailbox: practice keys sealed to a site's X25519 key, carried between sites.

Each site's mailbox holds at most `mailbox_max_items` items and `mailbox_max_bytes`
sealed bytes (`cloud_hub.config`); an item that would pass either is refused with
409 `mailbox_full` (retryable: the recipient collects and deletes its mail).  The check
reads the mailbox before the insert, so concurrent senders may pass the quota by the
items in flight; it bounds a flood, not the last byte.
"""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.body import read_body
from cloud_hub.api.context import hub
from cloud_hub.api.messages import MailOut
from cloud_hub.errors import MailboxFull, not_found
from cloud_hub.store.base import SiteStatus
from sync_protocol.ids import SiteId, uuid7


async def post_mail(request: web.Request) -> web.Response:
    """Leave sealed bytes for a (non-revoked) site of the sender's practice."""
    sender = await auth.site(request)
    ctx = hub(request)
    try:
        to_site = SiteId(UUID(request.match_info["id"]))
    except ValueError:
        raise not_found("site") from None
    recipient = await ctx.store.get_site(sender.practice_id, to_site)
    if recipient is None or recipient.status is SiteStatus.REVOKED:
        raise not_found("site")
    sealed = await read_body(request, ctx.config.max_mail_bytes, what="mailbox item")
    count, size = await ctx.store.mail_usage(sender.practice_id, to_site)
    if count + 1 > ctx.config.mailbox_max_items \
            or size + len(sealed) > ctx.config.mailbox_max_bytes:
        raise MailboxFull(f"the mailbox of site {to_site} is full ({count} items, {size} "
                          f"bytes; the hub keeps {ctx.config.mailbox_max_items} items and "
                          f"{ctx.config.mailbox_max_bytes} bytes)",
                          hint="retry after that site has collected its mail (it does every "
                          "mailbox_poll_s while it runs); if it is gone for good, revoke it")
    now = ctx.now_ms()
    mail_id = uuid7(now, ctx.random_bytes(10))
    await ctx.store.post_mail(sender.practice_id, to_site, sender.site_id, mail_id, sealed, now)
    return web.json_response({"mail_id": str(mail_id)}, status=201)


async def list_mail(request: web.Request) -> web.Response:
    site = await auth.site(request)
    items = await hub(request).store.list_mail(site.practice_id, site.site_id)
    return web.json_response({"items": [
        MailOut(mail_id=m.mail_id, from_site=m.from_site, sealed=m.sealed,
                created_ms=m.created_ms).model_dump(mode="json") for m in items]})


async def delete_mail(request: web.Request) -> web.Response:
    site = await auth.site(request)
    try:
        mail_id = UUID(request.match_info["id"])
    except ValueError:
        raise not_found("mailbox item") from None
    if not await hub(request).store.delete_mail(site.practice_id, site.site_id, mail_id):
        raise not_found("mailbox item")
    return web.Response(status=204)
