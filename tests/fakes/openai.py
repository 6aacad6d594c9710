"""A fake OpenAI-compatible upstream (``POST /v1/chat/completions``), real aiohttp server on loopback.

Each request pops an action from ``script`` (or uses the default: tool call when a ``get_weather`` or
``Bash`` tool is offered and the last message is not a tool result, else text). Actions: ``status`` (error
answer), ``stream_error_after`` (chunks, then an error chunk), ``reasoning`` (text), ``text``,
``tools`` (list of (name, args-dict)) streamed ``interleaved`` or one after another, ``frag`` (argument
fragment size), ``no_usage``, ``json_when_streaming`` (answers JSON even if a stream was asked for),
``raw_lines`` (SSE lines sent exactly as given), ``refusal`` (the model refuses: streamed as
``delta.refusal``, or ``message.refusal`` with null content), ``cut_after`` (that many chunks, then the
connection ends without ``[DONE]``). ``message`` and ``code`` go with ``status``.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[dict] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    def _default(self, body: dict) -> dict:
        msgs = body.get("messages") or []
        names = {t["function"]["name"] for t in body.get("tools") or []}
        for m in reversed(msgs):  # a tool result after the last assistant turn: answer with it
            if m.get("role") == "assistant":
                break
            if m.get("role") == "tool":
                return {"text": f"The tool said: {m.get('content', '').strip()}"}
        if "Bash" in names:
            return {"tools": [("Bash", {"command": "echo llmproxy-tool-ok", "description": "Print a marker"})]}
        if "get_weather" in names:
            return {"tools": [("get_weather", {"city": "Paris"})], "text": "Checking."}
        return {"text": "Hello from the fake OpenAI upstream."}

    def _chunks(self, action: dict, model: str) -> list[dict]:
        def chunk(delta: dict, finish=None) -> dict:
            return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        out = [chunk({"role": "assistant", "content": ""})]
        if action.get("refusal"):
            words = action["refusal"].split(" ")
            out += [chunk({"refusal": w + (" " if i < len(words) - 1 else "")}) for i, w in enumerate(words)]
        if action.get("reasoning"):
            for w in action["reasoning"].split(" "):
                out.append(chunk({"reasoning_content": w + " "}))
        if action.get("text"):
            words = action["text"].split(" ")
            for i, w in enumerate(words):
                out.append(chunk({"content": w + (" " if i < len(words) - 1 else "")}))
        tools = action.get("tools") or []
        frag = action.get("frag", 4)
        pieces = []
        for k, (name, args) in enumerate(tools):
            js = json.dumps(args)
            frags = [js[i:i + frag] for i in range(0, len(js), frag)]
            first = {"index": k, "id": f"call_fake_{k:04d}", "type": "function",
                     "function": {"name": name, "arguments": ""}}
            pieces.append([first] + [{"index": k, "function": {"arguments": f}} for f in frags])
        if action.get("interleaved"):
            while any(pieces):
                for p in pieces:
                    if p:
                        out.append(chunk({"tool_calls": [p.pop(0)]}))
        else:
            for p in pieces:
                out += [chunk({"tool_calls": [tc]}) for tc in p]
        out.append(chunk({}, "tool_calls" if tools else action.get("finish", "stop")))
        if not action.get("no_usage"):
            out.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
                        "choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 9,
                                                 "prompt_tokens_details": {"cached_tokens": 20}}})
        return out

    def _message(self, action: dict, model: str) -> dict:
        msg: dict = {"role": "assistant", "content": action.get("text"), "refusal": action.get("refusal")}
        if action.get("reasoning"):
            msg["reasoning_content"] = action["reasoning"]
        if action.get("tools"):
            msg["tool_calls"] = [{"id": f"call_fake_{k:04d}", "type": "function",
                                  "function": {"name": n, "arguments": json.dumps(a)}}
                                 for k, (n, a) in enumerate(action["tools"])]
        out = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": model,
               "choices": [{"index": 0, "message": msg,
                            "finish_reason": "tool_calls" if action.get("tools") else action.get("finish", "stop")}]}
        if not action.get("no_usage"):
            out["usage"] = {"prompt_tokens": 50, "completion_tokens": 9}
        return out

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        action = self.script.pop(0) if self.script else self._default(body)
        if action.get("status"):
            return web.json_response({"error": {"message": action.get("message", "fake failure"),
                                                "type": "server_error", "code": action.get("code")}},
                                     status=action["status"])
        model = body["model"]
        if not body.get("stream") or action.get("json_when_streaming"):
            return web.json_response(self._message(action, model))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        if action.get("raw_lines"):
            for line in action["raw_lines"]:
                await resp.write(line + b"\n\n")
            await resp.write_eof()
            return resp
        chunks = self._chunks(action, model)
        stop_after = action.get("stream_error_after")
        for i, c in enumerate(chunks):
            if action.get("cut_after") is not None and i == action["cut_after"]:
                await asyncio.sleep(0.05)
                request.transport.close()  # abrupt: no [DONE], no terminating chunk
                return resp
            if stop_after is not None and i == stop_after:
                await resp.write(b'data: {"error": {"message": "upstream melted", "code": 502}}\n\n')
                await resp.write_eof()
                return resp
            await resp.write(f"data: {json.dumps(c)}\n\n".encode())
            if action.get("delay"):
                await asyncio.sleep(action["delay"])
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
