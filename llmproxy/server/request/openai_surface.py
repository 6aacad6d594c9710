"""``POST /v1/chat/completions``: the OpenAI surface, routed by the same profiles and ``decide()``.

The OpenAI request is converted to the internal Anthropic form for routing. A provider that speaks Chat
Completions itself (``ChatProvider``) gets the original request (model replaced) with no double conversion,
and its chunks are relayed as they came; any other target gets the Anthropic form, and its events are turned
into ``chat.completion.chunk``s frame by frame. Errors use OpenAI's error shape; a stream that fails ends
with an error chunk the SDK raises on, never with ``[DONE]``.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from llmproxy.convert.inbound import ChunkConverter, completion_from_message, to_anthropic
from llmproxy.protocol import sse
from llmproxy.protocol.anthropic import validate_messages
from llmproxy.protocol.openai import validate_chat
from llmproxy.protocol.sse import DEFERRED, Frame
from llmproxy.providers import Reply
from llmproxy.server.request import dispatch, streaming
from llmproxy.server.request.edge import begin, client_key, route_headers
from llmproxy.server.request.exchange import PASSTHROUGH, Admitted, Exchange
from llmproxy.server.request.record import bodies_wanted, recording, whole_message
from llmproxy.server.state import STATE


def chat_surface(passthrough: bool, model: str, include_usage: bool) -> streaming.Surface:
    def error_frame(exc) -> bytes:
        return sse.encode_data(exc.openai_body())

    if passthrough:
        tap = streaming.OpenAITap()
        return streaming.Surface(tap, error_frame, streaming.COMMENT_PING,
                                 done=lambda: b"" if tap.complete else streaming.DONE)
    conv = ChunkConverter(model, include_usage)

    def transform(frame: Frame) -> list[bytes]:
        if frame.event in ("ping", "error"):
            return []
        if frame.data is not DEFERRED:
            return [sse.encode_data(c) for c in conv.feed(frame.event, frame.data)]
        return [sse.encode_data(c) for data in streaming.frame_objects(frame) for c in conv.feed(frame.event, data)]

    return streaming.Surface(streaming.AnthropicTap(), error_frame, streaming.COMMENT_PING, transform=transform,
                             done=lambda: streaming.DONE)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    with recording(request, "chat_completions") as rc:
        rec = rc.record
        profile, raw, data = await begin(request, rec)
        oreq = validate_chat(data)
        notes: list[str] = []
        body = rc.body = validate_messages(to_anthropic(oreq, notes))
        if notes:  # values changed to fit the Anthropic API (e.g. temperature clamped)
            rec.extra["conversion_notes"] = notes
        rec.requested_model, rec.stream = oreq.get("model"), bool(oreq.get("stream"))
        decision = state.runtime.router.decide(body, profile, headers=request.headers, raw_len=len(raw))
        rec.profile, rec.decision = decision.profile, decision
        # no client bytes: what the client sent is not the Anthropic form the exchange would rebuild
        ex = Exchange(state, rec, Admitted(body, None, decision, request.headers, request.query,
                                           client_key(state, request), chat=oreq))
        raw = data = body = None
        if not bodies_wanted(state):
            rc.body = None
        out = await ex.open()
        passthrough, model = out.mode == PASSTHROUGH, out.target.model
        headers = route_headers(request, decision, out.target)
        reply = out.reply
        if reply.stream is not None:
            include_usage = bool((oreq.get("stream_options") or {}).get("include_usage"))
            resp = await streaming.write_stream(request, reply, headers, rec,
                                                chat_surface(passthrough, model, include_usage),
                                                state.runtime.cfg.server.ping_interval,
                                                lambda exc: dispatch.stream_failed(state, out, exc))
        else:
            resp = _json(reply, passthrough, model, headers, rec)
        rec.status = resp.status
        return resp


def _json(reply: Reply, passthrough: bool, model: str, headers: dict, rec) -> web.Response:
    msg = reply.message or {}
    out = reply.body_bytes() if passthrough else orjson.dumps(completion_from_message(msg, model))
    whole_message(rec, msg, chat=passthrough, size=len(out))
    return web.Response(body=out, content_type="application/json", headers=headers)
