"""The upstream HTTP boundary shared by every provider kind: transport failures, timeouts, error statuses
and malformed event streams are mapped to the ProxyError family here, once (the httpx idea: one transport,
errors mapped at the edge).

Timeouts, per provider (see docs/operations.md): ``connect_timeout`` for the TCP/TLS connect (waiting for
a pooled connection is not counted: the pool has no per-host cap), ``ttfb_timeout`` from sending the
request to the response headers and its first event (a non-streaming answer: to its headers, with the
time to write it added), ``idle_timeout`` between two reads of a stream or of a non-streaming body once its
headers are in, and ``total_timeout`` for the whole exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar

import aiohttp
import orjson

from llmproxy.config import ModelSpec, ProviderConfig
from llmproxy.errors import ProxyError, UpstreamError, UpstreamTimeout, from_upstream_status
from llmproxy.protocol.sse import Frame, SSEDecoder
from llmproxy.providers.wire import parse_frames, parse_payloads

#: (status, raw error body, retry-after header) -> the error to raise
StatusMapper = Callable[[int, bytes, "str | None"], ProxyError]


def wire_bytes(obj: object) -> bytes:
    """``obj`` as JSON for the wire, in a buffer of its own size: orjson's output keeps the over-sized
    buffer it was written into (≈ 260 KB for a 90 KB Claude Code body, measured with tracemalloc)."""
    out = orjson.dumps(obj)
    return bytes(memoryview(out)) if len(out) > 64 * 1024 else out


class SentOnce(aiohttp.BytesPayload):
    """A request body that lets go of its bytes once they are handed to the connection: a thousand requests
    waiting for their upstream's first byte would otherwise each hold their (≈ 90 KB) body until then.
    Written once: ``post`` follows no redirects (nothing would re-send it)."""

    def __init__(self, value: bytes, on_sent: Callable[[], None] | None = None) -> None:
        super().__init__(value, content_type="application/json")
        self._on_sent = on_sent

    def handed(self) -> None:
        """The body has been handed to the connection (or will never be): tell whoever waits, once."""
        if self._on_sent is not None:
            on_sent, self._on_sent = self._on_sent, None
            on_sent()

    async def write_with_length(self, writer, content_length: int | None) -> None:
        value, self._value = self._value, b""
        if content_length is not None and content_length < len(value):
            value = value[:content_length]
        await writer.write(value, drain=False)  # the transport sends it or keeps what the socket did not take
        del value  # before waiting for the upstream to read it all
        self.handed()
        await writer.drain()

    async def write(self, writer) -> None:
        await self.write_with_length(writer, None)


def client_timeout(provider: ProviderConfig) -> aiohttp.ClientTimeout:
    # no socket-read timeout: aiohttp's also runs while waiting for the response headers, which for a
    # non-streaming answer (or a thinking model) legitimately take long. The wait for the first byte is
    # bounded by ``first_response``, the gap between stream chunks by ``frames``, the whole by ``total``.
    return aiohttp.ClientTimeout(total=provider.total_timeout, sock_connect=provider.connect_timeout)


def ttfb_timeout(provider: ProviderConfig, spec: ModelSpec | None) -> float:
    """Seconds to wait for the response headers and the first event; slow thinking models may have more."""
    return (spec.ttfb_timeout if spec is not None and spec.ttfb_timeout else None) or provider.ttfb_timeout


def map_transport_error(exc: BaseException, provider: ProviderConfig) -> ProxyError:
    """aiohttp/asyncio transport failures -> our errors; the message names the provider, never a key."""
    if isinstance(exc, aiohttp.ServerTimeoutError) or isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"{provider.name}: upstream timed out (no data for {provider.idle_timeout:g} s "
                               f"or more than {provider.total_timeout:g} s in all)")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(f"{provider.name}: cannot connect to {provider.base_url} "
                             f"({exc.os_error.strerror or exc.os_error})")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamError(f"{provider.name}: upstream closed the connection mid-response")
    return UpstreamError(f"{provider.name}: upstream connection failed ({type(exc).__name__})")


async def post(session: aiohttp.ClientSession, provider: ProviderConfig, url: str, payload: SentOnce,
               headers: dict[str, str], on_status: StatusMapper, params: dict[str, str] | None = None
               ) -> aiohttp.ClientResponse:
    """POST; a response below 300 is returned open (the caller reads or streams it), anything else raises.
    Redirects are not followed: they would carry the provider's key to another address; the error names
    where the upstream points, for ``base_url``."""
    try:
        resp = await session.post(url, data=payload, headers=headers, params=params,
                                  timeout=client_timeout(provider), allow_redirects=False)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise map_transport_error(exc, provider) from exc
    finally:
        payload.handed()
    await check_status(resp, provider, on_status)
    if (budget := _WHOLE_ANSWER.get()) is not None:
        budget.reschedule(None)  # the answer has begun: read_json's idle bound takes over
    return resp


async def check_status(resp: aiohttp.ClientResponse, provider: ProviderConfig, on_status: StatusMapper) -> None:
    """Close ``resp`` and raise unless its status is below 300: a redirect (never followed: it would carry the
    provider's key to another address) names where it points; an error status goes through ``on_status``."""
    if 300 <= resp.status < 400:
        resp.close()
        where = resp.headers.get("location", "")[:200]
        err = UpstreamError(f"{provider.name}: upstream redirected the request ({resp.status} to {where or '?'}); "
                            f"set base_url to the address it points to")
        err.upstream_status = resp.status
        raise err
    if resp.status >= 400:
        try:
            raw = await resp.content.read(64 * 1024)
        except (TimeoutError, aiohttp.ClientError):
            raw = b""
        finally:
            resp.close()
        raise on_status(resp.status, raw, retry_after(resp.headers))


def status_error(provider: ProviderConfig, status: int, message: str, retry_after: str | None) -> ProxyError:
    """An upstream error status as our error; a rejected key says which variable holds it."""
    err = from_upstream_status(status, message, provider.name, retry_after=retry_after)
    if status == 401:
        if provider.api_key_env and provider.api_key():
            what = f"the key in {provider.api_key_env}"
        elif provider.forward_client_key:
            what = "the client's forwarded credential"
        else:
            what = "the request: no key is configured (set api_key_env)"
        err.message = f"{provider.name} rejected {what}; fix the key and retry ({err.message})"
    return err


def retry_after(headers) -> str | None:
    """The upstream's retry-after, in seconds (``retry-after-ms`` converted), or None."""
    if ms := headers.get("retry-after-ms"):
        try:
            return f"{max(0.0, float(ms)) / 1000:g}"
        except ValueError:
            pass
    return headers.get("retry-after")


#: the slowest generation we wait for on a non-streaming request, in tokens per second: such an answer has
#: no first byte until it is complete, so its budget grows with what it may write
SLOWEST_TOKENS_PER_SECOND = 20


#: the whole-answer budget of the non-streaming request this task is waiting for (``first_response``); ``post``
#: lifts it once the response headers are in, from when ``idle_timeout`` bounds each read (``read_json``)
_WHOLE_ANSWER: ContextVar[asyncio.Timeout | None] = ContextVar("llmproxy_whole_answer", default=None)


async def first_response(coro, provider: ProviderConfig, spec: ModelSpec | None, *, whole_tokens: int = 0):
    """Await ``coro`` (the request and its first event) within the time-to-first-byte budget. For a
    non-streaming request (``whole_tokens`` = its max_tokens) nothing is sent until the answer is whole: the
    budget for the response headers adds the time to write that many tokens at the slowest rate we accept,
    within ``total_timeout``. Once the headers are in, bytes flow: ``idle_timeout`` bounds each read of the
    body instead (an upstream that sends headers or half a body and falls silent costs that, not the budget)."""
    limit = ttfb_timeout(provider, spec)
    if whole_tokens:
        limit = min(provider.total_timeout, limit + whole_tokens / SLOWEST_TOKENS_PER_SECOND)
    try:
        async with asyncio.timeout(limit) as budget:
            if not whole_tokens:  # a stream: nothing to lift (and no context copy for each of a thousand)
                return await coro
            token = _WHOLE_ANSWER.set(budget)
            try:
                return await coro
            finally:
                _WHOLE_ANSWER.reset(token)
    except TimeoutError:
        raise UpstreamTimeout(f"{provider.name}: no response within {limit:g} s") from None


def frames(resp: aiohttp.ClientResponse, provider: ProviderConfig, *, strict: bool = True
           ) -> AsyncIterator[list[Frame]]:
    """The response's server-sent events as they arrive, decoded once, each keeping its own bytes
    (``wire.parse_frames``: ``strict`` is Anthropic's exact grammar). See ``events`` for the rest."""
    return events(resp, provider, lambda region, tail: parse_frames(region, provider, strict or tail))


def payloads(resp: aiohttp.ClientResponse, provider: ProviderConfig) -> AsyncIterator[list]:
    """The JSON payload of each event as they arrive, no bytes kept (``wire.parse_payloads``): for a provider
    that converts what it reads."""
    return events(resp, provider, lambda region, tail: parse_payloads(region, provider, tail))


async def events(resp: aiohttp.ClientResponse, provider: ProviderConfig, parse: Callable[[bytes, bool], list]
                 ) -> AsyncIterator[list]:
    """The stream's whole frames as they arrive, through ``parse(region, tail)``: one list per read. A
    stream cut in the middle of a frame raises UpstreamError (the tail is parsed strictly: it must be JSON),
    as does what ``parse`` rejects. The idle timeout applies from the first read on (the first is the
    time-to-first-byte budget's, ``first_response``). The connection is closed at the end, or when the
    consumer stops early, which aborts the upstream request."""
    dec = SSEDecoder()
    reads = resp.content.iter_any().__aiter__()
    watch: IdleWatch | None = None
    try:
        while True:
            if watch is not None:
                watch.waiting = True
            try:
                chunk = await reads.__anext__()
            except StopAsyncIteration:
                break
            if watch is None:
                watch = IdleWatch(resp, provider)
            watch.waiting = False
            region = dec.complete(chunk)
            if region and (batch := parse(region, False)):
                yield batch
        if rest := dec.rest():
            try:
                batch = parse(rest + b"\n\n", True)
            except UpstreamError:
                raise UpstreamError(f"{provider.name}: upstream stream was cut in the middle of an event") from None
            if batch:
                yield batch
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise map_transport_error(exc, provider) from exc
    finally:
        if watch is not None:
            watch.cancel()
        resp.close()


class IdleWatch:
    """Fails a streamed response's read once it has waited ``idle_timeout`` for data. One timer, re-armed
    only when it fires: an ``asyncio.timeout`` around every read costs ≈ 4 µs (a timer scheduled and
    cancelled), and a stream has dozens of reads. Time the consumer spends writing to a slow client is not
    counted: the wait starts when the next read does. The timeout reaches the reader the way aiohttp's own
    read timeout does (``StreamReader.set_exception``)."""

    __slots__ = ("_loop", "_idle", "_resp", "_name", "_handle", "_since", "_waiting")

    def __init__(self, resp: aiohttp.ClientResponse, provider: ProviderConfig) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle, self._resp, self._name = provider.idle_timeout, resp, provider.name
        self._since = self._loop.time()
        self._waiting = False
        self._handle = self._loop.call_at(self._since + self._idle, self._fire)

    @property
    def waiting(self) -> bool:
        return self._waiting

    @waiting.setter
    def waiting(self, value: bool) -> None:
        if value:
            self._since = self._loop.time()
        self._waiting = value

    def _fire(self) -> None:
        now = self._loop.time()
        if self._waiting and now >= self._since + self._idle:
            self._resp.content.set_exception(aiohttp.ServerTimeoutError(f"{self._name}: no data for {self._idle:g} s"))
            return
        self._handle = self._loop.call_at((self._since if self._waiting else now) + self._idle, self._fire)

    def cancel(self) -> None:
        self._handle.cancel()


async def primed(gen: AsyncIterator[list[Frame]]) -> tuple[list[Frame], AsyncIterator[list[Frame]]]:
    """Read the first batch before committing to a 200 (so an immediate upstream error can still fall back);
    returns it and the whole stream, first batch included."""
    try:
        first = await gen.__anext__()
    except StopAsyncIteration:
        first = []

    async def whole() -> AsyncIterator[list[Frame]]:
        if first:
            yield first
        async for batch in gen:
            yield batch

    return first, whole()


async def read_json(resp: aiohttp.ClientResponse, provider: ProviderConfig) -> tuple[bytes, object]:
    """The whole body and its parsed JSON, at most ``idle_timeout`` between two reads (the first included:
    the headers are in); a body that is not JSON is an upstream error (retryable)."""
    watch = IdleWatch(resp, provider)
    parts: list[bytes] = []
    try:
        watch.waiting = True
        async for chunk in resp.content.iter_any():
            parts.append(chunk)
            watch.waiting = True  # the wait starts again
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise map_transport_error(exc, provider) from exc
    finally:
        watch.cancel()
        resp.release()
    raw = parts[0] if len(parts) == 1 else b"".join(parts)
    try:
        return raw, orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{provider.name}: upstream answered something that is not JSON") from None
