"""`/openapi.json` tells the truth: every route is described, nothing else, statuses included."""

from __future__ import annotations

import re

from aiohttp import web

from sync_protocol.canonical import pack_plain
from sync_protocol.push_wire import MAX_PUSH_BATCHES, MEDIA_TYPE_MANY, encode_push_many
from sync_protocol.snapshot_signature import attestation_headers
from tests.cloud_hub.harness import Harness
from tests.cloud_hub.snapshots import attested


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    return {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
            if r.method != "HEAD" and r.resource is not None}


def template(path: str, documented: set[str]) -> str | None:
    """The documented path template that `path` (a concrete URL path) matches."""
    for doc in documented:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", doc) + "$"
        if re.match(pattern, path):
            return doc
    return None


async def test_every_route_is_documented_and_every_documented_route_exists(
        harness: Harness) -> None:
    resp = await harness.client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == app_routes(harness.client.app)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (method, path)
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path, (method, path, param["name"])
            for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(op).replace(
                    "'", '"')):
                assert ref in doc["components"]["schemas"], ref


async def test_answered_statuses_are_documented(harness: Harness) -> None:
    """Real requests — good and bad — answer only statuses the document lists."""
    doc = await (await harness.client.get("/openapi.json")).json()
    paths = set(doc["paths"])
    clinic, (a, b) = await harness.practice_with_sites()
    sealed = clinic.seal(a.site, 2)
    many = {**a.headers, "Content-Type": MEDIA_TYPE_MANY}
    calls = [
        ("post", "/v1/batches", {"data": sealed, "headers": a.headers}),
        ("post", "/v1/batches", {"data": sealed, "headers": a.headers}),
        ("post", "/v1/batches", {"data": b"junk", "headers": a.headers}),
        ("post", "/v1/batches", {"data": encode_push_many([sealed, clinic.seal(a.site, 1)]),
                                 "headers": many}),
        ("post", "/v1/batches", {"data": b"junk", "headers": many}),
        ("post", "/v1/batches", {"data": pack_plain([b"x"] * (MAX_PUSH_BATCHES + 1)),
                                 "headers": many}),
        ("post", "/v1/batches", {"data": encode_push_many([clinic.seal(a.site, 1, advance=False)]
                                                           * 2), "headers": many}),
        ("post", "/v1/batches", {"data": clinic.seal(a.site, 1, advance=False),
                                 "headers": {**a.headers, "Content-Encoding": "gzip"}}),
        ("post", "/v1/batches", {"data": sealed}),
        ("get", "/v1/batches", {"headers": a.headers}),
        ("get", "/v1/batches", {"params": {"limit": 0}, "headers": a.headers}),
        ("get", "/v1/sites", {"headers": a.headers}),
        ("post", f"/v1/sites/{b.site.site_id}/approve", {"headers": a.headers}),
        ("post", f"/v1/sites/{clinic.practice_id}/approve", {"headers": a.headers}),
        ("get", "/v1/me", {"headers": b.headers}),
        ("get", "/v1/mailbox", {"headers": a.headers}),
        ("post", f"/v1/mailbox/{b.site.site_id}", {"data": b"k", "headers": a.headers}),
        ("delete", f"/v1/mailbox/{b.site.site_id}", {"headers": a.headers}),
        ("get", "/v1/snapshots/latest", {"headers": a.headers}),
        ("put", "/v1/snapshots", {"params": {"hub_seq": 1, "key_epoch": 1}, "data": b"s",
                                  "headers": a.headers}),
        ("put", "/v1/snapshots", {"data": b"s", "headers": {**a.headers, **attestation_headers(
            attested(clinic.practice_id, a.site, 1, b"s"))}}),
        ("put", "/v1/snapshots", {"data": b"s", "headers": {**a.headers, **attestation_headers(
            attested(clinic.practice_id, a.site, 0, b"s"))}}),
        ("get", "/v1/snapshots", {"headers": b.headers}),
        ("get", f"/v1/snapshots/{clinic.practice_id}", {"headers": b.headers}),
        ("get", "/v1/stats", {"headers": a.headers}),
        ("get", "/v1/stats", {"headers": harness.op_headers}),
        ("get", "/v1/practices", {"headers": harness.op_headers}),
        ("get", "/v1/practices", {"headers": a.headers}),
        ("post", "/v1/practices", {"json": {"name": ""}, "headers": harness.op_headers}),
        ("get", f"/v1/practices/{clinic.practice_id}/sites", {"headers": harness.op_headers}),
        ("post", f"/v1/practices/{clinic.practice_id}/enrollment-tokens",
         {"json": {}, "headers": a.headers}),
        ("post", "/v1/enroll", {"json": {"token": "cse_x"}}),
        ("get", "/v1/hub-key", {}),
        ("get", "/healthz", {}),
        ("post", f"/v1/practices/{clinic.practice_id}/sites/{b.site.site_id}/revoke",
         {"headers": harness.op_headers}),
        ("post", f"/v1/practices/{clinic.practice_id}/sites/{b.site.site_id}/approve",
         {"headers": harness.op_headers}),
        ("post", f"/v1/practices/{clinic.practice_id}/sites/{b.site.site_id}/approve",
         {"headers": a.headers}),
        ("post", f"/v1/sites/{b.site.site_id}/revoke", {"headers": a.headers}),
        ("post", "/v1/heartbeat", {"json": {"cursor": 1}, "headers": a.headers}),
        ("post", "/v1/heartbeat", {"json": {
            "cursor": 1, "outbox_depth": 0, "software_version": "0.5", "protocol_version": "1.0",
            "state_digest": "0" * 64}, "headers": a.headers}),
        ("post", f"/v1/practices/{clinic.practice_id}/sites", {"json": {
            "site_id": str(b.site.site_id), "name": "b", "verify_key": "A" * 43 + "=",
            "box_key": "A" * 43 + "="}, "headers": harness.op_headers}),
        ("post", f"/v1/practices/{clinic.practice_id}/sites", {"json": {},
                                                               "headers": harness.op_headers}),
        ("post", "/v1/practices", {"json": {"name": "x", "practice_id": str(clinic.practice_id)},
                                   "headers": harness.op_headers}),
        ("get", "/v1/dashboard", {"headers": harness.op_headers}),
        ("get", "/v1/dashboard", {"params": {"practice_id": str(b.site.site_id)},
                                  "headers": harness.op_headers}),
        ("get", "/v1/dashboard", {"headers": a.headers}),
        ("get", "/dashboard", {}),
        ("get", "/metrics", {"headers": harness.op_headers}),
        ("get", "/metrics", {}),
        ("get", "/v1/batches", {"params": {"after": 0}, "headers": a.headers}),
        ("get", "/v1/snapshots/latest", {"headers": {**a.headers, "Range": "bytes=0-0"}}),
        ("get", "/v1/snapshots/latest", {"headers": {**a.headers, "Range": "bytes=99-"}}),
    ]
    for method, path, kw in calls:
        resp = await harness.client.request(method, path, **kw)  # type: ignore[arg-type]
        route = template(path, paths)
        assert route is not None, path
        documented = doc["paths"][route][method]["responses"]
        assert str(resp.status) in documented, (method, path, resp.status, await resp.text())
