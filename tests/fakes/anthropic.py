"""A fake Anthropic upstream: a real aiohttp server that records requests and answers as scripted.

Each request pops one action from ``script`` (or uses the default): ``status``/``error_type``/``message``
for an error answer; ``text``; ``tool`` (name, input) to answer with a tool_use block; ``chunk_bytes`` to
split the SSE byte stream into tiny writes; ``die_after`` (events) to drop the connection mid-stream;
``delay`` (seconds between events); ``hang`` (seconds to sit silent after message_start);
``ignore_stream`` to answer JSON even when a stream was asked for; ``error_event_after`` (events) to send
an ``event: error`` (overloaded) mid-stream and end.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropic:
    def __init__(self, name: str = "fake-anthropic"):
        self.name = name
        self.requests: list[dict] = []
        self.script: list[dict] = []
        self.aborted = asyncio.Event()
        self.finished_streams = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        return app

    async def _record(self, request: web.Request) -> dict:
        raw = await request.read()
        rec = {"headers": dict(request.headers), "raw": raw, "body": json.loads(raw), "query": request.query_string,
               "path": request.path}
        self.requests.append(rec)
        return rec

    async def count_tokens(self, request: web.Request) -> web.Response:
        rec = await self._record(request)
        action = self.script.pop(0) if self.script else {}
        if action.get("status", 200) != 200:
            return self._error(action)
        return web.json_response({"input_tokens": 4242 + len(json.dumps(rec["body"])) % 7})

    def _error(self, action: dict) -> web.Response:
        headers = {"request-id": "req_upstream_err"}
        if action.get("retry_after"):
            headers["retry-after"] = str(action["retry_after"])
        return web.json_response({"type": "error", "error": {"type": action.get("error_type", "api_error"),
                                                             "message": action.get("message", "upstream boom")}},
                                 status=action["status"], headers=headers)

    def _content(self, body: dict, action: dict) -> tuple[list[dict], str]:
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}
        last_is_tool_result = isinstance(last.get("content"), list) and any(
            b.get("type") == "tool_result" for b in last["content"])
        if "tool" in action or (body.get("tools") and not last_is_tool_result and action.get("auto_tool", True)
                                and any(t.get("name") == "get_weather" for t in body["tools"])):
            name, inp = action.get("tool", ("get_weather", {"city": "Paris"}))
            return [{"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_fake_01", "name": name, "input": inp}], "tool_use"
        text = action.get("text", "Hello from the fake upstream.")
        return [{"type": "text", "text": text}], "end_turn"

    async def messages(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        body = rec["body"]
        action = self.script.pop(0) if self.script else {}
        if action.get("status", 200) != 200:
            return self._error(action)
        content, stop = self._content(body, action)
        usage = {"input_tokens": 11, "output_tokens": 7, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 3}
        msg = {"id": "msg_fake_01", "type": "message", "role": "assistant", "model": body["model"],
               "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not body.get("stream") or action.get("ignore_stream"):
            return web.json_response(msg, headers={"request-id": "req_upstream_1",
                                                   "anthropic-ratelimit-requests-remaining": "99"})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "request-id": "req_upstream_2"})
        await resp.prepare(request)
        events = [sse("message_start", {"type": "message_start", "message": {**msg, "content": [], "stop_reason": None,
                                                                             "usage": {**usage, "output_tokens": 1}}})]
        for i, block in enumerate(content):
            if block["type"] == "text":
                events.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                          "content_block": {"type": "text", "text": ""}}))
                words = block["text"].split(" ")
                for j, w in enumerate(words):
                    piece = w + (" " if j < len(words) - 1 else "")
                    events.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                              "delta": {"type": "text_delta", "text": piece}}))
            else:
                events.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                          "content_block": {**block, "input": {}}}))
                js = json.dumps(block["input"])
                for k in range(0, len(js), 5):
                    events.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                              "delta": {"type": "input_json_delta",
                                                                        "partial_json": js[k:k + 5]}}))
            events.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                            "usage": {"output_tokens": 7}}))
        events.append(sse("message_stop", {"type": "message_stop"}))
        data = b"".join(events)
        step = action.get("chunk_bytes")
        try:
            if action.get("error_event_after") is not None:
                for ev in events[:action["error_event_after"]]:
                    await resp.write(ev)
                await resp.write(sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                         "message": "Overloaded"}}))
                await resp.write_eof()
                return resp
            if action.get("die_after") is not None:
                for ev in events[:action["die_after"]]:
                    await resp.write(ev)
                await asyncio.sleep(0.05)
                request.transport.close()  # abrupt: no terminating chunk
                return resp
            if action.get("hang"):
                await resp.write(events[0])
                await asyncio.sleep(action["hang"])  # silent; a client disconnect cancels this handler
                await resp.write(b"".join(events[1:]))
            elif step:
                for k in range(0, len(data), step):
                    await resp.write(data[k:k + step])
            else:
                for ev in events:
                    await resp.write(ev)
                    if action.get("delay"):
                        await asyncio.sleep(action["delay"])
            await resp.write_eof()
            self.finished_streams += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.aborted.set()
            raise
        return resp
