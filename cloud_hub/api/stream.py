"""`GET /v1/stream?after=N`: a WebSocket that sends each new batch of the practice as it lands.

One binary frame per batch (msgpack `PulledBatch` with the store's `log_id`,
see `sync_protocol.pull_wire`), in hub order, starting after `after`.  A cursor
older than the oldest batch kept is refused before the upgrade (410
`log_trimmed`); a stream that falls behind a trim is closed with code 4410.  A
stream whose cursor is past the log's end (the hub was restored from an older
backup under it) is closed with code 4409: the batches that take the lost
numbers would otherwise never be sent to it; the site reconnects, sees the
pull answer's `head` and rewinds.
The sender wakes on the notifier (this process's pushes, and other processes'
via LISTEN/NOTIFY); the site's status is re-read whenever the registry
changes, so a revoked site's stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from cloud_hub.api import auth
from cloud_hub.api.batches import check_not_trimmed
from cloud_hub.api.body import query_int
from cloud_hub.api.context import HubContext, hub
from cloud_hub.errors import LogTrimmed, StoreUnavailable
from cloud_hub.log_keys import PRACTICE_ID, SITE_ID
from cloud_hub.store.base import SiteRecord, SiteStatus
from sync_protocol.pull_wire import encode_pulled

log = logging.getLogger(__name__)

FRAME_BATCHES = 100
WAIT_SLICE_S = 25.0
CLOSE_REVOKED = 4403
CLOSE_TRIMMED = 4410
CLOSE_AHEAD = 4409
#: Bound on waiting for the store to come back before looking again.
OUTAGE_RETRY_S = 1.0


async def stream(request: web.Request) -> web.WebSocketResponse:
    site = await auth.site(request)
    ctx = hub(request)
    after = query_int(request, "after", 0, 0, 1 << 62)
    await check_not_trimmed(ctx, site.practice_id, after)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=1 << 16)
    await ws.prepare(request)
    gauge = ctx.metrics.subscribers.labels("stream")
    gauge.inc()
    try:
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(_send(ws, ctx, site, after))
            await _drain(ws)  # returns when the client closes
            sender.cancel()
    except* ConnectionResetError:
        log.info("stream ended", extra={PRACTICE_ID: str(site.practice_id),
                                        SITE_ID: str(site.site_id)})
    finally:
        gauge.dec()
    if not ws.closed:
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break


async def _send(ws: web.WebSocketResponse, ctx: HubContext, site: SiteRecord,
                cursor: int) -> None:
    practice_id = site.practice_id
    generation = ctx.notifier.registry_generation(practice_id)
    while not ws.closed:
        ticket = ctx.notifier.ticket(practice_id)  # before looking, so no wake-up is missed
        try:
            if ctx.notifier.registry_generation(practice_id) != generation:
                current = await ctx.store.get_site(practice_id, site.site_id)
                generation = ctx.notifier.registry_generation(practice_id)
                if current is None or current.status is not SiteStatus.APPROVED:
                    await ws.close(code=CLOSE_REVOKED, message=b"site no longer approved")
                    return
            batches = await ctx.feed.batches_after(practice_id, cursor, FRAME_BATCHES)
            if batches:
                await check_not_trimmed(ctx, practice_id, cursor, batches[0])
            elif await ctx.store.head(practice_id) < cursor:
                # Info, not warning: a site of an older release reconnects and is closed
                # again after each backoff; the restore itself is the operator's own act.
                log.info("stream cursor %d past the end of the practice's log (store "
                         "restored from an older backup?); closed so the site rewinds", cursor,
                         extra={PRACTICE_ID: str(practice_id), SITE_ID: str(site.site_id)})
                await ws.close(code=CLOSE_AHEAD, message=b"cursor past the log's end; pull "
                               b"to see the head and rewind")
                return
        except LogTrimmed:
            await ws.close(code=CLOSE_TRIMMED, message=b"log trimmed; bootstrap from the "
                           b"latest snapshot")
            return
        except StoreUnavailable:
            # The database is away (e.g. restarting): keep the stream open and look again
            # when the LISTEN connection is back (it wakes everyone), or after a bound.
            log.info("store unavailable; stream waits", extra={
                PRACTICE_ID: str(practice_id), SITE_ID: str(site.site_id)})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(OUTAGE_RETRY_S):
                    await ticket.wait()
            continue
        for batch in batches:
            await ws.send_bytes(encode_pulled(hub_seq=batch.hub_seq, site_id=batch.site_id,
                                             sealed=batch.sealed, log_id=ctx.store.log_id))
            cursor = batch.hub_seq
        if not batches:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WAIT_SLICE_S):
                    await ticket.wait()
