"""OpenAI-compatible upstreams (OpenRouter, DeepSeek, Groq, Cerebras, OpenAI, Ollama, vLLM, LM Studio):
one adapter, per-provider quirks from config. Anthropic request in -> Chat Completions upstream ->
Anthropic events out. Also a passthrough for the inbound OpenAI surface (no double conversion)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson

from llmproxy.config import ProviderConfig
from llmproxy.convert.quirks import Quirks
from llmproxy.convert.request import to_openai
from llmproxy.convert.stream import StreamConverter, message_events, message_from_response
from llmproxy.errors import ProxyError, UpstreamError, from_upstream_status
from llmproxy.protocol import sse, tokens
from llmproxy.providers import http
from llmproxy.providers.base import Call, Reply


def error_message(raw: bytes) -> tuple[str, str | None]:
    """(message, code) from an OpenAI-style error body (or whatever the upstream sent)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return (raw[:300].decode("utf-8", "replace").strip() or "empty error body"), None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = err.get("code")
        return str(err.get("message") or err), str(code) if code is not None else None
    if isinstance(err, str):
        return err, None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"]), None
    return raw[:300].decode("utf-8", "replace"), None


def map_error(status: int, raw: bytes, provider: str, retry_after: str | None) -> ProxyError:
    msg, code = error_message(raw)
    if code == "context_length_exceeded" or "maximum context length" in msg:
        status, msg = 400, f"prompt is too long: {msg}"
    return from_upstream_status(status, msg, provider, retry_after=retry_after)


async def _primed(gen: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """Read the first piece before committing to a 200, so an immediate upstream error can still fall back."""
    first = await gen.__anext__()

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for piece in gen:
            yield piece

    return first, rest()


class OpenAIProvider:
    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession):
        self.config = config
        self.session = session
        self.quirks = Quirks.from_config(config.quirks)
        self.simulated_reason: str | None = None
        self.timeout = aiohttp.ClientTimeout(total=None, connect=config.connect_timeout,
                                             sock_read=config.read_timeout)

    def _headers(self) -> dict[str, str]:
        h = {"content-type": "application/json", **self.config.headers}
        if key := self.config.api_key():
            h["authorization"] = f"Bearer {key}"
        return h

    async def _post(self, payload: dict) -> aiohttp.ClientResponse:
        return await http.post(self.session, self.config, self.config.base_url + "/chat/completions",
                               orjson.dumps(payload), self._headers(), self.timeout,
                               lambda status, raw, retry_after: map_error(status, raw, self.config.name, retry_after))

    async def _read_json(self, resp: aiohttp.ClientResponse) -> dict:
        raw = await http.read_all(resp, self.config)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name}: upstream answered something that is not JSON") from None
        if isinstance(data, dict) and data.get("error") and not data.get("choices"):  # 200 + error body
            code = data["error"].get("code") if isinstance(data["error"], dict) else None
            status = code if isinstance(code, int) and 400 <= code < 600 else 502
            raise map_error(status, raw, self.config.name, None)
        return data

    # ------------------------------------------------------------------------------- Anthropic surface
    async def messages(self, call: Call) -> Reply:
        spec = call.spec
        payload = to_openai(call.body, model=call.target.model, provider=self.config.name, quirks=self.quirks,
                            max_output=spec.max_output if spec else None)
        resp = await self._post(payload)
        stops = tuple(call.body.get("stop_sequences") or ())
        if call.stream and resp.content_type == "text/event-stream":
            conv = StreamConverter(call.target.model, input_tokens=int(call.label.get("estimated_tokens") or 0),
                                   stop_sequences=stops, provider=self.config.name,
                                   stream_tool_args=self.quirks.stream_tool_args)
            _, stream = await _primed(self._convert(resp, conv))
            return Reply(stream=stream, close=resp.close)
        msg = message_from_response(await self._read_json(resp), call.target.model, stop_sequences=stops,
                                    provider=self.config.name)
        if call.stream:  # asked for a stream, got JSON: replay the message as events
            return Reply(stream=_replay(msg))
        return Reply(body=orjson.dumps(msg))

    async def _convert(self, resp: aiohttp.ClientResponse, conv: StreamConverter) -> AsyncIterator[bytes]:
        dec = sse.SSEDecoder()
        done = False
        try:
            async for chunk in http.iter_chunks(resp, self.config):
                out = []
                for _event, data in dec.feed(chunk):
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    try:
                        obj = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(obj, dict):
                        out += [sse.encode(n, d) for n, d in conv.feed(obj)]
                if out:
                    yield b"".join(out)
                if done:
                    break
        finally:
            resp.close()
        if not done and conv.finish_reason is None:
            raise UpstreamError(f"{self.config.name}: stream ended before it finished")
        yield b"".join(sse.encode(n, d) for n, d in conv.finish())

    async def count_tokens(self, call: Call) -> int:
        return int(call.label.get("estimated_tokens") or tokens.estimate(call.body, len(orjson.dumps(call.body))))

    # ---------------------------------------------------------------------------- OpenAI passthrough
    async def chat(self, request: dict, model: str) -> Reply:
        """Forward an inbound Chat Completions request as it is (model replaced), no conversion."""
        payload = {**request, "model": model}
        spec = self.config.model(model)
        caps = [c for c in (spec.max_output if spec else 0, self.quirks.max_tokens_cap) if c]
        cap = min(caps) if caps else 0
        for field in ("max_tokens", "max_completion_tokens"):
            if cap and isinstance(payload.get(field), int) and payload[field] > cap:
                payload[field] = cap
        resp = await self._post(payload)
        if payload.get("stream") and resp.content_type == "text/event-stream":
            return Reply(stream=http.iter_chunks(resp, self.config), close=resp.close,
                         headers={"content-type": "text/event-stream"})
        data = await self._read_json(resp)
        return Reply(body=orjson.dumps(data))


async def _replay(msg: dict) -> AsyncIterator[bytes]:
    yield b"".join(sse.encode(n, d) for n, d in message_events(msg))
