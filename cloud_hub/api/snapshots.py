"""Encrypted snapshots: a site uploads one covering hub sequences 1..N; a new site starts there.

`PUT /v1/snapshots?hub_seq=N&key_epoch=E` with the sealed snapshot as the body.
The hub keeps the latest `snapshots_kept` per practice and then trims the
batch log (`retention_batches`; never past the latest snapshot).

`GET /v1/snapshots/latest` answers the bytes with `X-Snapshot-Id`,
`X-Snapshot-Hub-Seq` (also as `X-Hub-Seq`), `X-Key-Epoch`, `X-Site-Id` and
`Content-Length`; it honours one `Range: bytes=a-b` (206 with `Content-Range`,
416 outside the snapshot), so a broken download continues where it stopped —
compare `X-Snapshot-Id` to be sure it is the same snapshot.  The body is read
from the store in chunks, never whole.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.body import query_int, read_body
from cloud_hub.api.context import hub
from cloud_hub.errors import BadRequest, NotFound, RangeNotSatisfiable
from cloud_hub.log_keys import HUB_SEQ, PRACTICE_ID
from sync_protocol.ids import HubSeq, KeyEpoch, uuid7

log = logging.getLogger(__name__)

#: Bytes read from the store per step of a download.
CHUNK_BYTES: Final = 1 << 20
_RANGE: Final = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


async def put_snapshot(request: web.Request) -> web.Response:
    site = await auth.site(request)
    ctx = hub(request)
    hub_seq = query_int(request, "hub_seq", 0, 1, 1 << 62)
    key_epoch = query_int(request, "key_epoch", 0, 1, (1 << 31) - 1)
    head = await ctx.store.head(site.practice_id)
    if hub_seq > head:
        raise BadRequest(f"snapshot claims hub sequence {hub_seq}, the practice is at {head}",
                         hint="tag a snapshot with the last hub sequence the site applied")
    blob = await read_body(request, ctx.config.max_snapshot_bytes, what="snapshot")
    now = ctx.now_ms()
    snapshot_id = uuid7(now, ctx.random_bytes(10))
    await ctx.store.put_snapshot(site.practice_id, site.site_id, HubSeq(hub_seq),
                                 KeyEpoch(key_epoch), blob, now, snapshot_id=snapshot_id,
                                 keep=ctx.config.snapshots_kept)
    trimmed = 0
    if ctx.config.retention_batches > 0:  # 0 keeps everything: no need to lock the log
        trimmed = await ctx.store.trim(site.practice_id, ctx.config.retention_batches)
    log.info("snapshot stored", extra={PRACTICE_ID: str(site.practice_id), HUB_SEQ: hub_seq,
                                       "trimmed_through": trimmed})
    return web.json_response({"hub_seq": hub_seq, "bytes": len(blob),
                              "snapshot_id": str(snapshot_id)}, status=201)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range asked for, or None for the whole body.

    One range only (a multi-range or malformed header is ignored, as RFC 9110 allows);
    raises `RangeNotSatisfiable` for a range outside the body.
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # a suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"range {header!r} is outside the snapshot's {size} bytes",
                                  hint="ask for bytes=0- to download it whole", size=size)
    return start, end


async def latest_snapshot(request: web.Request) -> web.StreamResponse:
    site = await auth.site(request)
    ctx = hub(request)
    info = await ctx.store.latest_snapshot_info(site.practice_id)
    if info is None:
        raise NotFound("this practice has no snapshot yet",
                       hint="pull from hub sequence 0 instead")
    wanted = parse_range(request.headers.get("Range"), info.size)
    start, end = wanted if wanted is not None else (0, info.size - 1)
    headers = {"X-Snapshot-Id": str(info.snapshot_id), "X-Snapshot-Hub-Seq": str(info.hub_seq),
               "X-Hub-Seq": str(info.hub_seq), "X-Key-Epoch": str(info.key_epoch),
               "X-Site-Id": str(info.site_id), "Accept-Ranges": "bytes",
               "Content-Type": "application/octet-stream"}
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    response = web.StreamResponse(status=206 if wanted is not None else 200, headers=headers)
    response.content_length = end - start + 1
    await response.prepare(request)
    offset = start
    while offset <= end:
        chunk = await ctx.store.snapshot_chunk(site.practice_id, info.snapshot_id, offset,
                                               min(CHUNK_BYTES, end - offset + 1))
        if not chunk:
            # Deleted mid-download (a newer one replaced it): end short; the client sees a
            # truncated body and asks again, getting the new X-Snapshot-Id.
            log.info("snapshot replaced during a download", extra={
                PRACTICE_ID: str(site.practice_id)})
            break
        await response.write(chunk)
        offset += len(chunk)
    await response.write_eof()
    return response
