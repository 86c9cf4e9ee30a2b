"""Signed snapshots: a site uploads one covering hub sequences 1..N; a new site starts there.

`PUT /v1/snapshots` with the sealed snapshot as the body and its attestation as
headers (`sync_protocol.snapshot_signature`: snapshot id, site id, hub_seq,
key epoch, BLAKE2b-256 digest, the making site's Ed25519 signature).  Before
anything is stored the hub checks, in this order: the headers are there
(`malformed`), the credential is the site that signed (`wrong_origin`), the
signature verifies against that site's registered key (`bad_signature`), the
position is not past the practice's head (`bad_request`), the body hashes to
the signed digest as it streams in (`tampered`); the store then refuses, in the
same transaction that would store it, a position behind the site's previous
verified snapshot (`snapshot_behind`).  A refused upload leaves the stored
snapshots as they were.  The hub keeps the latest `snapshots_kept` verified
snapshots per practice and then trims the batch log (`retention_batches`;
never past the latest verified snapshot).

`GET /v1/snapshots` lists the practice's verified snapshots, newest first, each
with `log_after_kept`: whether the hub still holds every batch after it (a site
restored from one without it must re-bootstrap from a newer snapshot).
`GET /v1/snapshots/latest` and `GET /v1/snapshots/{id}` answer the bytes with
the attestation headers (plus `X-Hub-Seq` = `X-Snapshot-Hub-Seq`) and
`Content-Length`; they honour one `Range: bytes=a-b` (206 with
`Content-Range`, 416 outside the snapshot), so a broken download continues
where it stopped — compare `X-Snapshot-Id` to be sure it is the same snapshot.
The body is read from the store in chunks, never whole.

The body of an upload is streamed to a staging file in the hub's temporary
directory (`TMPDIR`; at most `max_snapshot_bytes`), hashed on the way, and
reaches the store only once the digest matched — read from the file in pieces,
in the one transaction that also checks the position and prunes old ones.  The
staging file is deleted whatever happens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Final
from uuid import UUID

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.body import body_chunks
from cloud_hub.api.context import hub
from cloud_hub.errors import BadRequest, NotFound, RangeNotSatisfiable, WrongOrigin, not_found
from cloud_hub.log_keys import HUB_SEQ, PRACTICE_ID, SITE_ID, SNAPSHOT_ID
from cloud_hub.store.base import NewSnapshot, SiteRecord, SnapshotInfo
from sync_protocol.ids import HubSeq, KeyEpoch
from sync_protocol.keys import SitePublicKeys
from sync_protocol.snapshot_signature import (
    SnapshotAttestation,
    SnapshotClaim,
    SnapshotDigest,
    attestation_from_headers,
    attestation_headers,
    check_digest,
    verify_attestation,
)

log = logging.getLogger(__name__)

#: Bytes read from the store per step of a download.
CHUNK_BYTES: Final = 1 << 20
_RANGE: Final = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


def _signer(site: SiteRecord) -> SitePublicKeys:
    return SitePublicKeys(site_id=site.site_id, verify_key=site.verify_key,
                          box_key=site.box_key)


async def put_snapshot(request: web.Request) -> web.Response:
    site = await auth.site(request)
    ctx = hub(request)
    attestation = attestation_from_headers(request.headers, site.practice_id)
    claim = attestation.claim
    if claim.site_id != site.site_id:
        raise WrongOrigin(f"snapshot {claim.snapshot_id} is signed as site {claim.site_id}; "
                          f"the credential is site {site.site_id}",
                          hint="a site uploads only the snapshots it made, with its own "
                          "credential")
    verify_attestation(attestation, _signer(site))
    head = await ctx.store.head(site.practice_id)
    if claim.hub_seq > head:
        raise BadRequest(f"snapshot {claim.snapshot_id} claims hub sequence {claim.hub_seq}, "
                         f"the practice is at {head}",
                         hint="tag a snapshot with the last hub sequence the site applied")
    fd, name = await asyncio.to_thread(tempfile.mkstemp, prefix="chartsync-snapshot-")
    staged = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = await _stage(request, ctx.config.max_snapshot_bytes, out)
        check_digest(attestation, digest.digest(), digest.size)
        await ctx.store.put_snapshot(NewSnapshot(
            site.practice_id, site.site_id, claim.snapshot_id, HubSeq(claim.hub_seq),
            KeyEpoch(claim.key_epoch), claim.digest, attestation.signature, digest.size,
            lambda: staged.open("rb")), ctx.now_ms(),
            keep=ctx.config.snapshots_kept)
    finally:
        await asyncio.to_thread(staged.unlink, True)
    trimmed = 0
    if ctx.config.retention_batches > 0:  # 0 keeps everything: no need to lock the log
        trimmed = await ctx.store.trim(site.practice_id, ctx.config.retention_batches)
    log.info("verified snapshot stored", extra={
        PRACTICE_ID: str(site.practice_id), SITE_ID: str(site.site_id), HUB_SEQ: claim.hub_seq,
        SNAPSHOT_ID: str(claim.snapshot_id), "trimmed_through": trimmed})
    return web.json_response({"hub_seq": claim.hub_seq, "bytes": digest.size,
                              "snapshot_id": str(claim.snapshot_id)}, status=201)


async def _stage(request: web.Request, max_bytes: int, out: BinaryIO) -> SnapshotDigest:
    """Write the body to `out` (the staging file) as it arrives; its digest and size."""
    digest = SnapshotDigest()

    def keep(data: bytes) -> None:  # in a worker thread: hashing and disk off the loop
        digest.update(data)
        out.write(data)

    pending: list[bytes] = []
    pending_bytes = 0
    async for piece in body_chunks(request, max_bytes, what="snapshot"):
        pending.append(piece)
        pending_bytes += len(piece)
        if pending_bytes >= CHUNK_BYTES:
            await asyncio.to_thread(keep, b"".join(pending))
            pending, pending_bytes = [], 0
    await asyncio.to_thread(keep, b"".join(pending))
    return digest


def _attestation(site: SiteRecord, info: SnapshotInfo) -> SnapshotAttestation:
    return SnapshotAttestation(claim=SnapshotClaim(
        practice_id=site.practice_id, site_id=info.site_id, snapshot_id=info.snapshot_id,
        hub_seq=info.hub_seq, key_epoch=info.key_epoch, digest=info.digest),
        signature=info.signature)


async def list_snapshots(request: web.Request) -> web.Response:
    site = await auth.site(request)
    store = hub(request).store
    found = await store.list_snapshots(site.practice_id)
    # Read after the list: a trim in between can only make `log_after_kept` more careful.
    bounds = await store.log_bounds(site.practice_id)
    return web.json_response({"snapshots": [{
        "snapshot_id": str(i.snapshot_id), "site_id": str(i.site_id), "hub_seq": i.hub_seq,
        "key_epoch": i.key_epoch, "size": i.size, "created_ms": i.created_ms,
        "digest": i.digest.hex(), "signature": i.signature.hex(),
        "log_after_kept": i.hub_seq >= bounds.trimmed_through} for i in found]})


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
    info = await hub(request).store.latest_snapshot_info(site.practice_id)
    if info is None:
        raise NotFound("this practice has no verified snapshot yet",
                       hint="pull from hub sequence 0 instead")
    return await _send(request, site, info)


async def snapshot_by_id(request: web.Request) -> web.StreamResponse:
    site = await auth.site(request)
    try:
        snapshot_id = UUID(request.match_info["snapshot_id"])
    except ValueError:
        raise not_found("snapshot") from None
    info = await hub(request).store.snapshot_info(site.practice_id, snapshot_id)
    if info is None:
        raise not_found("snapshot")
    return await _send(request, site, info)


async def _send(request: web.Request, site: SiteRecord,
                info: SnapshotInfo) -> web.StreamResponse:
    ctx = hub(request)
    wanted = parse_range(request.headers.get("Range"), info.size)
    start, end = wanted if wanted is not None else (0, info.size - 1)
    headers = {**attestation_headers(_attestation(site, info)), "X-Hub-Seq": str(info.hub_seq),
               "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    response = web.StreamResponse(status=206 if wanted is not None else 200, headers=headers)
    response.content_length = end - start + 1
    await response.prepare(request)
    offset = start
    try:
        while offset <= end:
            chunk = await ctx.store.snapshot_chunk(site.practice_id, info.snapshot_id, offset,
                                                   min(CHUNK_BYTES, end - offset + 1))
            if not chunk:
                # Deleted mid-download (a newer one replaced it): end short; the client sees
                # a truncated body and asks again, getting the new X-Snapshot-Id.
                log.info("snapshot replaced during a download", extra={
                    PRACTICE_ID: str(site.practice_id)})
                break
            await response.write(chunk)
            offset += len(chunk)
        await response.write_eof()
    except ConnectionResetError:
        # The client stopped reading (it had the headers it wanted, or lost the link and
        # continues later with a Range): nothing went wrong here.
        log.info("snapshot download ended by the client", extra={
            PRACTICE_ID: str(site.practice_id)})
    return response
