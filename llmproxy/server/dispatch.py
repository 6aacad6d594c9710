"""Dispatch: try each target of a Decision's chain in order, falling back on retryable errors only
while nothing has been sent to the client, then write the reply as JSON or as an SSE stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from llmproxy.config import Target
from llmproxy.convert.stream import assemble
from llmproxy.convert.thinking import strip_foreign_thinking
from llmproxy.errors import ProxyError, UpstreamError
from llmproxy.protocol import sse
from llmproxy.protocol.anthropic import adapt_for_model
from llmproxy.providers import Call, Provider, Reply
from llmproxy.routing import Decision
from llmproxy.server.state import State

PING = sse.encode("ping", {"type": "ping"})
log = logging.getLogger("llmproxy")


class UsageTap:
    """Reads usage, stop reason and the event grammar off an Anthropic SSE byte stream as it passes."""

    __slots__ = ("_dec", "usage", "stop_reason", "started", "stopped", "errored", "first_token_at", "events")

    def __init__(self, collect: bool = False) -> None:
        self.events: list | None = [] if collect else None
        self._dec = sse.SSEDecoder()
        self.usage: dict = {}
        self.stop_reason: str | None = None
        self.started = self.stopped = False
        self.errored: dict | None = None
        self.first_token_at: float | None = None

    def feed(self, chunk: bytes) -> None:
        for event, data in self._dec.feed(chunk):
            if self.events is not None and event not in ("ping", "error"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    self.events.append((event, orjson.loads(data)))
            if event == "content_block_delta":
                if self.first_token_at is None:
                    self.first_token_at = time.monotonic()
                continue
            if event not in ("message_start", "message_delta", "message_stop", "error"):
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if event == "message_start":
                self.started = True
                self.usage.update((obj.get("message") or {}).get("usage") or {})
            elif event == "message_delta":
                self.usage.update({k: v for k, v in (obj.get("usage") or {}).items() if v is not None})
                self.stop_reason = (obj.get("delta") or {}).get("stop_reason")
            elif event == "message_stop":
                self.stopped = True
            else:
                self.errored = obj.get("error") or obj

    @property
    def at_boundary(self) -> bool:
        return self._dec.at_boundary


def build_call(state: State, body: dict, raw: bytes | None, decision: Decision, target_index: int,
               request: web.Request, client_key: str | None) -> Call:
    """The request as this target gets it. ``raw`` (the client's bytes) is forwarded only when nothing changed."""
    rt = state.runtime
    target = decision.chain[target_index]
    provider = rt.cfg.providers[target.provider]
    spec = provider.model(target.model)
    new_body = adapt_for_model(body, target.model, spec)
    if provider.kind == "anthropic":
        new_body = strip_foreign_thinking(new_body)
    unchanged = new_body is body
    label = {"profile": decision.profile, "scenario": decision.scenario, "concept": decision.concept,
             "estimated_tokens": decision.estimated_tokens}
    return Call(body=new_body, raw=raw if unchanged else None, target=target, spec=spec,
                headers=request.headers, query=request.query_string, client_key=client_key, label=label)


Attempt = Callable[[int, Target, Provider], Awaitable[Reply]]


async def open_chain(state: State, decision: Decision, record: dict, attempt: Attempt) -> Reply:
    """Try each target of the decision's chain in order until one answers. Only retryable errors (connect,
    timeout, 401 of the provider's key, 404 of a missing model, 429, 5xx) move on, and only ever before anything reached the client;
    every failed attempt is recorded."""
    attempts = record.setdefault("attempts", [])
    last: ProxyError | None = None
    for i, target in enumerate(decision.chain):
        provider = state.runtime.providers.get(target.provider)
        if provider is None:
            continue
        t0 = time.monotonic()
        try:
            reply = await attempt(i, target, provider)
        except ProxyError as exc:
            attempts.append({"target": str(target), "status": exc.status, "error": exc.message,
                             "ms": round((time.monotonic() - t0) * 1000, 1)})
            last = exc
            if exc.retryable:
                continue
            raise
        record["target"] = str(target)
        record["simulated"] = provider.simulated_reason is not None
        return reply
    raise last or UpstreamError("no provider in the chain is configured")


async def open_reply(state: State, body: dict, raw: bytes, decision: Decision, request: web.Request,
                     client_key: str | None, record: dict) -> Reply:
    """The Anthropic surface: each target gets the request as built for it."""
    async def attempt(i: int, target: Target, provider: Provider) -> Reply:
        return await provider.messages(build_call(state, body, raw, decision, i, request, client_key))

    return await open_chain(state, decision, record, attempt)


async def _pinger(resp: web.StreamResponse, tap: UsageTap, interval: float, last: list[float]) -> None:
    """Write an SSE ping whenever the stream has been silent for ``interval`` seconds, but only between
    frames: the main loop feeds the tap before each write, so ``at_boundary`` is exact."""
    while True:
        await asyncio.sleep(max(0.01, interval - (time.monotonic() - last[0])))
        if time.monotonic() - last[0] >= interval and tap.started and tap.at_boundary:
            last[0] = time.monotonic()
            await resp.write(PING)


async def write_stream(request: web.Request, reply: Reply, headers: dict, record: dict,
                       ping_interval: float, collect: bool = False) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={**reply.headers, **headers,
                                                   "content-type": "text/event-stream",
                                                   "cache-control": "no-cache"})
    await resp.prepare(request)
    tap = UsageTap(collect)
    sent = 0
    last = [time.monotonic()]
    pinger = asyncio.create_task(_pinger(resp, tap, ping_interval, last))
    try:
        assert reply.stream is not None
        async for chunk in reply.stream:
            if not sent:
                record["ttfb_ms"] = round((time.monotonic() - record["_t0"]) * 1000, 1)
            tap.feed(chunk)
            sent += len(chunk)
            last[0] = time.monotonic()
            await resp.write(chunk)
        if not tap.stopped and tap.errored is None:
            raise UpstreamError(f"{record.get('target', 'upstream')}: stream ended before message_stop")
    except ProxyError as exc:
        record["stream_error"] = exc.message
        if tap.at_boundary:
            await resp.write(sse.encode("error", exc.body()))
    except (ConnectionResetError, asyncio.CancelledError):
        record["client_disconnected"] = True
        raise
    except Exception as exc:  # noqa: BLE001 - a bug must end this stream cleanly, not the daemon
        log.exception("stream failed (request %s)", headers.get("request-id"))
        record["stream_error"] = f"internal proxy error: {type(exc).__name__}"
        if tap.at_boundary:
            await resp.write(sse.encode("error", {"type": "error", "error": {
                "type": "api_error", "message": f"internal proxy error (request {headers.get('request-id')})"}}))
    finally:
        pinger.cancel()
        reply.close()
        record["usage"] = tap.usage
        record["stop_reason"] = tap.stop_reason
        record["bytes_out"] = sent
        if tap.first_token_at is not None:
            record["ttft_ms"] = round((tap.first_token_at - record["_t0"]) * 1000, 1)
        if tap.errored:
            record["stream_error"] = str(tap.errored)
        if tap.events:
            with contextlib.suppress(Exception):
                record["response_body"] = assemble(tap.events)
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


def json_reply(reply: Reply, headers: dict, record: dict, collect: bool = False) -> web.Response:
    body = reply.body or b"{}"
    try:
        msg = orjson.loads(body)
        record["usage"] = msg.get("usage") or {}
        record["stop_reason"] = msg.get("stop_reason")
        if collect:
            record["response_body"] = msg
    except (orjson.JSONDecodeError, AttributeError):
        pass
    record["bytes_out"] = len(body)
    record["ttfb_ms"] = round((time.monotonic() - record["_t0"]) * 1000, 1)
    return web.Response(status=reply.status, body=body, content_type="application/json",
                        headers={**reply.headers, **headers})
