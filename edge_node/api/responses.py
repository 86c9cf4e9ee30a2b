"""FHIR HTTP responses: content type, ETag, Last-Modified, Location, errors."""

from __future__ import annotations

from email.utils import formatdate
from functools import lru_cache
from typing import Any, Final

import orjson
from aiohttp import web

from edge_node.errors import EdgeError
from edge_node.fhir.outcome import error_body

FHIR_JSON: Final = "application/fhir+json"


def base_url(request: web.Request) -> str:
    """The FHIR base as the client reached us (for Location and links)."""
    return f"{request.scheme}://{request.host}/fhir"


def etag(version: str) -> str:
    return f'W/"{version}"'


@lru_cache(maxsize=256)
def _http_date_of_second(second: int) -> str:
    return formatdate(second, usegmt=True)


def http_date(ms: int) -> str:
    """IMF-fixdate of `ms` (whole seconds, as HTTP dates are); one formatting per second
    seen: every write of a busy second has the same Last-Modified."""
    return _http_date_of_second(ms // 1000)


def fhir_bytes(body: bytes, status: int = 200, headers: dict[str, str] | None = None
               ) -> web.Response:
    return web.Response(body=body, status=status, headers=headers,
                        content_type=FHIR_JSON, charset="utf-8")


def fhir_json(value: Any, status: int = 200, headers: dict[str, str] | None = None
              ) -> web.Response:
    return fhir_bytes(orjson.dumps(value), status, headers)


def error_response(err: EdgeError) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="chartsync-edge"'} \
        if err.http_status == 401 else None
    return fhir_bytes(error_body(err), err.http_status, headers)


def version_headers(request: web.Request, rtype: str, rid: str, version: str,
                    last_updated_ms: int, *, location: bool = False) -> dict[str, str]:
    headers = {"ETag": etag(version), "Last-Modified": http_date(last_updated_ms)}
    if location:
        headers["Location"] = f"{base_url(request)}/{rtype}/{rid}/_history/{version}"
    return headers
