"""The OpenAPI 3.1 description of the hub API, served at `/openapi.json`.

Written by hand next to the routes; `tests/cloud_hub/api/test_openapi.py` checks
that every route of the app is described here and nothing else is, and that
the statuses the API really answers are documented.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from cloud_hub.api.messages import (
    CreateEnrollmentToken,
    CreatePractice,
    EnrollmentTokenOut,
    EnrollRequest,
    EnrollResponse,
    FormerSite,
    HeartbeatIn,
    HubKeyOut,
    KitEpochIn,
    KitEpochOut,
    MailOut,
    PracticeOut,
    RosterEntryIn,
    SiteOut,
)
from cloud_hub.dashboard import DashboardOut
from sync_protocol.pull_wire import MEDIA_TYPE
from sync_protocol.push_wire import MAX_PUSH_BATCHES, MEDIA_TYPE_MANY
from sync_protocol.version import PROTOCOL_VERSION, SOFTWARE_VERSION

_PROBLEM: Final = {"$ref": "#/components/schemas/Problem"}
_OCTETS: Final = {"type": "string", "contentMediaType": "application/octet-stream"}
_NO_COMPRESSION: Final = ("Request bodies are never compressed: a `Content-Encoding` other "
                          "than identity is refused with 415, so nothing is expanded by the hub.")


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "problem details (RFC 9457)",
                     "content": {"application/problem+json": {"schema": _PROBLEM}}}
            for s in statuses}


def _op(summary: str, responses: dict[str, Any], *, security: str | None = None,
        body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
        errors: tuple[int, ...] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses, **_errors(*errors)}}
    op["security"] = [{"bearer": []}] if security else []
    if security:
        op["description"] = f"Caller: {security}."
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if params:
        op["parameters"] = params
    return op


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "format": "uuid"}}


def _query(name: str, kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": kind, **extra}}


_AUTH_ERR: Final = (401, 403)
_SITE: Final = "an approved site"
_OPERATOR: Final = "the operator"
_SNAPSHOT_HEADERS: Final = {name: {"schema": {"type": kind}} for name, kind in (
    ("X-Snapshot-Id", "string"), ("X-Snapshot-Hub-Seq", "integer"), ("X-Hub-Seq", "integer"),
    ("X-Key-Epoch", "integer"), ("X-Site-Id", "string"), ("X-Snapshot-Digest", "string"),
    ("X-Snapshot-Signature", "string"), ("Content-Length", "integer"))}
#: The attestation an upload carries (sync_protocol/PROTOCOL.md, "Snapshot attestation").
_ATTESTATION: Final = [{"name": name, "in": "header", "required": True, "description": text,
                        "schema": {"type": "string"}} for name, text in (
    ("X-Snapshot-Id", "the snapshot id of the sealed header (uuid)"),
    ("X-Site-Id", "the making site: the credential's site (uuid)"),
    ("X-Snapshot-Hub-Seq", "last hub sequence covered"),
    ("X-Key-Epoch", "practice key epoch"),
    ("X-Snapshot-Digest", "BLAKE2b-256 of the body, hex"),
    ("X-Snapshot-Signature", "Ed25519 of the making site over the attestation, hex"))]
_SNAPSHOT_LIST: Final = {"type": "object", "properties": {"snapshots": {
    "type": "array", "description": "verified snapshots, newest first", "items": {
        "type": "object", "properties": {
            "snapshot_id": {"type": "string", "format": "uuid"},
            "site_id": {"type": "string", "format": "uuid"}, "hub_seq": {"type": "integer"},
            "key_epoch": {"type": "integer"}, "size": {"type": "integer"},
            "created_ms": {"type": "integer"}, "digest": {"type": "string"},
            "signature": {"type": "string"}, "log_after_kept": {
                "type": "boolean", "description": "every batch after it is still kept"}}}}}}
_RANGE_PARAM: Final = {"name": "Range", "in": "header", "required": False,
                       "description": "bytes=first-last, bytes=first- or bytes=-suffix",
                       "schema": {"type": "string"}}
_SNAPSHOT_BYTES: Final = {
    "200": {"description": "snapshot bytes", "headers": _SNAPSHOT_HEADERS,
            "content": {"application/octet-stream": {"schema": _OCTETS}}},
    "206": {"description": "the requested byte range", "headers": {
        **_SNAPSHOT_HEADERS, "Content-Range": {"schema": {"type": "string"}}},
        "content": {"application/octet-stream": {"schema": _OCTETS}}}}
_SITES_LIST: Final = {"type": "object", "properties": {
    "sites": {"type": "array", "items": _ref(SiteOut)}}}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict each call)."""
    schemas: dict[str, Any] = {m.__name__: m.model_json_schema(mode="serialization")
                               for m in (CreatePractice, PracticeOut, CreateEnrollmentToken,
                                         EnrollmentTokenOut, EnrollResponse, SiteOut, MailOut,
                                         HubKeyOut, RosterEntryIn, KitEpochIn, KitEpochOut)}
    schemas["EnrollRequest"] = EnrollRequest.model_json_schema(mode="validation")
    schemas["FormerSite"] = FormerSite.model_json_schema(mode="validation")
    for model in (HeartbeatIn, DashboardOut):
        schema = model.model_json_schema(mode="validation" if model is HeartbeatIn
                                         else "serialization",
                                         ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["Problem"] = {"type": "object", "required": ["type", "title", "status", "code"],
                          "properties": {
                              "type": {"type": "string"}, "title": {"type": "string"},
                              "status": {"type": "integer"}, "detail": {"type": "string"},
                              "message": {"type": "string"}, "code": {"type": "string"},
                              "hint": {"type": "string"}, "retryable": {"type": "boolean"},
                              "expected_seq": {"type": "integer",
                                               "description": "on chain_broken"},
                              "expected_prev_hash": {"type": "string",
                                                     "description": "on chain_broken, hex"},
                              "oldest_kept": {"type": "integer", "description":
                                              "on log_trimmed: the oldest hub sequence kept"},
                              "snapshot_hub_seq": {"type": ["integer", "null"], "description":
                                                   "on log_trimmed: the latest snapshot's "
                                                   "hub sequence; bootstrap from it"},
                              "size": {"type": "integer", "description":
                                       "on range_not_satisfiable: the snapshot's bytes"}}}
    schemas["PushAck"] = {"type": "object", "properties": {
        "hub_seq": {"type": "integer"}, "duplicate": {"type": "boolean"},
        "receipt": {"type": "object", "description": "signed by the hub key over (practice, "
                    "site, batch hash, hub sequence); see sync_protocol.receipt",
                    "properties": {"practice_id": {"type": "string", "format": "uuid"},
                                   "site_id": {"type": "string", "format": "uuid"},
                                   "batch_hash": {"type": "string", "description": "hex"},
                                   "hub_seq": {"type": "integer"},
                                   "signature": {"type": "string", "description": "hex"}}}}}
    schemas["PushManyAnswer"] = {
        "type": "object", "required": ["acks", "refused"],
        "description": "answer to several batches: the acks of the first len(acks), in "
                       "order; refused is the problem refusing batch number len(acks), "
                       "null exactly when every batch was acked",
        "properties": {"acks": {"type": "array", "items": {
            "$ref": "#/components/schemas/PushAck"}},
            "refused": {"oneOf": [_PROBLEM, {"type": "null"}]}}}
    pid, sid = _path("pid", "practice id"), _path("sid", "site id")
    paths: dict[str, Any] = {
        "/healthz": {"get": _op("Liveness and store reachability",
                                {"200": _json({"type": "object"})}, errors=(503,))},
        "/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"})})},
        "/v1/hub-key": {"get": _op("The hub's Ed25519 public key (receipts verify with it)",
                                   {"200": _json(_ref(HubKeyOut))})},
        "/v1/practices": {
            "post": _op("Create a practice (`practice_id` only when rebuilding a lost hub)",
                        {"201": _json(_ref(PracticeOut))},
                        security=_OPERATOR, errors=(400, *_AUTH_ERR, 409, 413, 415),
                        body={"application/json": {"schema": _ref(CreatePractice)}}),
            "get": _op("List practices", {"200": _json({"type": "object", "properties": {
                "practices": {"type": "array", "items": _ref(PracticeOut)}}})},
                security=_OPERATOR, errors=_AUTH_ERR)},
        "/v1/practices/{pid}/sites": {
            "get": _op("The operator's view of a practice's sites", {"200": _json(_SITES_LIST)},
                       security=_OPERATOR, params=[pid], errors=(*_AUTH_ERR, 404)),
            "post": _op(
                "Rebuilding a lost hub: register a gone site of the practice with its old id "
                "and keys, revoked (it never syncs; its key verifies its batches relayed by "
                "the surviving sites). Audited", {"201": _json(_ref(SiteOut))},
                security=_OPERATOR, params=[pid],
                body={"application/json": {"schema": _ref(FormerSite)}},
                errors=(400, *_AUTH_ERR, 404, 409, 413, 415))},
        "/v1/practices/{pid}/enrollment-tokens": {"post": _op(
            "Issue a one-time, expiring enrollment token (shown once)",
            {"201": _json(_ref(EnrollmentTokenOut))},
            security=f"{_OPERATOR}, or {_SITE} of that practice (an invite)", params=[pid],
            body={"application/json": {"schema": _ref(CreateEnrollmentToken)}},
            errors=(400, *_AUTH_ERR, 404, 413, 415))},
        "/v1/practices/{pid}/sites/{sid}/revoke": {"post": _op(
            "Revoke a site (operator; audited)", {"200": _json(_ref(SiteOut))},
            security=_OPERATOR,
            params=[pid, sid], errors=(*_AUTH_ERR, 404))},
        "/v1/practices/{pid}/sites/{sid}/approve": {"post": _op(
            "Approve a pending site (operator; disaster recovery when no approved site of the "
            "practice is left). Audited with the operator credential's ref",
            {"200": _json(_ref(SiteOut))}, security=_OPERATOR, params=[pid, sid],
            errors=(*_AUTH_ERR, 404))},
        "/v1/enroll": {"post": _op(
            "Register a site with an enrollment token and its public keys; the practice's "
            "first site is approved by the token, later ones are pending until an approved "
            "site approves them. `site_id` only for a site re-enrolling on a rebuilt hub "
            "under its old id", {"201": _json(_ref(EnrollResponse))},
            body={"application/json": {"schema": _ref(EnrollRequest)}},
            errors=(400, 401, 409, 413, 415))},
        "/v1/me": {"get": _op("The calling site's own registry entry (pending sites too)",
                              {"200": _json(_ref(SiteOut))}, security="any site",
                              errors=_AUTH_ERR)},
        "/v1/sites": {"get": _op("The practice's site registry (build a SiteDirectory)",
                                 {"200": _json(_SITES_LIST)}, security=_SITE,
                                 errors=_AUTH_ERR)},
        "/v1/sites/{sid}/approve": {"post": _op(
            "Approve a pending site after comparing its fingerprint",
            {"200": _json(_ref(SiteOut))}, security=_SITE, params=[sid],
            errors=(*_AUTH_ERR, 404))},
        "/v1/sites/{sid}/revoke": {"post": _op(
            "Revoke a site; its access ends at its next request", {"200": _json(_ref(SiteOut))},
            security=_SITE, params=[sid], errors=(*_AUTH_ERR, 404))},
        "/v1/roster": {
            "get": _op("The practice roster's signed entries after position `after`",
                       {"200": _json({"type": "object", "properties": {"entries": {
                           "type": "array", "items": {"type": "string",
                                                      "contentEncoding": "base64"}}}})},
                       security="a site of the practice (pending too)",
                       params=[{"name": "after", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": -1}}],
                       errors=(*_AUTH_ERR, 400)),
            "post": _op("Append one member-signed roster entry at the next position",
                        {"201": _json({"type": "object"})},
                        security="an approved site; a pending one only for its own "
                        "approval signed with the recovery kit",
                        body=_json(_ref(RosterEntryIn))["content"],
                        errors=(*_AUTH_ERR, 400, 404, 409, 413))},
        "/v1/kit-epochs": {"get": _op(
            "Practice key epochs sealed to the recovery kit", {"200": _json({
                "type": "object", "properties": {"items": {"type": "array",
                                                           "items": _ref(KitEpochOut)}}})},
            security=_SITE, errors=_AUTH_ERR)},
        "/v1/kit-epochs/{epoch}": {"put": _op(
            "Keep key epoch {epoch} sealed to the roster's current recovery kit",
            {"204": {"description": "kept"}}, security=_SITE,
            params=[_path("epoch", "key epoch")], body=_json(_ref(KitEpochIn))["content"],
            errors=(*_AUTH_ERR, 400, 404, 413))},
        "/v1/mailbox": {"get": _op("Items waiting for the calling site", {"200": _json({
            "type": "object", "properties": {"items": {"type": "array",
                                                       "items": _ref(MailOut)}}})},
            security=_SITE, errors=_AUTH_ERR)},
        "/v1/mailbox/{id}": {
            "post": _op("Leave sealed bytes (e.g. a sealed practice key) for site {id}",
                        {"201": _json({"type": "object"})}, security=_SITE,
                        params=[_path("id", "recipient site id")],
                        body={"application/octet-stream": {"schema": _OCTETS}},
                        errors=(*_AUTH_ERR, 404, 413, 415)),
            "delete": _op("Delete mailbox item {id} of the calling site",
                          {"204": {"description": "deleted"}}, security=_SITE,
                          params=[_path("id", "mailbox item id")], errors=(*_AUTH_ERR, 404))},
        "/v1/batches": {
            "post": _op(
                "Push one sealed batch (application/octet-stream), or up to "
                f"{MAX_PUSH_BATCHES} in chain order ({MEDIA_TYPE_MANY}: a msgpack array of "
                "bin; the whole body within the one-batch limit, max_batch_bytes), stored "
                "one after the other exactly as single pushes and stopping at the first "
                "refusal: the answer is then a PushManyAnswer; a refused first batch is "
                "answered like a single push. "
                "Idempotent: the same bytes again get the same answer. "
                "The batch's origin is the caller, or another registered (approved or later "
                "revoked) site of its practice: a relay, to rebuild a lost hub from the edges' "
                "copies; the origin's key, chain and receipt apply. " + _NO_COMPRESSION,
                {"200": _json({"oneOf": [{"$ref": "#/components/schemas/PushAck"},
                                         {"$ref": "#/components/schemas/PushManyAnswer"}]},
                              "PushAck for one batch, PushManyAnswer for several")},
                security=_SITE, body={"application/octet-stream": {"schema": _OCTETS},
                                      MEDIA_TYPE_MANY: {"schema": _OCTETS}},
                errors=(400, *_AUTH_ERR, 409, 413, 415, 503)),
            "get": _op(
                "Pull batches after a hub sequence, long-polling up to wait_s; an answer "
                "holds at most `limit` batches and 32 MiB of sealed bytes (at least one "
                "batch); continue from the last hub_seq. A cursor older than the oldest "
                "batch kept (retention) answers 410 `log_trimmed` with `oldest_kept` and "
                "`snapshot_hub_seq`: bootstrap from the latest snapshot",
                {"200": {"description": "msgpack PullResponse: {batches: [{hub_seq, site_id "
                         "(16 bytes), sealed}], head, log_id (16 bytes: fixed when the hub's "
                         "store was created; a new value means a rebuilt hub)}",
                         "content": {MEDIA_TYPE: {"schema": _OCTETS}}}},
                security=_SITE, errors=(400, *_AUTH_ERR, 410, 503),
                params=[_query("after", "integer", "hub sequence cursor", minimum=0),
                        _query("limit", "integer", "most batches", minimum=1, maximum=1000),
                        _query("wait_s", "number", "long-poll", minimum=0, maximum=60)])},
        "/v1/stream": {"get": _op(
            "WebSocket: one binary frame per new batch, in hub order: msgpack {hub_seq, "
            "site_id (16 bytes), sealed, log_id (16 bytes, the store's log id)}. A cursor "
            "older than the oldest batch kept is refused with 410 `log_trimmed`; a stream "
            "overtaken by a trim closes with code 4410, a revoked site's with 4403, one "
            "whose cursor is past the log's end (a hub restored from an older backup) "
            "with 4409",
            {"101": {"description": "switching to WebSocket"}}, security=_SITE,
            params=[_query("after", "integer", "hub sequence cursor", minimum=0)],
            errors=(400, *_AUTH_ERR, 410))},
        "/v1/snapshots": {"put": _op(
            "Upload an encrypted snapshot covering hub sequences 1..hub_seq, with the making "
            "site's attestation as headers. Refused, nothing stored: without them "
            "(`malformed`), from another site's credential (`wrong_origin`), with a signature "
            "that does not verify (`bad_signature`), past the head (`bad_request`), with a "
            "body that does not match the digest (`tampered`), behind the site's previous "
            "verified snapshot (409 `snapshot_behind`). The hub keeps the latest "
            "`snapshots_kept` verified snapshots of the practice, then trims the batch log to "
            "`retention_batches` (never past the latest verified snapshot). " + _NO_COMPRESSION,
            {"201": _json({"type": "object"})}, security=_SITE,
            body={"application/octet-stream": {"schema": _OCTETS}}, params=_ATTESTATION,
            errors=(400, *_AUTH_ERR, 409, 413, 415)),
            "get": _op("The practice's verified snapshots, newest first",
                       {"200": _json(_SNAPSHOT_LIST)}, security=_SITE, errors=_AUTH_ERR)},
        "/v1/snapshots/latest": {"get": _op(
            "The latest verified snapshot; its attestation as headers (X-Snapshot-Id, "
            "X-Site-Id, X-Snapshot-Hub-Seq = X-Hub-Seq, X-Key-Epoch, X-Snapshot-Digest, "
            "X-Snapshot-Signature), Content-Length. One `Range: bytes=a-b` is honoured "
            "(206 with Content-Range); compare X-Snapshot-Id before continuing a download",
            _SNAPSHOT_BYTES, security=_SITE, errors=(*_AUTH_ERR, 404, 416),
            params=[_RANGE_PARAM])},
        "/v1/snapshots/{snapshot_id}": {"get": _op(
            "One verified snapshot of the practice, as /v1/snapshots/latest answers it",
            _SNAPSHOT_BYTES, security=_SITE, errors=(*_AUTH_ERR, 404, 416),
            params=[_path("snapshot_id", "snapshot id"), _RANGE_PARAM])},
        "/v1/stats": {"get": _op(
            "Record heads tracked and concurrent edits per site (from headers only)",
            {"200": _json({"type": "object"})}, security=f"{_SITE}, or {_OPERATOR} "
            "with ?practice_id=", params=[_query("practice_id", "string", "operator only",
                                                 format="uuid")],
            errors=(400, *_AUTH_ERR, 404))},
        "/v1/heartbeat": {"post": _op(
            "Report the calling site's sync state (cursor, outbox, digest, held batches, "
            "dead letters, gaps, versions, clock offset); the hub keeps the latest per site "
            "for the dashboard and metrics. Every field is bounded",
            {"204": {"description": "kept"}}, security=_SITE,
            body={"application/json": {"schema": _ref(HeartbeatIn)}},
            errors=(400, *_AUTH_ERR, 413, 415))},
        "/v1/dashboard": {"get": _op(
            "Operator dashboard data: per practice and site a state (red/amber/green/grey), "
            "plain reasons, last seen, cursor, lag in batches and seconds, outbox, "
            "concurrent edits, refused pushes by code, versions, flags, and digest "
            "agreement among sites at one cursor with nothing waiting",
            {"200": _json(_ref(DashboardOut))}, security=_OPERATOR,
            params=[_query("practice_id", "string", "only this practice", format="uuid")],
            errors=(*_AUTH_ERR, 404))},
        "/dashboard": {"get": _op(
            "The dashboard page (self-contained HTML; asks for the operator token, kept in "
            "sessionStorage, and reads /v1/dashboard every few seconds)",
            {"200": {"description": "HTML page",
                     "content": {"text/html": {"schema": {"type": "string"}}}}})},
        "/metrics": {"get": _op(
            "Prometheus metrics (text format): pushes and refusals by code, batches and "
            "changes accepted, push latency, subscribers, per-practice head and per-site "
            "lag (labels: ids only)",
            {"200": {"description": "Prometheus text exposition",
                     "content": {"text/plain": {"schema": {"type": "string"}}}}},
            security=f"{_OPERATOR}, or the hub's metrics_token", errors=_AUTH_ERR)},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "chartsync hub", "version": SOFTWARE_VERSION,
                 "description": "Zero-knowledge ordering, storage and fan-out of sealed "
                 f"change batches (protocol {PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}). "
                 "Errors are RFC 9457 problem details; clients branch on `code`. "
                 + _NO_COMPRESSION},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "operator (cso_…) or site (css_…) credential"}}},
    }
