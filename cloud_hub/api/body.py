"""Request bodies: size checked before reading, never decompressed, read within a time
bound, parsed into models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from cloud_hub.api.context import hub
from cloud_hub.errors import BadRequest, BodyTimeout, UnsupportedMediaType
from sync_protocol.errors import TooLarge

M = TypeVar("M", bound=BaseModel)
N = TypeVar("N", int, float)
_CHUNK = 1 << 16
#: Every started MiB of a body gets `body_timeout_s` more: a large snapshot on a slow
#: link may take long, a trickle of a few bytes a second may not.
TIMEOUT_STEP_BYTES: Final = 1 << 20


async def read_body(request: web.Request, max_bytes: int, *, what: str) -> bytes:
    """The raw body, at most `max_bytes`; raises `TooLarge` before reading when it can, and
    `BodyTimeout` (the connection is then closed) when it does not arrive within
    `body_timeout_s` for each started MiB.

    Compressed request bodies are refused (`UnsupportedMediaType`, 415): the hub never
    expands anything a client sends, so a compression bomb has nothing to inflate.
    """
    return b"".join([chunk async for chunk in body_chunks(request, max_bytes, what=what)])


async def body_chunks(request: web.Request, max_bytes: int, *, what: str,
                      chunk_bytes: int = _CHUNK) -> AsyncIterator[bytes]:
    """The raw body piece by piece, held to `max_bytes` and to the time bound as
    `read_body` (same refusals)."""
    encoding = request.headers.get("Content-Encoding", "identity").lower()
    if encoding != "identity":
        raise UnsupportedMediaType(f"{what}: Content-Encoding {encoding!r} is not accepted",
                         hint="send the body uncompressed (sealed batches are compressed "
                         "inside already)")
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge(f"{what} of {request.content_length} bytes exceeds {max_bytes}",
                       hint="send a smaller body; batches: fewer changes per batch")
    timeout_s = hub(request).config.body_timeout_s
    loop = asyncio.get_running_loop()
    start = loop.time()
    size = 0
    while True:
        deadline = start + timeout_s * (1 + size // TIMEOUT_STEP_BYTES)
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await request.content.read(chunk_bytes)
        except TimeoutError:
            raise BodyTimeout(f"{what}: {size} bytes arrived in {loop.time() - start:.0f} s; "
                              f"the hub waits {timeout_s} s per MiB",
                              hint="send the body at once; on a slow link raise the hub's "
                              "body_timeout_s") from None
        if not chunk:
            return
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"{what} exceeds {max_bytes} bytes",
                           hint="send a smaller body; batches: fewer changes per batch")
        yield chunk


async def read_json(request: web.Request, model: type[M], max_bytes: int) -> M:
    """Parse a JSON body into `model`; raises `TooLarge` or `BadRequest` naming the field."""
    raw = await read_body(request, max_bytes, what=f"{model.__name__} body")
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise BadRequest(f"invalid {model.__name__}: {where}: {err['msg']}",
                         hint="see /openapi.json for the request schema") from None


def _query_number(request: web.Request, name: str, default: N, low: N, high: N,
                  parse: Callable[[str], N], kind: str) -> N:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name}={raw!r} is not {kind}",
                         hint=f"example: {name}={default}") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name}={value} is outside {low}..{high}",
                         hint=f"example: {name}={default}")
    return value


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; raises `BadRequest` otherwise."""
    return _query_number(request, name, default, low, high, int, "an integer")


def query_float(request: web.Request, name: str, default: float, low: float,
                high: float) -> float:
    """A number query parameter within [low, high]; raises `BadRequest` otherwise."""
    return _query_number(request, name, default, low, high, float, "a number")
