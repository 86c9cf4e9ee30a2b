"""Malformed HTTP answered with a fixed body, and logged without a byte of the request.

aiohttp's request handler (`aiohttp.web_protocol.RequestHandler.handle_error`) logs a
parser error with its exception, whose message quotes up to 100 bytes of the offending
line — a search URL's patient name, a fragment of an `Authorization` header — and sends
that message back as the body.  `GuardedAppRunner` serves through a handler whose
`handle_error` logs only the error's class and the status, and answers a fixed
OperationOutcome:

    request line or a header field too long, too many headers   431
    a body too large to decompress                               413
    anything else the parser refuses                             400
    an exception no middleware turned into an answer             500 (logged with the
                                                                 traceback: it is a bug)

Errors aiohttp logs on its own while it reads or drops the rest of a connection are
logged by class only.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, DecompressSizeError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from edge_node.errors import BadRequest, BodyTooLarge, EdgeError, HeadersTooLarge
from edge_node.fhir.outcome import error_body

log = logging.getLogger("edge_node.api.http")


def refusal_of(status: int, exc: BaseException | None) -> EdgeError:
    """The fixed refusal for a request aiohttp could not parse (nothing of it quoted)."""
    if isinstance(exc, LineTooLong) or (isinstance(exc, BadHttpMessage)
                                        and "Too many headers" in str(exc)):
        return HeadersTooLarge("the request line or its headers are longer than this edge "
                               "accepts", hint="send a shorter URL (search with POST "
                               "_search) and fewer or shorter headers")
    if isinstance(exc, DecompressSizeError):
        return BodyTooLarge("the decompressed body is too large", hint="send less per request")
    if status >= 500:
        return EdgeError("the edge failed to handle this request",
                         hint="retry; if it repeats, report it with the time of the request")
    return BadRequest("the request is not well-formed HTTP",
                      hint="check the client: its request line, headers or body framing")


class GuardedRequestHandler(RequestHandler):
    """aiohttp's handler, but errors it answers itself leak nothing (module doc)."""

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        err = refusal_of(status, exc)
        if err.http_status >= 500:
            log.error("unhandled %s", type(exc).__name__, exc_info=exc)
        else:
            log.info("refused malformed request: %s, answered %d", type(exc).__name__,
                     err.http_status)
        if request.writer.output_size > 0:
            raise ConnectionError("the response was under way; closing the connection")
        response = web.Response(status=err.http_status, body=error_body(err),
                                content_type="application/fhir+json", charset="utf-8")
        response.force_close()
        return response

    def log_exception(self, *args: object, **kw: object) -> None:
        """aiohttp's own "Unhandled exception" of a connection (e.g. reading the rest of a
        body that failed to decode): the exception's class only, never its message."""
        exc = kw.get("exc_info")
        log.info("connection closed after %s", type(exc).__name__ if exc else "an error")


class GuardedServer(web.Server):
    """`web.Server` whose connections are `GuardedRequestHandler`s."""

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """`web.AppRunner` serving through `GuardedServer`; takes the same arguments."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # starts and freezes the application
        # The runner's own arguments are those aiohttp gives each connection's handler.
        return GuardedServer(server.request_handler, request_factory=server.request_factory,
                             **self._kwargs)
