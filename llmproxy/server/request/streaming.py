"""Writing a streamed reply to the client, for both surfaces: one writer, taps that read usage off the
frames as they pass, pings while the stream is silent, and exactly one error frame when it fails.

Frames arrive decoded (``providers/base.py``); each is encoded once on the way out — a passthrough frame is
its upstream bytes, unchanged. A surface says how its frames are written (its ``Framing``): the Anthropic
surface writes them as they are; the OpenAI surface either relays an OpenAI upstream's chunks, or turns
Anthropic events into ``chat.completion.chunk``s with a per-frame transform.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from llmproxy.convert.chunks import map_usage
from llmproxy.convert.events import assemble
from llmproxy.errors import ProxyError, UpstreamError
from llmproxy.protocol import sse
from llmproxy.protocol.sse import DEFERRED, Frame
from llmproxy.providers import Reply
from llmproxy.server.request.record import RequestRecord

log = logging.getLogger("llmproxy")
PING = sse.encode("ping", {"type": "ping"})
COMMENT_PING = b": ping\n\n"
DONE = b"data: [DONE]\n\n"


class AnthropicTap:
    """Usage, stop reason and the event grammar, read off Anthropic frames as they pass."""

    __slots__ = ("usage", "stop_reason", "started", "complete", "error", "first_token_at", "events")

    def __init__(self, collect: bool = False) -> None:
        self.events: list | None = [] if collect else None
        self.usage: dict = {}
        self.stop_reason: str | None = None
        self.started = self.complete = False
        self.error: dict | None = None
        self.first_token_at: float | None = None

    def feed(self, frame: Frame) -> None:
        event, data = frame.event, frame.data
        if data is DEFERRED:  # relayed text deltas: nothing here reads them
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            if self.events is not None:  # bodies are logged: now they are read
                self.events += [(event, d) for d in frame_objects(frame)]
            return
        if type(data) is not dict:
            raise UpstreamError(f"malformed {event or 'data'} event in the upstream stream (not a JSON object)")
        if self.events is not None and event != "ping" and event != "error":
            self.events.append((event, data))
        if event == "content_block_delta":  # by far the most frequent: decided first
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
        elif event == "message_start":
            self.started = True
            self.usage.update(_dict(_dict(data.get("message")).get("usage")))
        elif event == "message_delta":
            self.usage.update({k: v for k, v in _dict(data.get("usage")).items() if v is not None})
            self.stop_reason = _dict(data.get("delta")).get("stop_reason")
        elif event == "message_stop":
            self.complete = True
        elif event == "error":
            self.error = _dict(data.get("error")) or {"message": "upstream stream error"}

    @property
    def ended(self) -> bool:
        """The stream reached its end (message_stop)."""
        return self.complete

    def finish_record(self, rec: RequestRecord) -> None:
        rec.usage, rec.stop_reason = self.usage, self.stop_reason
        if self.error:
            rec.stream_error = str(self.error.get("message") or self.error)
        if self.events:
            with contextlib.suppress(Exception):
                rec.response_body = assemble(self.events)


class OpenAITap:
    """Usage and finish reason read off Chat Completions chunks as they pass."""

    __slots__ = ("usage", "finish", "first_token_at", "complete", "error", "started")

    def __init__(self) -> None:
        self.usage: dict = {}
        self.finish: str | None = None
        self.first_token_at: float | None = None
        self.complete = self.started = False
        self.error: dict | None = None

    def feed(self, frame: Frame) -> None:
        self.started = True
        data = frame.data
        if data == "[DONE]":
            self.complete = True
            return
        if not isinstance(data, dict):
            return
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        if data.get("error") is not None:
            self.error = _dict(data.get("error")) or {"message": str(data["error"])}
        choices = data.get("choices")
        for c in choices if isinstance(choices, list) else ():
            if not isinstance(c, dict):
                continue
            if self.first_token_at is None and _dict(c.get("delta")).get("content"):
                self.first_token_at = time.monotonic()
            self.finish = c.get("finish_reason") or self.finish

    @property
    def ended(self) -> bool:
        """The stream reached its end: ``[DONE]``, or a finish reason (a server that omits ``[DONE]``)."""
        return self.complete or self.finish is not None

    def finish_record(self, rec: RequestRecord) -> None:
        rec.usage, rec.stop_reason = map_usage(self.usage), self.finish
        if self.error:
            rec.stream_error = str(self.error.get("message") or self.error)


def frame_objects(frame: Frame) -> list[dict]:
    """The JSON objects a frame carries (deferred deltas are parsed now); UpstreamError if one is not."""
    try:
        values = frame.values()
    except ValueError:
        values = [None]
    if any(type(v) is not dict for v in values):
        raise UpstreamError(f"malformed {frame.event or 'data'} event in the upstream stream (not a JSON object)")
    return values


def _dict(val: object) -> dict:
    return val if isinstance(val, dict) else {}


@dataclass
class Framing:
    """How one surface writes a stream: its tap, its error frame, its ping, its per-frame transform."""
    tap: AnthropicTap | OpenAITap
    error_frame: Callable[[ProxyError], bytes]
    ping: bytes
    transform: Callable[[Frame], list[bytes]] | None = None  # None: each frame is written as it is
    done: Callable[[], bytes] = lambda: b""                  # what ends a stream that ended well



def anthropic_framing(collect: bool) -> Framing:
    return Framing(AnthropicTap(collect), lambda exc: sse.encode("error", exc.body()), PING)


async def write_stream(request: web.Request, reply: Reply, headers: dict, rec: RequestRecord, framing: Framing,
                       ping_interval: float, on_upstream_failure: Callable[[ProxyError], None] | None = None
                       ) -> web.StreamResponse:
    """Write the reply's frames; ``on_upstream_failure`` hears of an upstream that failed mid-stream."""
    resp = web.StreamResponse(status=200, headers={**reply.headers, **headers, "content-type": "text/event-stream",
                                                   "cache-control": "no-cache", "x-accel-buffering": "no"})
    await resp.prepare(request)
    tap, transform, sent, last = framing.tap, framing.transform, 0, [time.monotonic()]
    pinger = asyncio.create_task(_pinger(resp, framing, ping_interval, last))
    stream = reply.stream
    assert stream is not None
    try:
        async for batch in stream:
            if not sent:
                rec.ttfb_ms = rec.ms_since_start()
            feed = tap.feed
            for frame in batch:
                feed(frame)
            if transform is None:  # passthrough frames are their own bytes
                chunk = b"".join([f.raw if f.raw is not None else f.encode() for f in batch])
            else:
                chunk = b"".join([piece for f in batch for piece in transform(f)])
            if chunk:
                sent += len(chunk)
                last[0] = time.monotonic()
                await resp.write(chunk)
        if tap.error is not None:
            if on_upstream_failure is not None:
                on_upstream_failure(UpstreamError(str(tap.error.get("message") or "stream error")))
            if framing.transform is not None:  # an upstream error event the transform could not carry
                await resp.write(framing.error_frame(UpstreamError(str(tap.error.get("message") or "stream error"))))
        elif not framing.tap.ended:
            raise UpstreamError(f"{rec.target or 'upstream'}: stream ended before it finished")
        elif end := framing.done():
            await resp.write(end)
    except ProxyError as exc:
        rec.stream_error = exc.message
        if on_upstream_failure is not None:
            on_upstream_failure(exc)
        await _write_quietly(resp, framing.error_frame(exc))
    except (ConnectionResetError, asyncio.CancelledError):
        rec.client_disconnected = True
        raise
    except Exception as exc:  # noqa: BLE001 - a bug must end this stream cleanly, not the daemon
        log.exception("stream failed (request %s)", rec.request_id)
        rec.stream_error = f"internal proxy error: {type(exc).__name__}"
        await _write_quietly(resp, framing.error_frame(ProxyError(f"internal proxy error (request {rec.request_id})")))
    finally:
        pinger.cancel()
        reply.close()
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
        rec.bytes_out = sent
        if tap.first_token_at is not None:
            rec.ttft_ms = rec.ms_since_start(tap.first_token_at)
        tap.finish_record(rec)
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def _write_quietly(resp: web.StreamResponse, data: bytes) -> None:
    with contextlib.suppress(ConnectionResetError):
        await resp.write(data)


async def _pinger(resp: web.StreamResponse, framing: Framing, interval: float, last: list[float]) -> None:
    """A ping whenever the stream has been silent for ``interval`` seconds. Frames are written whole, so a
    ping always falls between two frames; the Anthropic framing pings only after message_start."""
    while True:
        await asyncio.sleep(max(0.01, interval - (time.monotonic() - last[0])))
        if time.monotonic() - last[0] >= interval and framing.tap.started:
            last[0] = time.monotonic()
            await resp.write(framing.ping)
