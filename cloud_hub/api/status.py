"""Health, the hub's public key, and per-practice statistics for operators and sites."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.context import hub
from cloud_hub.api.messages import HubKeyOut
from cloud_hub.errors import BadRequest, not_found
from cloud_hub.keyprint import hub_fingerprint
from sync_protocol.ids import PracticeId

_NIL = PracticeId(UUID(int=0))


async def healthz(request: web.Request) -> web.Response:
    """200 when the store answers, 503 (problem) when it does not."""
    ctx = hub(request)
    await ctx.store.practice_exists(_NIL)  # StoreUnavailable → 503 problem
    return web.json_response({"status": "ok", "schema_version": ctx.store.schema_version})


async def hub_key(request: web.Request) -> web.Response:
    ctx = hub(request)
    verify_key = bytes(ctx.signing_key.verify_key)
    out = HubKeyOut(verify_key=verify_key, fingerprint=hub_fingerprint(verify_key),
                    log_id=ctx.store.log_id)
    return web.json_response(out.model_dump(mode="json"))


async def stats(request: web.Request) -> web.Response:
    """Heads and concurrent-edit counts: a site sees its practice, the operator any one."""
    who = await auth.caller(request)
    if isinstance(who, auth.OperatorCaller):
        raw = request.query.get("practice_id")
        if raw is None:
            raise BadRequest("operators name the practice: ?practice_id=<uuid>",
                             hint="list practices with GET /v1/practices")
        try:
            practice_id = PracticeId(UUID(raw))
        except ValueError:
            raise not_found("practice") from None
        if not await hub(request).store.practice_exists(practice_id):
            raise not_found("practice")
    else:
        practice_id = auth.check_active(who).practice_id
    s = await hub(request).store.practice_stats(practice_id)
    return web.json_response({
        "practice_id": str(practice_id), "head": s.head, "tracked_records": s.tracked_records,
        "sites": [{"site_id": str(x.site_id), "batches": x.batches, "changes": x.changes,
                   "concurrent_edits": x.concurrent_edits, "next_seq": x.next_seq}
                  for x in s.sites]})
