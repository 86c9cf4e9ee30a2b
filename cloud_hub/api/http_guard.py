"""Malformed HTTP answered with a fixed problem body, logged without a byte of the request.

aiohttp's request handler (`aiohttp.web_protocol.RequestHandler.handle_error`) logs a
parser error with its exception, whose message quotes up to 100 bytes of the offending
line — a fragment of an `Authorization` header, a query — and sends that message back
as the body.  `GuardedAppRunner` serves through a handler whose `handle_error` logs only
the error's class and the status, and answers a fixed problem+json body:

    request line or a header field too long, too many headers   431 headers_too_large
    anything else the parser refuses                             400 bad_request
    an exception no middleware turned into an answer             500 internal (logged with
                                                                 the traceback: a bug)

Errors aiohttp logs on its own while it reads or drops the rest of a connection are
logged by class only.  The edge has its own twin (`edge_node/api/http_guard.py`, FHIR
OperationOutcome bodies).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from cloud_hub.api.problem import problem

log = logging.getLogger("cloud_hub.api.http")


def fixed_problem(status: int, exc: BaseException | None) -> web.Response:
    """The fixed answer to a request aiohttp could not parse (nothing of it quoted)."""
    if isinstance(exc, LineTooLong) or (isinstance(exc, BadHttpMessage)
                                        and "Too many headers" in str(exc)):
        return problem(431, "headers_too_large", "the request line or its headers are "
                       "longer than this hub accepts", hint="send fewer or shorter headers")
    if status >= 500:
        return problem(500, "internal", "the hub failed to handle this request",
                       hint="retry later; if it repeats, report it with the time of the "
                       "request", retryable=True)
    return problem(400, "bad_request", "the request is not well-formed HTTP",
                   hint="check the client: its request line, headers or body framing")


class GuardedRequestHandler(RequestHandler):
    """aiohttp's handler, but errors it answers itself leak nothing (module doc)."""

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        response = fixed_problem(status, exc)
        if response.status >= 500:
            log.error("unhandled %s", type(exc).__name__, exc_info=exc)
        else:
            log.info("refused malformed request: %s, answered %d", type(exc).__name__,
                     response.status)
        if request.writer.output_size > 0:
            raise ConnectionError("the response was under way; closing the connection")
        response.force_close()
        return response

    def log_exception(self, *args: object, **kw: object) -> None:
        """aiohttp's own "Unhandled exception" of a connection: the class only."""
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
