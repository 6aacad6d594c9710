"""The benchmark's fake upstream: Anthropic ``/v1/messages`` and OpenAI ``/v1/chat/completions`` on one port.

Answers are built once at start-up, so the upstream spends as little CPU as possible per request (it shares
the machine with the client and the proxies). A streamed answer is ``--deltas`` text deltas (Anthropic:
message_start, ping, content_block_start, deltas, content_block_stop, message_delta with usage,
message_stop; OpenAI: a role chunk, deltas, a finish chunk, a usage chunk, ``[DONE]``), one write per event,
no delay. Under the ``/slow`` prefix (``/slow/v1/messages``, ``/slow/v1/chat/completions``) a stream has
``--slow-deltas`` deltas ``--slow-delay-ms`` apart: the long streams of the many-streams run.

The request body is not parsed on the hot path (a regex finds ``"stream": true``); the first 20 requests of
each route and every 50th after are parsed and checked (model, messages, and for OpenAI no Anthropic-only
block types), and ``GET /stats`` reports counts per route and the number of malformed requests.

Usage: python scripts/bench/upstream.py --port P [--deltas 200] [--slow-deltas 100] [--slow-delay-ms 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

from aiohttp import web

STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
WORDS = ("The rotation check now runs on every write, so the log never grows past its cap; the rotated files "
         "are numbered and the oldest is removed once the count limit is reached. I added a test that writes "
         "past the threshold twice and asserts both the file sizes and the number of backups.").split()


def text_pieces(n: int) -> list[str]:
    return [(WORDS[i % len(WORDS)] + " ") for i in range(n)]


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def anthropic_answer(n: int) -> tuple[list[bytes], bytes]:
    pieces = text_pieces(n)
    usage = {"input_tokens": 23000, "output_tokens": 1, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 21000}
    msg = {"id": "msg_bench_0001", "type": "message", "role": "assistant", "model": "bench-model", "content": [],
           "stop_reason": None, "stop_sequence": None, "usage": usage}
    events = [sse("message_start", {"type": "message_start", "message": msg}),
              sse("ping", {"type": "ping"}),
              sse("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}})]
    events += [sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    events += [sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
               sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                        "stop_sequence": None},
                                     "usage": {"output_tokens": n}}),
               sse("message_stop", {"type": "message_stop"})]
    whole = {**msg, "content": [{"type": "text", "text": "".join(pieces)}], "stop_reason": "end_turn",
             "usage": {**usage, "output_tokens": n}}
    return events, json.dumps(whole).encode()


def openai_answer(n: int) -> tuple[list[bytes], bytes]:
    pieces = text_pieces(n)

    def chunk(delta: dict, finish=None) -> bytes:
        c = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "bench-model",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n"

    usage = {"prompt_tokens": 23000, "completion_tokens": n, "total_tokens": 23000 + n,
             "prompt_tokens_details": {"cached_tokens": 21000}}
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in pieces]
    events.append(chunk({}, "stop"))
    events.append(b"data: " + json.dumps({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1,
                                          "model": "bench-model", "choices": [], "usage": usage},
                                         separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    whole = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "bench-model",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces)},
                          "finish_reason": "stop"}], "usage": usage}
    return events, json.dumps(whole).encode()


class Upstream:
    def __init__(self, deltas: int, slow_deltas: int, slow_delay: float):
        self.answers = {("anthropic", False): anthropic_answer(deltas), ("openai", False): openai_answer(deltas),
                        ("anthropic", True): anthropic_answer(slow_deltas),
                        ("openai", True): openai_answer(slow_deltas)}
        self.slow_delay = slow_delay
        self.counts: dict[str, int] = {}
        self.bad: list[str] = []
        self.open_streams = 0
        self.max_open_streams = 0

    def check(self, kind: str, raw: bytes) -> None:
        try:
            body = json.loads(raw)
            assert isinstance(body.get("model"), str) and body["messages"], "model/messages missing"
            if kind == "openai":
                for m in body["messages"]:
                    assert m["role"] in ("system", "developer", "user", "assistant", "tool"), m["role"]
                    if isinstance(m.get("content"), list):
                        assert all(b.get("type") in ("text", "image_url") for b in m["content"]), "block type"
        except Exception as e:  # noqa: BLE001 - any malformed request counts
            if len(self.bad) < 20:
                self.bad.append(f"{kind}: {e!r}"[:300])

    async def handle(self, request: web.Request, kind: str, slow: bool) -> web.StreamResponse:
        raw = await request.read()
        route = f"{'slow-' if slow else ''}{kind}"
        n = self.counts[route] = self.counts.get(route, 0) + 1
        if n <= 20 or n % 50 == 0:
            self.check(kind, raw)
        events, whole = self.answers[(kind, slow)]
        if not STREAM_RE.search(raw):
            return web.Response(body=whole, content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        self.open_streams += 1
        self.max_open_streams = max(self.max_open_streams, self.open_streams)
        try:
            for ev in events:
                await resp.write(ev)
                if slow:
                    await asyncio.sleep(self.slow_delay)
            await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.open_streams -= 1
        return resp

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"counts": self.counts, "bad": self.bad, "open_streams": self.open_streams,
                                  "max_open_streams": self.max_open_streams})

    async def reset_max(self, request: web.Request) -> web.Response:
        self.max_open_streams = self.open_streams
        return web.json_response({"ok": True})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 << 20)
        for prefix, slow in (("", False), ("/slow", True)):
            app.router.add_post(prefix + "/v1/messages", lambda r, s=slow: self.handle(r, "anthropic", s))
            app.router.add_post(prefix + "/v1/chat/completions", lambda r, s=slow: self.handle(r, "openai", s))
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/stats/reset", self.reset_max)
        return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--deltas", type=int, default=200)
    ap.add_argument("--slow-deltas", type=int, default=100)
    ap.add_argument("--slow-delay-ms", type=float, default=200)
    a = ap.parse_args()
    up = Upstream(a.deltas, a.slow_deltas, a.slow_delay_ms / 1000)
    web.run_app(up.app(), host="127.0.0.1", port=a.port, print=None, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
