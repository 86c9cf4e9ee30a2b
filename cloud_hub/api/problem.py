"""RFC 9457 problem details for every refusal, with our `code`, `hint` and `retryable`.

Clients branch on `code` (stable), people read `detail` and `hint`.  `message`
repeats `detail` so the body also reads as `sync_protocol.models.ErrorBody`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from aiohttp import web

from cloud_hub.errors import ChainMismatch, HubError
from cloud_hub.log_keys import ERROR_CODE
from sync_protocol.errors import ProtocolError

log = logging.getLogger(__name__)

PROBLEM_TYPE: Final = "application/problem+json"
_TITLES: Final = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
                  405: "Method not allowed", 409: "Conflict", 410: "Gone",
                  413: "Payload too large", 416: "Range not satisfiable",
                  415: "Unsupported media type", 500: "Internal error",
                  503: "Service unavailable"}


#: A next step for wire errors raised without a hint of their own.
_DEFAULT_HINTS: Final = {
    "malformed": "the body is not a sealed chartsync batch of this protocol; check the "
                 "client version and send the sealed bytes unchanged",
    "too_large": "send fewer changes per batch",
    "tampered": "the bytes were altered; resend the batch from the site's outbox",
    "bad_signature": "the batch was altered or signed by another key; check the site's "
                     "enrollment",
    "unsupported_version": "upgrade the older side",
}


def problem(status: int, code: str, detail: str, *, hint: str = "", retryable: bool = False,
            **extra: Any) -> web.Response:
    body = problem_body(status, code, detail, hint=hint, retryable=retryable, **extra)
    return web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM_TYPE)


def problem_body(status: int, code: str, detail: str, *, hint: str = "",
                 retryable: bool = False, **extra: Any) -> dict[str, Any]:
    return {"type": f"urn:chartsync:problem:{code}", "title": _TITLES.get(status, "Error"),
            "status": status, "detail": detail, "message": detail, "code": code, "hint": hint,
            "retryable": retryable, **extra}


def error_body(exc: HubError | ProtocolError) -> dict[str, Any]:
    """The problem+json body of a refusal (also embedded in a multi-batch push answer)."""
    extra: dict[str, Any] = exc.details() if isinstance(exc, HubError) else {}
    if isinstance(exc, ChainMismatch):
        extra = {"expected_seq": exc.expected_seq,
                 "expected_prev_hash": exc.expected_prev_hash.hex()}
    hint = exc.hint or _DEFAULT_HINTS.get(exc.code, "see the detail; the request was refused")
    return problem_body(exc.http_status, exc.code, exc.message, hint=hint,
                        retryable=exc.retryable, **extra)


def from_error(exc: HubError | ProtocolError) -> web.Response:
    body = error_body(exc)
    return web.Response(status=body["status"], body=orjson.dumps(body),
                        content_type=PROBLEM_TYPE)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error as problem+json; never echo the request body."""
    try:
        return await handler(request)
    except (HubError, ProtocolError) as exc:
        level = logging.WARNING if exc.http_status >= 500 else logging.INFO
        log.log(level, "refused %s %s", request.method, request.path,
                extra={ERROR_CODE: exc.code})
        return from_error(exc)
    except web.HTTPRequestEntityTooLarge:
        return problem(413, "too_large", "request body exceeds the hub's limit",
                       hint="send a smaller body; batches: fewer changes per batch")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        answer = problem(exc.status, code, exc.reason or "request refused",
                         hint="see /openapi.json for the routes of this hub")
        if "Allow" in exc.headers:  # a 405 says which methods the route takes (RFC 9110)
            answer.headers["Allow"] = exc.headers["Allow"]
        return answer
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return problem(500, "internal", "the hub failed to handle this request",
                       hint="retry later; if it repeats, report it with the time of the request",
                       retryable=True)
