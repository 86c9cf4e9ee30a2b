"""Push and pull of sealed batches.

Push: body is the raw sealed batch (`application/octet-stream`, uncompressed
transport), or several in one request (`sync_protocol.push_wire`, stored one by one
in order, stopping at the first refusal).  Checks in `cloud_hub.ingest`, then the
store assigns the next hub sequence in the same transaction; the answer (after
commit) is a `PushAck`
carrying the hub's signed receipt.  A site may also relay a batch of another
registered site of its practice (docs/design.md, "Rebuilding a lost hub"); the receipt then
names the origin site.  Every refused push is counted per site and code (the
dashboard's error counts).  Tests inject faults at two points of a push
(`api.context.PushFaults`: before the body is read, and the receipt's key).

Pull: msgpack `PullResponse` (`sync_protocol.pull_wire`) with the store's
`log_id`, long-polling up to `wait_s`.  A cursor older than the oldest batch
kept (retention) answers 410 `log_trimmed`; one past the head (a hub restored
from an older backup) is answered at once, without waiting: the site sees
`head` < its cursor and rewinds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.body import query_float, query_int, read_body
from cloud_hub.api.context import HubContext, hub
from cloud_hub.api.problem import error_body
from cloud_hub.errors import HubError, LogTrimmed, StoreUnavailable
from cloud_hub.ingest import admit_batch, read_push
from cloud_hub.log_keys import BATCH_ID, ERROR_CODE, HUB_SEQ, PRACTICE_ID, SITE_ID
from cloud_hub.store.base import SiteRecord, StoredBatch
from sync_protocol.errors import ProtocolError
from sync_protocol.ids import PracticeId, SiteId
from sync_protocol.models import PushAck
from sync_protocol.pull_wire import MEDIA_TYPE, encode_pull_response
from sync_protocol.push_wire import MEDIA_TYPE_MANY, decode_push_many
from sync_protocol.receipt import sign_receipt

log = logging.getLogger(__name__)

MAX_PULL_LIMIT = 1000
MAX_WAIT_S = 60.0


async def push(request: web.Request) -> web.Response:
    site = await auth.site(request)
    ctx = hub(request)
    started = asyncio.get_running_loop().time()
    try:
        if ctx.faults.before_push is not None:
            await ctx.faults.before_push(request)
        response = await _push(request, ctx, site)
    except (HubError, ProtocolError) as exc:
        if not isinstance(exc, StoreUnavailable):
            await _count_refusal(ctx, site, exc.code)
        raise
    finally:
        ctx.metrics.push_seconds.observe(asyncio.get_running_loop().time() - started)
    return response


async def _push(request: web.Request, ctx: HubContext, site: SiteRecord) -> web.Response:
    if request.content_type == MEDIA_TYPE_MANY:
        return await _push_many(request, ctx, site)
    raw = await read_body(request, ctx.config.max_batch_bytes, what="sealed batch")
    ack = await _store(ctx, site, raw)
    return web.json_response(ack.to_json())


async def _push_many(request: web.Request, ctx: HubContext, site: SiteRecord
                     ) -> web.Response:
    """Several batches, stored in order as single pushes; stops at the first refusal
    (`sync_protocol.push_wire`).  A failure of the store before anything was stored
    answers 503 like a single push; after that, the acks so far are returned.

    The whole body is held to `max_batch_bytes`, the single push's limit: the hub's
    memory per request is what it is for a single push."""
    raw = await read_body(request, ctx.config.max_batch_bytes,
                          what="batches pushed together")
    batches = decode_push_many(raw, max_batch_bytes=ctx.config.max_batch_bytes)
    acks: list[dict[str, Any]] = []
    refused: dict[str, Any] | None = None
    for sealed in batches:
        try:
            acks.append((await _store(ctx, site, sealed)).to_json())
        except (HubError, ProtocolError) as exc:
            if not acks:
                raise  # nothing stored: answered (and counted) as a single push's refusal
            if not isinstance(exc, StoreUnavailable):
                await _count_refusal(ctx, site, exc.code)
            refused = error_body(exc)
            break
    return web.json_response({"acks": acks, "refused": refused})


async def _store(ctx: HubContext, site: SiteRecord, raw: bytes) -> PushAck:
    """Check and store one sealed batch (idempotent); its ack with a signed receipt."""
    now = ctx.now_ms()
    sealed = read_push(raw, site, ctx.push_policy)
    origin_id = SiteId(sealed.header.site_id)
    origin = site if origin_id == site.site_id else await ctx.store.get_site(
        site.practice_id, origin_id)
    batch = admit_batch(sealed, site, origin, ctx.push_policy, now)
    appended = await ctx.store.append_batch(batch, now)
    if appended.duplicate:
        ctx.metrics.pushes.labels("duplicate").inc()
    else:
        ctx.notifier.publish(site.practice_id, appended.hub_seq)
        ctx.metrics.pushes.labels("stored").inc()
        ctx.metrics.batches.inc()
        ctx.metrics.changes.inc(len(batch.metas))
    # Re-ack with the same hub_seq: a site that lost our first ack pushes again.  The
    # receipt names the origin: a relayed batch is the origin's, not the relay's.
    key = ctx.signing_key if ctx.faults.receipt_key is None else ctx.faults.receipt_key(
        appended.hub_seq, ctx.signing_key)
    receipt = sign_receipt(key, practice_id=site.practice_id,
                           site_id=batch.site_id, batch_hash=batch.batch_hash,
                           hub_seq=appended.hub_seq)
    log.debug("batch stored", extra={PRACTICE_ID: str(site.practice_id),
                                     SITE_ID: str(batch.site_id), BATCH_ID: str(batch.batch_id),
                                     HUB_SEQ: appended.hub_seq})
    return PushAck(hub_seq=appended.hub_seq, receipt=receipt, duplicate=appended.duplicate)


async def _count_refusal(ctx: HubContext, site: SiteRecord, code: str) -> None:
    ctx.metrics.pushes.labels("refused").inc()
    ctx.metrics.rejections.labels(code).inc()
    try:
        await ctx.store.count_rejection(site.practice_id, site.site_id, code, ctx.now_ms())
    except StoreUnavailable:
        # The refusal itself is the answer; a lost count must not replace it.
        log.warning("could not count a refused push; the store is unavailable",
                    extra={PRACTICE_ID: str(site.practice_id), SITE_ID: str(site.site_id),
                           ERROR_CODE: code})


async def check_not_trimmed(ctx: HubContext, practice_id: PracticeId, after: int,
                            first: StoredBatch | None = None) -> None:
    """Raise `LogTrimmed` if batches after `after` were trimmed (retention).

    With `first` (the first batch read after `after`), only a gap before it means a trim
    happened between the check and the read: hub sequences have no other gaps.
    """
    if first is not None and first.hub_seq == after + 1:
        return
    bounds = await ctx.store.log_bounds(practice_id)
    if after >= bounds.trimmed_through:
        return
    snapshot = await ctx.store.latest_snapshot_info(practice_id)
    raise LogTrimmed(
        f"batches 1..{bounds.trimmed_through} of practice {practice_id} were trimmed; the "
        f"cursor {after} is older than the oldest batch kept ({bounds.oldest_kept})",
        hint="bootstrap from the latest snapshot (GET /v1/snapshots/latest), then pull "
        "after its hub sequence", oldest_kept=bounds.oldest_kept,
        snapshot_hub_seq=snapshot.hub_seq if snapshot else None)


async def pull(request: web.Request) -> web.Response:
    site = await auth.site(request)
    ctx = hub(request)
    after = query_int(request, "after", 0, 0, 1 << 62)
    limit = query_int(request, "limit", 100, 1, MAX_PULL_LIMIT)
    wait_s = query_float(request, "wait_s", 0.0, 0.0, MAX_WAIT_S)
    await check_not_trimmed(ctx, site.practice_id, after)
    if wait_s and after > await ctx.store.head(site.practice_id):
        # A cursor past the log's end: this hub was restored from an older backup.  Answer
        # at once with the head, so the site rewinds now; waiting could return batches
        # that took the lost numbers with a head past the cursor, hiding the restore.
        wait_s = 0.0
    gauge = ctx.metrics.subscribers.labels("long_poll")
    gauge.inc()
    try:
        batches = await ctx.feed.wait_batches(site.practice_id, after, limit, wait_s)
    finally:
        gauge.dec()
    if batches:
        await check_not_trimmed(ctx, site.practice_id, after, batches[0])
    head = await ctx.store.head(site.practice_id)
    return web.Response(body=encode_pull_response(batches, head=head, log_id=ctx.store.log_id),
                        content_type=MEDIA_TYPE)
