"""``POST /v1/chat/completions``: the OpenAI surface, routed by the same profiles and ``decide()``.

The OpenAI request is converted to the internal Anthropic form for routing. A live OpenAI-kind target gets
the original request (model replaced) with no double conversion; any other target gets the Anthropic form,
and its answer is converted back to OpenAI's shapes. Errors use OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
from aiohttp import web

from llmproxy.convert.inbound import ChunkConverter, completion_from_message, to_anthropic
from llmproxy.convert.stream import map_usage
from llmproxy.errors import ProxyError
from llmproxy.protocol import sse
from llmproxy.protocol.anthropic import parse_json, validate_messages
from llmproxy.providers import Reply
from llmproxy.providers.openai import OpenAIProvider
from llmproxy.routing import decide
from llmproxy.server import dispatch
from llmproxy.server.handlers import recording, resolve_profile
from llmproxy.server.middleware import REQUEST_ID, client_credential
from llmproxy.server.state import STATE

DONE = b"data: [DONE]\n\n"


class OpenAIUsageTap:
    """Usage and finish reason read off an OpenAI SSE stream as it passes."""

    def __init__(self) -> None:
        self._dec = sse.SSEDecoder()
        self.usage: dict = {}
        self.finish: str | None = None
        self.first_at: float | None = None

    def feed(self, chunk: bytes) -> None:
        for _e, data in self._dec.feed(chunk):
            if data.startswith("[DONE]"):
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if obj.get("usage"):
                self.usage = obj["usage"]
            for c in obj.get("choices") or ():
                if self.first_at is None and (c.get("delta") or {}).get("content"):
                    self.first_at = time.monotonic()
                self.finish = c.get("finish_reason") or self.finish


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    rt = state.runtime
    with recording(request, "chat_completions") as rec:
        record = rec.record
        profile = resolve_profile(request)
        record["profile"] = profile.name
        raw = await request.read()
        record["bytes_in"] = len(raw)
        oreq = parse_json(raw)
        rec.body = body = validate_messages(to_anthropic(oreq))
        stream = bool(oreq.get("stream"))
        record["requested_model"], record["stream"] = oreq.get("model"), stream
        decision = decide(body, profile, rt.cfg, rt.profiles, headers=request.headers, raw_len=len(raw))
        record["profile"], record["decision"] = decision.profile, decision.to_dict()
        client_key = None if rt.cfg.api_keys else client_credential(request)
        reply, passthrough, model = await _open(state, oreq, body, decision, request, client_key, record)
        headers = {"x-llmproxy-route": decision.header().replace(f"target={decision.target}",
                                                                 f"target={record['target']}"),
                   "request-id": request[REQUEST_ID]}
        include_usage = bool((oreq.get("stream_options") or {}).get("include_usage"))
        if reply.stream is not None:
            resp = await _write_stream(request, reply, headers, record, passthrough, model, include_usage)
        else:
            data = orjson.loads(reply.body or b"{}")
            if not passthrough:
                record["usage"], record["stop_reason"] = data.get("usage") or {}, data.get("stop_reason")
                data = completion_from_message(data, model)
            else:
                record["usage"] = map_usage(data.get("usage") or {})
            out = orjson.dumps(data)
            record["bytes_out"] = len(out)
            resp = web.Response(body=out, content_type="application/json", headers=headers)
        record["status"] = resp.status
        return resp


async def _open(state, oreq: dict, body: dict, decision, request, client_key, record) -> tuple[Reply, bool, str]:
    """(reply, passthrough?, model). A live OpenAI-kind target gets the client's request as it is."""
    async def attempt(i: int, target, provider) -> Reply:
        if isinstance(provider, OpenAIProvider):
            record["mode"] = "passthrough"
            return await provider.chat(oreq, target.model)
        record["mode"] = "converted"
        return await provider.messages(dispatch.build_call(state, body, None, decision, i, request, client_key))

    reply = await dispatch.open_chain(state, decision, record, attempt)
    return reply, record["mode"] == "passthrough", record["target"].partition("/")[2]


async def _write_stream(request, reply, headers, record, passthrough: bool, model: str, include_usage: bool):
    resp = web.StreamResponse(headers={**headers, "content-type": "text/event-stream", "cache-control": "no-cache"})
    await resp.prepare(request)
    sent = 0
    tap = OpenAIUsageTap() if passthrough else dispatch.UsageTap()
    conv = ChunkConverter(model, include_usage)
    dec = sse.SSEDecoder()
    try:
        async for chunk in reply.stream:
            tap.feed(chunk)
            if passthrough:
                out = chunk
            else:
                out = b"".join(sse.encode_data(c) for ev, data in dec.feed(chunk)
                               if ev not in ("ping", "error") for c in conv.feed(ev, orjson.loads(data)))
            if out:
                sent += len(out)
                await resp.write(out)
        if not passthrough:
            await resp.write(DONE)
    except ProxyError as exc:
        record["stream_error"] = exc.message
        await resp.write(sse.encode_data(exc.openai_body()) + DONE)
    except (ConnectionResetError, asyncio.CancelledError):
        record["client_disconnected"] = True
        raise
    finally:
        reply.close()
        record["bytes_out"] = sent
        if passthrough:
            record["usage"] = map_usage(tap.usage)
            record["stop_reason"] = tap.finish
            first = tap.first_at
        else:
            record["usage"], record["stop_reason"], first = tap.usage, tap.stop_reason, tap.first_token_at
        if first is not None:
            record["ttft_ms"] = round((first - record["_t0"]) * 1000, 1)
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp
