"""Anthropic-kind upstreams: passthrough. Request bytes are forwarded untouched when nothing needs
changing, SSE bytes are handed back as they arrive, and errors are mapped once, here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson

from llmproxy.config import ModelSpec, ProviderConfig
from llmproxy.errors import ProxyError, UpstreamError, from_upstream_status
from llmproxy.providers import http
from llmproxy.providers.base import Call, Reply

# client headers worth passing to Anthropic (the gateway contract asks for anthropic-* unchanged)
_FORWARD_PREFIXES = ("anthropic-", "x-claude-code-", "x-stainless-")
_FORWARD_EXACT = ("user-agent", "x-app")
_DROP = ("anthropic-dangerous-direct-browser-access",)
# upstream response headers worth passing back
_BACK_PREFIXES = ("anthropic-ratelimit-", "retry-after", "x-should-retry", "anthropic-organization-id")


def forward_headers(client: dict | object, provider: ProviderConfig, auth: dict[str, str],
                    spec: ModelSpec | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in client.items():  # type: ignore[attr-defined]
        if (k.startswith(_FORWARD_PREFIXES) or k in _FORWARD_EXACT) and k not in _DROP:
            out[k] = v
    if "anthropic-beta" in out and spec is not None and spec.context_window < 1_000_000:
        # Claude Code asks for the 1M-context beta on every Opus request; a rerouted request to a
        # 200k model must not carry it
        betas = [b.strip() for b in out["anthropic-beta"].split(",") if b.strip()]
        kept = [b for b in betas if not b.startswith("context-1m")]
        if kept:
            out["anthropic-beta"] = ",".join(kept)
        else:
            del out["anthropic-beta"]
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


class AnthropicProvider:
    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession):
        self.config = config
        self.session = session
        self.simulated_reason: str | None = None
        self.timeout = aiohttp.ClientTimeout(total=None, connect=config.connect_timeout,
                                             sock_read=config.read_timeout)

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
        return from_upstream_status(status, error_message(raw), self.config.name, retry_after=retry_after)

    async def _post(self, path: str, call: Call, payload: bytes) -> aiohttp.ClientResponse:
        url = self.config.base_url + path + (f"?{call.query}" if call.query else "")
        headers = forward_headers(call.headers, self.config, self._auth(call), call.spec)
        return await http.post(self.session, self.config, url, payload, headers, self.timeout, self._on_status)

    async def messages(self, call: Call) -> Reply:
        payload = call.raw if call.raw is not None else orjson.dumps(call.body)
        resp = await self._post("/v1/messages", call, payload)
        back = {k: v for k, v in resp.headers.items() if k.lower().startswith(_BACK_PREFIXES)}
        if rid := resp.headers.get("request-id"):
            back["x-upstream-request-id"] = rid
        if call.stream and resp.content_type == "text/event-stream":
            return Reply(status=200, headers=back, stream=await self._primed(resp), close=resp.close)
        return Reply(status=resp.status, headers=back, body=await http.read_all(resp, self.config))

    async def _primed(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """Read the first chunk before the client gets a 200: Anthropic may answer 200 and then at once an
        ``event: error`` (e.g. overloaded); that is still an error before the first byte, so it may fall back."""
        it = http.iter_chunks(resp, self.config)
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            raise UpstreamError(f"{self.config.name}: empty stream") from None
        if first.lstrip().startswith(b"event: error"):
            await it.aclose()
            _, _, data = first.partition(b"data:")
            try:
                err = orjson.loads(data.strip().split(b"\n")[0]).get("error") or {}
            except (orjson.JSONDecodeError, AttributeError):
                err = {}
            status = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}.get(err.get("type"), 502)
            raise from_upstream_status(status, str(err.get("message", "stream error")), self.config.name)

        async def rest() -> AsyncIterator[bytes]:
            yield first
            async for chunk in it:
                yield chunk

        return rest()

    async def count_tokens(self, call: Call) -> int:
        payload = call.raw if call.raw is not None else orjson.dumps(call.body)
        resp = await self._post("/v1/messages/count_tokens", call, payload)
        try:
            data = orjson.loads(await http.read_all(resp, self.config))
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name}: count_tokens answered something that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("input_tokens"), int):
            raise UpstreamError(f"{self.config.name}: count_tokens answer has no input_tokens")
        return data["input_tokens"]
