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
from llmproxy.protocol.openai import validate_chat
from llmproxy.protocol.sse import DEFERRED, Frame
from llmproxy.server.request import streaming
from llmproxy.server.request.edge import begin, client_key
from llmproxy.server.request.exchange import PASSTHROUGH, Admitted, Exchange, Outcome
from llmproxy.server.request.record import RequestRecord, bodies_wanted, recording, whole_message
from llmproxy.server.state import STATE


class ChatSurface:
    """Chat Completions' answer. From a provider that speaks it (passthrough): its chunks relayed as they
    came, or its completion as it came. From any other: Anthropic events turned into
    ``chat.completion.chunk``s frame by frame, or the whole message into a ``chat.completion``."""

    __slots__ = ("include_usage",)

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage

    def framing(self, out: Outcome) -> streaming.Framing:
        def error_frame(exc) -> bytes:
            return sse.encode_data(exc.openai_body())

        if out.mode == PASSTHROUGH:
            tap = streaming.OpenAITap()
            return streaming.Framing(tap, error_frame, streaming.COMMENT_PING,
                                     done=lambda: b"" if tap.complete else streaming.DONE)
        conv = ChunkConverter(out.target.model, self.include_usage)

        def transform(frame: Frame) -> list[bytes]:
            if frame.event in ("ping", "error"):
                return []
            if frame.data is not DEFERRED:
                return [sse.encode_data(c) for c in conv.feed(frame.event, frame.data)]
            return [sse.encode_data(c) for data in streaming.frame_objects(frame)
                    for c in conv.feed(frame.event, data)]

        return streaming.Framing(streaming.AnthropicTap(), error_frame, streaming.COMMENT_PING,
                                 transform=transform, done=lambda: streaming.DONE)

    def whole(self, out: Outcome, rec: RequestRecord) -> web.Response:
        msg = out.reply.message or {}
        passthrough = out.mode == PASSTHROUGH
        body = out.reply.body_bytes() if passthrough else orjson.dumps(completion_from_message(msg, out.target.model))
        whole_message(rec, msg, chat=passthrough, size=len(body))
        return web.Response(body=body, content_type="application/json")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Validated once, as OpenAI; the conversion to the Anthropic form is valid by construction (a property
    test holds it to that: ``tests/convert/test_chat_conversion_valid.py``)."""
    state = request.app[STATE]
    with recording(request, "chat_completions") as rc:
        rec = rc.record
        profile, _raw, data = await begin(request, rec)
        oreq = validate_chat(data)
        notes: list[str] = []
        body = rc.body = to_anthropic(oreq, notes)
        if notes:  # values changed to fit the Anthropic API (e.g. temperature clamped)
            rec.extra["conversion_notes"] = notes
        rec.requested_model, rec.stream = oreq.get("model"), bool(oreq.get("stream"))
        # sized as the Anthropic form it is now (the client's bytes are the OpenAI form)
        decision = state.runtime.router.decide(body, profile, headers=request.headers)
        # no client bytes: what the client sent is not the Anthropic form the exchange would rebuild
        ex = Exchange(state, rec, Admitted(body, None, decision, request.headers, request.query,
                                           client_key(state, request), chat=oreq))
        _raw = data = body = None
        if not bodies_wanted(state):
            rc.body = None
        await ex.open()
        include_usage = bool((oreq.get("stream_options") or {}).get("include_usage"))
        return await ex.reply(request, ChatSurface(include_usage))
