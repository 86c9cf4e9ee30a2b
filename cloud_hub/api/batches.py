"""Push and pull of sealed batches.

Push: body is the raw sealed batch (`application/octet-stream`, uncompressed
transport).  Checks in `cloud_hub.ingest`, then the store assigns the next hub
sequence in the same transaction; the answer (after commit) is a `PushAck`
carrying the hub's signed receipt.  Pull: msgpack `PullResponse`
(`cloud_hub.pull_wire`), long-polling up to `wait_s`.
"""

from __future__ import annotations

import logging

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.body import query_float, query_int, read_body
from cloud_hub.api.context import hub
from cloud_hub.api.messages import push_ack_json
from cloud_hub.ingest import admit_batch
from cloud_hub.log_keys import BATCH_ID, HUB_SEQ, PRACTICE_ID, SITE_ID
from cloud_hub.pull_wire import MEDIA_TYPE, encode_pull_response
from sync_protocol.models import PushAck
from sync_protocol.receipt import sign_receipt

log = logging.getLogger(__name__)

MAX_PULL_LIMIT = 1000
MAX_WAIT_S = 60.0


async def push(request: web.Request) -> web.Response:
    site = await auth.site(request)
    ctx = hub(request)
    raw = await read_body(request, ctx.config.max_batch_bytes, what="sealed batch")
    now = ctx.now_ms()
    batch = admit_batch(raw, site, ctx.push_policy, now)
    appended = await ctx.store.append_batch(batch, now)
    if not appended.duplicate:
        ctx.notifier.publish(site.practice_id, appended.hub_seq)
    # Re-ack with the same hub_seq: a site that lost our first ack pushes again.
    receipt = sign_receipt(ctx.signing_key, practice_id=site.practice_id, site_id=site.site_id,
                           batch_hash=batch.batch_hash, hub_seq=appended.hub_seq)
    log.debug("batch stored", extra={PRACTICE_ID: str(site.practice_id),
                                     SITE_ID: str(site.site_id), BATCH_ID: str(batch.batch_id),
                                     HUB_SEQ: appended.hub_seq})
    ack = PushAck(hub_seq=appended.hub_seq, receipt=receipt, duplicate=appended.duplicate)
    return web.json_response(push_ack_json(ack))


async def pull(request: web.Request) -> web.Response:
    site = await auth.site(request)
    ctx = hub(request)
    after = query_int(request, "after", 0, 0, 1 << 62)
    limit = query_int(request, "limit", 100, 1, MAX_PULL_LIMIT)
    wait_s = query_float(request, "wait_s", 0.0, 0.0, MAX_WAIT_S)
    batches = await ctx.feed.wait_batches(site.practice_id, after, limit, wait_s)
    head = await ctx.store.head(site.practice_id)
    return web.Response(body=encode_pull_response(batches, head), content_type=MEDIA_TYPE)
