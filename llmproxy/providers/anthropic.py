"""Anthropic-kind upstreams: passthrough. Request bytes are forwarded untouched when nothing needs
changing; the event stream is decoded once into frames that keep the upstream's bytes, so the client
receives exactly what the upstream sent; errors are mapped once, here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
import orjson

from llmproxy.config import ModelSpec, ProviderConfig
from llmproxy.convert.events import message_events
from llmproxy.convert.thinking import strip_foreign_thinking
from llmproxy.errors import ProxyError, UpstreamError, from_upstream_status
from llmproxy.protocol.sse import Frame
from llmproxy.providers import http
from llmproxy.providers.base import Call, Reply
from llmproxy.providers.batches import MessageBatches

# client headers worth passing to Anthropic (the gateway contract asks for anthropic-* unchanged);
# names are compared lower-cased: Claude Code sends X-Claude-Code-Session-Id, X-Stainless-*, User-Agent
_FORWARD_PREFIXES = ("anthropic-", "x-claude-code-", "x-stainless-")
_FORWARD_EXACT = ("user-agent", "x-app")
_DROP = ("anthropic-dangerous-direct-browser-access",)
# upstream response headers worth passing back
_BACK_PREFIXES = ("anthropic-ratelimit-", "retry-after", "x-should-retry", "anthropic-organization-id")
# the only query parameter the Messages API defines; anything else a client adds stays here
_FORWARD_QUERY = ("beta",)
_STREAM_ERROR_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500,
                        "timeout_error": 504, "request_too_large": 413, "invalid_request_error": 400}


def _all_values(client: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(client, "getall", None)
    return list(getall(name, ())) if getall else [v for k, v in client.items() if k.lower() == name]


def forward_headers(client: Mapping[str, str], provider: ProviderConfig, auth: dict[str, str],
                    spec: ModelSpec | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in client.items():
        name = k.lower()
        if (name.startswith(_FORWARD_PREFIXES) or name in _FORWARD_EXACT) and name not in _DROP:
            out[name] = v
    betas = [b.strip() for line in _all_values(client, "anthropic-beta") for b in line.split(",") if b.strip()]
    if spec is not None and spec.context_window < 1_000_000:
        # Claude Code asks for the 1M-context beta on every Opus request; a rerouted request to a
        # 200k model must not carry it
        betas = [b for b in betas if not b.startswith("context-1m")]
    out.pop("anthropic-beta", None)
    if betas:  # every line's flags, once each, in order (a client may send the header more than once)
        out["anthropic-beta"] = ",".join(dict.fromkeys(betas))
    out.setdefault("anthropic-version", "2023-06-01")
    out["content-type"] = "application/json"
    out.update(provider.headers)
    out.update(auth)
    return out


def error_message(raw: bytes) -> str:
    try:
        data = orjson.loads(raw)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    except (orjson.JSONDecodeError, AttributeError):
        pass
    text = raw[:300].decode("utf-8", errors="replace").strip()
    return text or "empty error body"


def _error_event(data: object) -> tuple[int, str]:
    err = data.get("error") if isinstance(data, dict) else None
    err = err if isinstance(err, dict) else {}
    return _STREAM_ERROR_STATUS.get(str(err.get("type")), 502), str(err.get("message") or "stream error")


class AnthropicProvider(MessageBatches):
    """Messages and count_tokens passthrough; Message Batches (``BatchProvider``) from ``MessageBatches``."""

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession):
        self.config = config
        self.session = session
        self.simulated_reason: str | None = None

    def batch_headers(self) -> dict[str, str]:
        """The batch API's headers: the provider's own key only (a batch runs after its client has gone)."""
        key = self.config.api_key()
        return forward_headers({}, self.config, {"x-api-key": key} if key else {})

    def _auth(self, call: Call) -> dict[str, str]:
        """The provider's own key as x-api-key; or, with forward_client_key, the client's credential in the
        style it came in (a Claude subscription's OAuth token must stay an Authorization: Bearer)."""
        if key := self.config.api_key():
            return {"x-api-key": key}
        if self.config.forward_client_key and call.client_key:
            if "x-api-key" not in call.headers and call.headers.get("authorization", "")[:7].lower() == "bearer ":
                return {"authorization": f"Bearer {call.client_key}"}
            return {"x-api-key": call.client_key}
        return {}

    def _on_status(self, status: int, raw: bytes, retry_after: str | None) -> ProxyError:
        return http.status_error(self.config, status, error_message(raw), retry_after)

    async def _post(self, path: str, call: Call, payload: http.SentOnce) -> aiohttp.ClientResponse:
        params = {k: v for k, v in call.query.items() if k in _FORWARD_QUERY}
        headers = forward_headers(call.headers, self.config, self._auth(call), call.spec)
        return await http.post(self.session, self.config, self.config.base_url + path, payload, headers,
                               self._on_status, params=params or None)

    def _payload(self, call: Call) -> http.SentOnce:
        body = strip_foreign_thinking(call.body)  # our own signed thinking never reaches Anthropic
        if body is call.body and call.raw is not None:
            return http.SentOnce(call.raw, call.on_sent)
        data = http.wire_bytes(body)
        if body is call.body and call.retry_copy is not None and call.patch is not None:
            call.retry_copy.keep(data, call.patch)  # the client's request is these bytes, patched back
        return http.SentOnce(data, call.on_sent)

    async def messages(self, call: Call) -> Reply:
        return await http.first_response(self._open(call), self.config, call.spec, whole_tokens=call.whole_tokens)

    async def _open(self, call: Call) -> Reply:
        payload = self._payload(call)
        call.release()
        resp = await self._post("/v1/messages", call, payload)
        back = {k: v for k, v in resp.headers.items() if k.lower().startswith(_BACK_PREFIXES)}
        if rid := resp.headers.get("request-id"):
            back["x-upstream-request-id"] = rid
        if call.stream and resp.content_type == "text/event-stream":
            first, stream = await http.primed(http.frames(resp, self.config))
            self._check_start(first, resp)
            return Reply(status=200, headers=back, stream=stream, close=resp.close)
        raw, msg = await http.read_json(resp, self.config)
        if not isinstance(msg, dict) or msg.get("type") == "error" or not isinstance(msg.get("content"), list):
            if isinstance(msg, dict) and msg.get("type") == "error":
                raise from_upstream_status(*_error_event(msg), self.config.name)
            raise UpstreamError(f"{self.config.name}: upstream answered JSON that is not a message")
        if call.stream:  # the upstream ignored stream: true; the client still gets a proper event stream
            try:
                frames = [Frame(name, data) for name, data in message_events(msg)]
            except (KeyError, TypeError, AttributeError):
                raise UpstreamError(f"{self.config.name}: upstream answered a malformed message") from None
            return Reply(status=200, headers=back, stream=_replay(frames))
        return Reply(status=resp.status, headers=back, message=msg, raw=raw)

    def _check_start(self, first: list[Frame], resp: aiohttp.ClientResponse) -> None:
        """Anthropic may answer 200 and then at once an ``event: error`` (e.g. overloaded): still an error
        before the first byte reached the client, so it may fall back. So is a stream that starts wrong."""
        head = next((f for f in first if f.event != "ping"), None)
        if head is not None and head.event == "error":
            resp.close()
            status, message = _error_event(head.data)
            raise from_upstream_status(status, message, self.config.name)
        if head is None and not first or head is not None and head.event != "message_start":
            resp.close()
            raise UpstreamError(f"{self.config.name}: the event stream did not start with message_start")

    async def count_tokens(self, call: Call) -> int:
        resp = await self._post("/v1/messages/count_tokens", call, self._payload(call))
        _, data = await http.read_json(resp, self.config)
        if not isinstance(data, dict) or not isinstance(data.get("input_tokens"), int):
            raise UpstreamError(f"{self.config.name}: count_tokens answer has no input_tokens")
        return data["input_tokens"]


async def _replay(frames: list[Frame]) -> AsyncIterator[list[Frame]]:
    yield frames
