"""OpenAI-compatible upstreams (OpenRouter, DeepSeek, Groq, Cerebras, OpenAI, Ollama, vLLM, LM Studio):
one adapter, per-provider quirks from config. Anthropic request in -> Chat Completions upstream ->
Anthropic events (frames) out. Also a passthrough for the inbound OpenAI surface (no double conversion)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson

from llmproxy.config import ProviderConfig
from llmproxy.convert.events import coalesce, message_events
from llmproxy.convert.quirks import Quirks
from llmproxy.convert.request import to_openai
from llmproxy.convert.stream import StreamConverter, message_from_response
from llmproxy.errors import ProxyError, UpstreamError, from_openai_error
from llmproxy.protocol import tokens
from llmproxy.protocol.sse import Frame
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


def map_error(status: int, raw: bytes, provider: ProviderConfig, retry_after: str | None) -> ProxyError:
    msg, code = error_message(raw)
    if status == 401:  # names the variable holding the rejected key
        return http.status_error(provider, status, msg, retry_after)
    return from_openai_error(status, msg, code, provider.name, retry_after)


class OpenAIProvider:
    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession):
        self.config = config
        self.session = session
        self.quirks: Quirks = config.quirks
        self.simulated_reason: str | None = None

    def _headers(self) -> dict[str, str]:
        h = {"content-type": "application/json", **self.config.headers}
        if key := self.config.api_key():
            h["authorization"] = f"Bearer {key}"
        return h

    async def _post(self, payload: http.SentOnce) -> aiohttp.ClientResponse:
        return await http.post(self.session, self.config, self.config.base_url + "/chat/completions",
                               payload, self._headers(),
                               lambda status, raw, retry_after: map_error(status, raw, self.config, retry_after))

    async def _read_json(self, resp: aiohttp.ClientResponse) -> dict:
        raw, data = await http.read_json(resp, self.config)
        if isinstance(data, dict) and data.get("error") and not data.get("choices"):  # 200 + error body
            code = data["error"].get("code") if isinstance(data["error"], dict) else None
            status = code if isinstance(code, int) and 400 <= code < 600 else 502
            raise map_error(status, raw, self.config, None)
        if not isinstance(data, dict):
            raise UpstreamError(f"{self.config.name}: upstream answered JSON that is not an object")
        return data

    # ------------------------------------------------------------------------------- Anthropic surface
    async def messages(self, call: Call) -> Reply:
        return await http.first_response(self._messages(call), self.config, call.spec,
                                         whole_tokens=call.whole_tokens)

    async def _messages(self, call: Call) -> Reply:
        spec = call.spec
        # the converted request is bytes before anything is awaited: its objects are not held while waiting
        payload = http.SentOnce(http.wire_bytes(to_openai(
            call.body, model=call.target.model, provider=self.config.name, quirks=self.quirks,
            max_output=spec.max_output if spec else None, images=spec.images if spec else True)), call.on_sent)
        stops = tuple(call.body.get("stop_sequences") or ())
        call.release()
        resp = await self._post(payload)
        if call.stream and resp.content_type == "text/event-stream":
            conv = StreamConverter(call.target.model, input_tokens=call.estimated_tokens,
                                   stop_sequences=stops, provider=self.config.name,
                                   stream_tool_args=self.quirks.stream_tool_args)
            _, stream = await http.primed(self._convert(resp, conv))
            return Reply(stream=stream, close=resp.close)
        msg = message_from_response(await self._read_json(resp), call.target.model, stop_sequences=stops,
                                    provider=self.config.name)
        if call.stream:  # asked for a stream, got JSON: replay the message as events
            return Reply(stream=_replay(msg))
        return Reply(message=msg)

    async def _convert(self, resp: aiohttp.ClientResponse, conv: StreamConverter) -> AsyncIterator[list[Frame]]:
        """Chat Completions chunks in, Anthropic events out: each upstream event decoded once, each of ours
        built as a frame the server encodes once. The text deltas of chunks that arrived together are merged
        (``coalesce``): they are written to the client together anyway."""
        done = False
        async for batch in http.payloads(resp, self.config):
            chunks: list[dict] = []
            for data in batch:
                if data == "[DONE]":
                    done = True
                    break
                if isinstance(data, dict):
                    chunks.append(data)
            events = conv.feed_many(chunks)
            if events:
                yield [Frame(n, d) for n, d in coalesce(events)]
            if done:
                break
        if not done and conv.finish_reason is None:
            raise UpstreamError(f"{self.config.name}: stream ended before it finished")
        yield [Frame(n, d) for n, d in conv.finish()]

    async def count_tokens(self, call: Call) -> int:
        return call.estimated_tokens or tokens.estimate(call.body, len(orjson.dumps(call.body)))

    # ---------------------------------------------------------------------------- OpenAI passthrough
    async def chat(self, request: dict, model: str, on_sent: Callable[[], None] | None = None) -> Reply:
        """Forward an inbound Chat Completions request as it is (model replaced), no conversion; the stream
        yields the upstream's chunks as frames that keep their bytes. ``on_sent``: as ``Call.on_sent``."""
        payload = {**request, "model": model}
        spec = self.config.model(model)
        caps = [c for c in (spec.max_output if spec else 0, self.quirks.max_tokens_cap) if c]
        cap = min(caps) if caps else 0
        for field in ("max_tokens", "max_completion_tokens"):
            if cap and isinstance(payload.get(field), int) and payload[field] > cap:
                payload[field] = cap
        whole = 0 if payload.get("stream") else int(payload.get("max_completion_tokens") or payload.get("max_tokens")
                                                    or 4096)
        return await http.first_response(self._chat(payload, on_sent), self.config, spec, whole_tokens=whole)

    async def _chat(self, payload: dict, on_sent: Callable[[], None] | None = None) -> Reply:
        stream = bool(payload.get("stream"))
        resp = await self._post(http.SentOnce(http.wire_bytes(payload), on_sent))
        if stream and resp.content_type == "text/event-stream":
            _, stream = await http.primed(http.frames(resp, self.config, strict=False))
            return Reply(stream=stream, close=resp.close)
        return Reply(message=await self._read_json(resp))


async def _replay(msg: dict) -> AsyncIterator[list[Frame]]:
    yield [Frame(n, d) for n, d in message_events(msg)]
