"""Batch and transaction Bundles: entries in, write operations out, responses back.

`parse_bundle` checks the Bundle, mints ids for POST entries, rewrites
`urn:uuid:` references between entries to the minted `Type/id` (anywhere in
any entry's resource), validates every resource, and returns one `Entry` per
bundle entry: either a `WriteOp` or the error that entry gets.  A transaction
with any failing entry is refused as a whole (the caller raises the first
error); a batch answers per entry.

Served entry methods: POST (create), PUT (update, may create), DELETE.  GET
entries and conditional operations (`If-None-Exist`, search URLs) are refused
with a message saying so.  Transactions apply DELETE, then POST, then PUT
entries (the order FHIR R4 prescribes); responses keep the Bundle's order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from edge_node.errors import (
    BadRequest,
    BodyTooLarge,
    EdgeError,
    IdMismatch,
    InvalidResource,
    RequestError,
)
from edge_node.fhir.validation import check_type, validate
from edge_node.fhir.write_op import WriteOp
from sync_protocol.models import RESOURCE_ID_PATTERN

_ID: Final = re.compile(RESOURCE_ID_PATTERN)
_METHOD_ORDER: Final = {"DELETE": 0, "POST": 1, "PUT": 2}
_ETAG: Final = re.compile(r'^(W/)?"([A-Za-z0-9.\-]{1,64})"$')


@dataclass(frozen=True, slots=True)
class Entry:
    """One bundle entry, ready to write (`op`) or already refused (`error`)."""

    index: int
    method: str
    op: WriteOp | None
    error: EdgeError | None


def parse_if_match(value: str | None) -> str | None:
    """The version in an If-Match value `W/"3"`; raises `BadRequest` if malformed."""
    if value is None:
        return None
    m = _ETAG.match(value.strip())
    if m is None:
        raise BadRequest(f"If-Match {value[:40]!r} is not a version ETag",
                         hint='send If-Match: W/"<versionId>" from the last read')
    return m.group(2)


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "reference" and isinstance(v, str) and v in ids:
                out[k] = ids[v]
            else:
                out[k] = _rewrite(v, ids)
        return out
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


def _target(entry: dict[str, Any], index: int) -> tuple[str, str, str | None]:
    request = entry.get("request")
    if not isinstance(request, dict):
        raise BadRequest(f"entry {index} has no request", hint="every entry needs "
                         'request: {"method": "POST", "url": "Patient"}')
    method, url = request.get("method"), request.get("url")
    if method not in _METHOD_ORDER or not isinstance(url, str):
        raise BadRequest(f"entry {index}: method {str(method)[:10]!r} is not served in "
                         "bundles", hint="use POST, PUT or DELETE entries; read with GET "
                         "/fhir/<type>/<id>")
    if "?" in url or request.get("ifNoneExist") or request.get("ifNoneMatch"):
        raise BadRequest(f"entry {index}: conditional operations are not supported",
                         hint="send plain Type or Type/id urls")
    parts = url.strip("/").split("/")
    if len(parts) >= 2 and parts[-2] != "_history":
        parts = parts[-2:]
    elif len(parts) >= 1:
        parts = parts[-1:]
    check_type(parts[0])
    if method == "POST":
        if len(parts) != 1:
            raise BadRequest(f"entry {index}: POST url must be the type only",
                             hint="use PUT Type/id to write a known id")
        return method, parts[0], None
    if len(parts) != 2 or not _ID.match(parts[1]):
        raise BadRequest(f"entry {index}: {method} url must be Type/id",
                         hint="example: Patient/0190c1a2-7b3e-7000-8000-000000000001")
    return method, parts[0], parts[1]


def parse_bundle(bundle: Any, *, max_entries: int, mint_id: Callable[[], str]
                 ) -> tuple[str, list[Entry]]:
    """The Bundle's type ("batch" or "transaction") and its entries.

    Raises `RequestError` for a body that is not a batch/transaction Bundle
    or has too many entries; per-entry problems are in `Entry.error`.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource("POST /fhir takes a Bundle",
                              hint='send {"resourceType": "Bundle", "type": "transaction", ...}')
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise InvalidResource(f"Bundle type {str(kind)[:20]!r} cannot be posted here",
                              hint="use type batch or transaction")
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise InvalidResource("Bundle.entry must be a list", hint="see FHIR R4 Bundle")
    if len(raw_entries) > max_entries:
        raise BodyTooLarge(f"the Bundle has {len(raw_entries)} entries; this edge takes up "
                           f"to {max_entries}", hint="split it into several Bundles")
    targets: list[tuple[str, str, str | None] | EdgeError] = []
    ids: dict[str, str] = {}
    for i, raw in enumerate(raw_entries):
        try:
            if not isinstance(raw, dict):
                raise BadRequest(f"entry {i} is not an object", hint="see FHIR R4 Bundle")
            method, rtype, rid = _target(raw, i)
            if method == "POST":
                rid = mint_id()
                full = raw.get("fullUrl")
                if isinstance(full, str) and full.startswith("urn:"):
                    ids[full] = f"{rtype}/{rid}"
            targets.append((method, rtype, rid))
        except RequestError as exc:
            targets.append(exc)
    entries: list[Entry] = []
    for i, (raw, target) in enumerate(zip(raw_entries, targets, strict=True)):
        if isinstance(target, EdgeError):
            entries.append(Entry(i, "", None, target))
            continue
        method, rtype, rid = target
        assert rid is not None
        try:
            entries.append(Entry(i, method, _op(raw, i, method, rtype, rid, ids), None))
        except RequestError as exc:
            entries.append(Entry(i, method, None, exc))
    return kind, entries


def _op(raw: dict[str, Any], i: int, method: str, rtype: str, rid: str,
        ids: dict[str, str]) -> WriteOp:
    if_match = parse_if_match(raw["request"].get("ifMatch"))
    if method == "DELETE":
        return WriteOp("delete", rtype, rid, None, if_match)
    resource = raw.get("resource")
    if not isinstance(resource, dict):
        raise InvalidResource(f"entry {i} ({method} {rtype}) has no resource",
                              hint="put the resource in entry.resource")
    if ids:
        resource = _rewrite(resource, ids)
    if method == "PUT":
        if resource.get("id") != rid:
            raise IdMismatch(f"entry {i}: resource id differs from request url {rtype}/{rid}",
                             hint="make resource.id equal the id in request.url")
    else:
        resource = {**resource, "id": rid}
    try:
        validate(resource, rtype)
    except InvalidResource as exc:
        raise InvalidResource(f"entry {i}: {exc.message}", hint=exc.hint) from exc
    return WriteOp("create" if method == "POST" else "update", rtype, rid, resource, if_match)


def apply_order(entries: list[Entry]) -> list[Entry]:
    """Entries in the order a transaction applies them: DELETE, POST, PUT (stable)."""
    return sorted(entries, key=lambda e: _METHOD_ORDER.get(e.method, 3))
