"""Connection hygiene: what happens on a connection before a request exists.

aiohttp (3.14) has no deadline for a request's head: a client that sends one byte a second holds its
connection, and a file descriptor, for as long as it likes, and such connections do not count toward
``server.max_concurrent_requests`` (no request exists yet). Its parser errors are logged with the bytes that
failed (an ``Authorization`` line included) and answered in ``text/plain``.

aiohttp offers no hook before a request exists, so the per-connection protocol is a small subclass of its
``RequestHandler``, built by ``Server`` (aiohttp's, whose ``__call__`` names the handler class) with exactly the
arguments aiohttp would have used; ``Runner`` is the AppRunner that makes that ``Server``. ``Connection``:

- **head deadline**: armed when a connection opens, and again when the first bytes of a later request arrive on
  an idle keep-alive connection; disarmed as soon as the parser has a whole head. If it fires first
  (``server.header_timeout``), the client gets a 408 in the API's error shape and the connection is closed,
  the way aiohttp itself closes an idle keep-alive connection (``force_close``);
- **cap**: the connections whose deadline is armed are counted; one beyond ``server.max_pending_heads`` is
  closed at once;
- **parser errors**: answered in the API's error shape (``handle_error``), counted in
  ``llmproxy_bad_requests_total`` and logged as one short line (peer, error class, the reason without the
  bytes, redacted), at most ``PARSE_LOG_PER_SECOND`` lines a second.

Of aiohttp's internals it reads two, and writes none: ``_request_count`` (messages parsed on this connection:
a change means a head is complete) and ``_waiter`` (set while ``start()`` waits for the next message: the
connection is idle, so bytes now begin a new head). ``tests/security/test_connection_hygiene.py`` pins the
behaviour against the installed aiohttp. Options are read per connection, so a reload applies to new ones.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from llmproxy.errors import InvalidRequest, ProxyError
from llmproxy.redact import redact_text
from llmproxy.server.request.errors import error_response
from llmproxy.server.request.middleware import RateLimit, new_request_id
from llmproxy.server.state import STATE, State

log = logging.getLogger("llmproxy")
#: parser-error lines written to the daemon's log per second (burst: twice as many); the rest are only counted
PARSE_LOG_PER_SECOND = 5
#: longest parser reason kept (the parser's own text can quote up to 100 bytes of the request after it)
REASON_MAX = 120


class Hygiene:
    """What the connections of one server share: the state, how many are sending a head, the log budget."""

    def __init__(self, state: State):
        self.state = state
        self.pending = 0
        self.log_budget = RateLimit(PARSE_LOG_PER_SECOND, 2 * PARSE_LOG_PER_SECOND)

    def closed(self, reason: str) -> None:
        self.state.metrics.closed_connections.labels(reason).inc()

    def bad_request(self, peer: str | None, exc: HttpProcessingError) -> ProxyError:
        """Count and (within the budget) log a request the parser refused; the error to answer it with."""
        name = type(exc).__name__
        self.state.metrics.bad_requests.labels(name).inc()
        why = reason(exc)
        if self.log_budget.take():
            log.warning("malformed HTTP request from %s: %s (%s)", peer or "?", why, name)
        if isinstance(exc, LineTooLong):
            return InvalidRequest(f"malformed HTTP request: a request line or header is longer than this server "
                                  f"reads ({why})", status=431)
        return InvalidRequest(f"malformed HTTP request: {why}")


def reason(exc: HttpProcessingError) -> str:
    """The parser's reason without the request bytes it quotes, redacted: ``Invalid header value char``.
    aiohttp quotes what it read after a newline, a colon or in quotes (``{line!r}``, ``b'…'``,
    ``bytearray(…)``): everything from the first newline, quote or ``bytearray(`` on is dropped."""
    text = _QUOTED.split(str(exc.message or "")[:REASON_MAX], maxsplit=1)[0]
    text = _TAIL.sub("", text) or type(exc).__name__
    return redact_text(text)


_QUOTED = re.compile(r"[\n'\"]|bytearray\(")
_TAIL = re.compile(r"(?:[:\s]+b)?[\s:]*$")  # what is left of ``: b'…'`` once the quote is cut


class Connection(RequestHandler):
    """aiohttp's request handler with a deadline on request heads and parser errors in the API's shape."""

    __slots__ = ("_hygiene", "_head_timer", "_parsed")

    def __init__(self, manager: web.Server, *, hygiene: Hygiene, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._hygiene = hygiene
        self._head_timer: asyncio.TimerHandle | None = None
        self._parsed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._request_count != self._parsed:  # the parser has a whole head (or refused one)
            self._parsed = self._request_count
            self._disarm()
        elif data and self._head_timer is None and self._waiter is not None and self.transport is not None:
            self._arm()  # an idle keep-alive connection begins its next request

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        srv = self._hygiene.state.runtime.cfg.server
        if self._hygiene.pending >= srv.max_pending_heads:
            self._hygiene.closed("pending_heads")
            self.force_close()
            return
        self._hygiene.pending += 1
        self._head_timer = self._loop.call_later(srv.header_timeout, self._head_deadline)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
            self._hygiene.pending -= 1

    def _head_deadline(self) -> None:
        self._head_timer = None
        self._hygiene.pending -= 1
        if self.transport is None:
            return
        self._hygiene.closed("header_timeout")
        timeout = self._hygiene.state.runtime.cfg.server.header_timeout
        err = ProxyError(f"the request head did not arrive within {timeout:g} seconds (server.header_timeout)",
                         status=408)
        err.error_type = "timeout_error"
        body = orjson.dumps(err.body(new_request_id()))
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                             b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        self.force_close()

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request the parser refused: answered in the API's shape, with no bytes of it logged."""
        if status != 400 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent; the parser error cannot be answered")
        resp = error_response(self._hygiene.bad_request(request.remote, exc), new_request_id())
        resp.force_close()
        return resp


class Server(web.Server):
    """aiohttp's low-level server, making ``Connection``s."""

    def __init__(self, *args: Any, hygiene: Hygiene, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hygiene = hygiene

    def __call__(self) -> Connection:
        return Connection(self, loop=self._loop, hygiene=self.hygiene, **self._kwargs)


class Runner(web.AppRunner):
    """The AppRunner whose server makes ``Connection``s (with the arguments aiohttp chose for its own)."""

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()  # the app started and frozen; aiohttp's server for it
        return Server(base.request_handler, request_factory=base.request_factory,
                      handler_cancellation=base.handler_cancellation, loop=asyncio.get_running_loop(),
                      hygiene=Hygiene(self.app[STATE]), **base._kwargs)
