"""A fault-injecting upstream: one real aiohttp server on 127.0.0.1 that speaks both provider kinds
(``POST /v1/messages`` as an Anthropic-kind upstream, ``POST /v1/chat/completions`` as an OpenAI-kind one)
and answers each request according to ``mode`` (or the next entry of ``script``).

Modes (``FAULTS`` lists the ones the matrix runs; ``ok`` answers normally):

``hang``            accept the request and never answer
``headers_hang``    send 200 headers (event-stream or JSON, as asked), then nothing
``hang_mid``        stream the start and some text, then fall silent (JSON: half the body, then silence)
``cut_mid_frame``   stream some text, then half of the next frame, then drop the connection (JSON: half the body)
``invalid_json``    200 with a body that is not JSON (for a stream request too, as ``application/json``)
``malformed_start`` the first event is not JSON (a JSON request gets that event stream instead of JSON)
``malformed_mid``   a frame in the middle of the stream is not JSON (JSON request: a clean answer)
``truncated``       the stream ends cleanly without ``message_stop`` / ``[DONE]`` / a finish reason
                    (JSON: a clean EOF after half the body)
``429`` / ``429ms`` a 429 with ``retry-after: 0.1`` / ``retry-after-ms: 100``
``500`` ``503`` ``529`` ``401`` ``400`` ``404``  that status with the kind's error body
``huge``            a complete answer of about ``HUGE_BYTES`` of text
``redirect``        307 to ``/leak`` on this server, which counts what reaches it (``leaked``): nothing must

``refuse`` is not a mode of the server: it is a URL on a closed port (``closed_url()``).
"""

from __future__ import annotations

import asyncio
import json
import socket

from aiohttp import web

TEXT = "Hello from the fault upstream, one two three four five six seven eight."
HUGE_BYTES = 2 * 1024 * 1024
STATUS_MODES = {"429": 429, "429ms": 429, "500": 500, "503": 503, "529": 529, "401": 401, "400": 400, "404": 404}
_ANTHROPIC_ERROR_TYPES = {429: "rate_limit_error", 500: "api_error", 503: "overloaded_error", 529: "overloaded_error",
                          401: "authentication_error", 400: "invalid_request_error", 404: "not_found_error"}


def closed_url() -> str:
    """An http URL on a loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _data(data: dict | str) -> bytes:
    return b"data: " + (data.encode() if isinstance(data, str) else json.dumps(data).encode()) + b"\n\n"


def _words(text: str) -> list[str]:
    if len(text) > 10_000:  # huge: deltas of 4 KiB
        return [text[i:i + 4096] for i in range(0, len(text), 4096)]
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


class FaultUpstream:
    def __init__(self, name: str = "fault") -> None:
        self.name = name
        self.mode = "ok"
        self.script: list[str] = []      # modes for the next requests, in order; then ``mode``
        self.hits = 0
        self.leaked = 0                   # requests that followed a redirect to /leak
        self.bodies: list[dict] = []      # every request body received, in order
        self.url = ""
        self.delay = 0.0                  # ok mode: seconds between stream events (a slow upstream)
        self.retry_after: dict[str, str] = {}  # replaces the 429 modes' retry-after headers when set
        self._server: web.AppRunner | None = None

    # --------------------------------------------------------------------------------------- server
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/messages", self.anthropic)
        app.router.add_post("/v1/chat/completions", self.openai)
        app.router.add_post("/leak", self.leak)
        return app

    async def leak(self, request: web.Request) -> web.Response:
        self.leaked += 1
        return web.json_response({"error": "a redirect was followed"}, status=418)

    def _redirect(self) -> web.Response:
        return web.Response(status=307, headers={"location": f"{self.url}/leak"})

    async def start(self) -> FaultUpstream:
        runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._server = runner
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.cleanup()

    def _next_mode(self) -> str:
        self.hits += 1
        return self.script.pop(0) if self.script else self.mode

    # ------------------------------------------------------------------------------------ anthropic
    def _anthropic_events(self, model: str, text: str) -> list[bytes]:
        usage = {"input_tokens": 11, "output_tokens": 1}
        msg = {"id": "msg_fault", "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage}
        out = [_sse("message_start", {"type": "message_start", "message": msg}),
               _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}})]
        out += [_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "text_delta", "text": w}}) for w in _words(text)]
        out += [_sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
                _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                          "stop_sequence": None},
                                       "usage": {"output_tokens": 9}}),
                _sse("message_stop", {"type": "message_stop"})]
        return out

    @staticmethod
    def _anthropic_message(model: str, text: str) -> dict:
        return {"id": "msg_fault", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 11, "output_tokens": 9}}

    async def _receive(self, request: web.Request) -> tuple[dict, str, str]:
        """(body, mode, model) for this request; its body is recorded."""
        body = await request.json()
        self.bodies.append(body)
        return body, self._next_mode(), body.get("model", "m")

    async def anthropic(self, request: web.Request) -> web.StreamResponse:
        body, mode, model = await self._receive(request)
        if mode == "redirect":
            return self._redirect()
        if mode in STATUS_MODES:
            status = STATUS_MODES[mode]
            return web.json_response({"type": "error", "error": {"type": _ANTHROPIC_ERROR_TYPES[status],
                                                                 "message": f"fault {mode}"}},
                                     status=status, headers=self.retry_after or _retry_headers(mode))
        text = "x" * HUGE_BYTES if mode == "huge" else TEXT
        events = self._anthropic_events(model, text)
        if mode == "malformed_start":
            events[0] = b'event: message_start\ndata: {"type": "message_start", "message": {\n\n'
        elif mode == "malformed_mid":
            events.insert(4, b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n')
        elif mode == "truncated":
            events = events[:-1]  # no message_stop
        json_body = json.dumps(self._anthropic_message(model, text)).encode()
        return await self._answer(request, mode, bool(body.get("stream")), events, json_body)

    # --------------------------------------------------------------------------------------- openai
    @staticmethod
    def _openai_chunks(model: str, text: str) -> list[bytes]:
        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
            c = {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage:
                c["usage"] = usage
            return _data(c)

        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"content": w}) for w in _words(text)]
        out += [chunk({}, "stop", {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}),
                _data("[DONE]")]
        return out

    @staticmethod
    def _openai_completion(model: str, text: str) -> dict:
        return {"id": "chatcmpl-fault", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}}

    async def openai(self, request: web.Request) -> web.StreamResponse:
        body, mode, model = await self._receive(request)
        if mode == "redirect":
            return self._redirect()
        if mode in STATUS_MODES:
            status = STATUS_MODES[mode]
            return web.json_response({"error": {"message": f"fault {mode}", "type": "error", "code": None}},
                                     status=status, headers=self.retry_after or _retry_headers(mode))
        text = "x" * HUGE_BYTES if mode == "huge" else TEXT
        chunks = self._openai_chunks(model, text)
        if mode == "malformed_start":
            chunks = [b'data: {"id": "chatcmpl-fault", "choices": [{"delta": \n\n',
                      b"data: <html>502 Bad Gateway</html>\n\n"]
        elif mode == "malformed_mid":
            chunks.insert(4, b'data: {"id": "chatcmpl-fault", "choices": [{"index": 0, "delta": {"cont\n\n')
        elif mode == "truncated":
            chunks = chunks[:-2]  # no finish_reason, no [DONE]
        json_body = json.dumps(self._openai_completion(model, text)).encode()
        return await self._answer(request, mode, bool(body.get("stream")), chunks, json_body)

    # ------------------------------------------------------------------------------------- faults
    async def _answer(self, request: web.Request, mode: str, stream: bool, frames: list[bytes],
                      json_body: bytes) -> web.StreamResponse:
        if mode == "hang":
            await asyncio.sleep(3600)  # the client's disconnect cancels this handler
        if mode == "slow_json":  # a non-streaming answer that takes a while to write, then arrives whole
            await asyncio.sleep(1.0)
            return web.Response(body=json_body, content_type="application/json")
        if mode == "invalid_json":
            return web.Response(body=b'{"type": "message", "content": [oops', content_type="application/json")
        sse_answer = stream or mode == "malformed_start"
        if not sse_answer:
            if mode == "truncated":
                half = json_body[:len(json_body) // 2]
                return web.Response(body=half, content_type="application/json")
            if mode in ("ok", "huge", "malformed_mid"):
                return web.Response(body=json_body, content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream" if sse_answer else "application/json"})
        await resp.prepare(request)
        try:
            if mode == "headers_hang":
                resp._payload_writer.send_headers()  # type: ignore[union-attr]  # headers now, body never
                await asyncio.sleep(3600)
            if not sse_answer:  # hang_mid / cut_mid_frame of a JSON answer
                await resp.write(json_body[:len(json_body) // 2])
                if mode == "hang_mid":
                    await asyncio.sleep(3600)
                await asyncio.sleep(0.02)
                request.transport.close()  # type: ignore[union-attr]
                return resp
            if mode in ("hang_mid", "cut_mid_frame", "malformed_mid", "truncated"):
                # the start and some text first, on their own: the proxy has sent them to its client
                # before the fault arrives
                await resp.write(b"".join(frames[:4]))
                frames = frames[4:]
                await asyncio.sleep(0.05)
            if mode == "hang_mid":
                await asyncio.sleep(3600)
            if mode == "cut_mid_frame":
                await resp.write(frames[0][:len(frames[0]) // 2])
                await asyncio.sleep(0.05)
                request.transport.close()  # type: ignore[union-attr]  # abrupt: no terminating chunk
                return resp
            for i, frame in enumerate(frames):
                await resp.write(frame)
                if self.delay and i < len(frames) - 1:
                    await asyncio.sleep(self.delay)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        return resp


def _retry_headers(mode: str) -> dict[str, str]:
    if mode == "429":
        return {"retry-after": "0.1"}
    if mode == "429ms":
        return {"retry-after-ms": "100"}
    return {}
