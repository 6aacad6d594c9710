"""Message Batches as a provider capability. ``BatchProvider`` is what a provider with a batch API of its own
offers, beside ``ChatProvider``; ``MessageBatches`` is Anthropic's (``/v1/messages/batches``), mixed into the
Anthropic provider. Its requests go through ``providers/http.py`` like every other upstream request: the
provider's timeouts (``ttfb_timeout`` to the response, ``idle_timeout`` between reads, ``total_timeout`` in
all), its error mapping, and no redirect followed (the key would follow it). A batch's ``results_url`` is
fetched only on the provider's own origin (the scheme, host and port of ``base_url``): anywhere else is an
error naming that address, and the key is never sent there."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import aiohttp
import orjson

from llmproxy.config import ProviderConfig
from llmproxy.errors import UpstreamError
from llmproxy.providers import http

#: an upstream batch id as it may appear in a URL path
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
#: the longest result line accepted (one item's whole answer)
MAX_RESULT_LINE = 64 * 1024 * 1024


@runtime_checkable
class BatchProvider(Protocol):
    """A provider that runs Message Batches itself. Every method raises the ProxyError family."""

    async def create_batch(self, requests: list[dict]) -> dict:
        """Submit ``[{custom_id, params}]``; the upstream's batch object (its ``id`` checked)."""

    async def get_batch(self, batch_id: str) -> dict:
        """The upstream's batch object now."""

    async def cancel_batch(self, batch_id: str) -> None:
        """Ask the upstream to cancel the batch."""

    def batch_results(self, batch: dict) -> AsyncIterator[dict]:
        """The result rows (``{custom_id, result}``) of an ended batch object, as they arrive."""


class ForeignResultsURL(UpstreamError):
    """The upstream named a ``results_url`` off its own origin: not fetched, and retrying will not change it."""

    retryable = False


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in; a port that does not parse is None."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


async def get(session: aiohttp.ClientSession, provider: ProviderConfig, url: str, headers: dict[str, str],
              on_status: http.StatusMapper) -> aiohttp.ClientResponse:
    """GET as ``http.post`` POSTs: the provider's timeouts, transport errors mapped, no redirect followed, an
    error status raised; a response below 300 is returned open."""
    try:
        resp = await session.get(url, headers=headers, timeout=http.client_timeout(provider), allow_redirects=False)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise http.map_transport_error(exc, provider) from exc
    await http.check_status(resp, provider, on_status)
    return resp


class MessageBatches:
    """``BatchProvider`` over Anthropic's Message Batches API. The class it is mixed into provides ``config``,
    ``session``, ``_on_status`` (error status -> ProxyError) and ``batch_headers()`` (the provider's key)."""

    config: ProviderConfig
    session: aiohttp.ClientSession
    _on_status: http.StatusMapper
    batch_headers: Callable[[], dict[str, str]]

    def _batch_url(self, *parts: str) -> str:
        return "/".join((self.config.base_url + "/v1/messages/batches", *parts))

    async def _batch_open(self, method: str, url: str, body: object = None) -> aiohttp.ClientResponse:
        if method == "POST":
            request = http.post(self.session, self.config, url, http.SentOnce(http.wire_bytes(body)),
                                self.batch_headers(), self._on_status)
        else:
            request = get(self.session, self.config, url, self.batch_headers(), self._on_status)
        return await http.first_response(request, self.config, None)

    async def _batch_object(self, method: str, url: str, body: object = None) -> dict:
        _, data = await http.read_json(await self._batch_open(method, url, body), self.config)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not _BATCH_ID.fullmatch(data["id"]):
            raise UpstreamError(f"{self.config.name}: the batch API answered something that is not a batch object")
        return data

    async def create_batch(self, requests: list[dict]) -> dict:
        return await self._batch_object("POST", self._batch_url(), {"requests": requests})

    async def get_batch(self, batch_id: str) -> dict:
        return await self._batch_object("GET", self._batch_url(batch_id))

    async def cancel_batch(self, batch_id: str) -> None:
        await self._batch_object("POST", self._batch_url(batch_id, "cancel"), {})

    def _batch_results_url(self, batch: dict) -> str:
        """Where the batch's results are: its ``results_url`` when it is on the provider's own origin."""
        url = batch.get("results_url") or self._batch_url(str(batch["id"]), "results")
        if not isinstance(url, str) or origin(url) != origin(self.config.base_url):
            own = "{}://{}:{}".format(*origin(self.config.base_url))
            raise ForeignResultsURL(f"{self.config.name}: the batch's results_url {str(url)[:200]!r} is not on the "
                                    f"provider's own origin ({own}, from base_url); it was not fetched (the "
                                    f"provider's key is only sent to its own address)")
        return url

    async def batch_results(self, batch: dict) -> AsyncIterator[dict]:
        resp = await self._batch_open("GET", self._batch_results_url(batch))
        async for line in json_lines(resp, self.config):
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise UpstreamError(f"{self.config.name}: a batch result line is not JSON") from None
            if isinstance(row, dict):
                yield row


async def json_lines(resp: aiohttp.ClientResponse, provider: ProviderConfig) -> AsyncIterator[bytes]:
    """The non-blank lines of a JSONL body as they arrive, at most ``idle_timeout`` between two reads (time
    the consumer spends on a line is not counted); the response is closed at the end or when the consumer
    stops. A line is joined once, however many reads it took."""
    watch = http.IdleWatch(resp, provider)
    part: list[bytes] = []  # the line being read, in the pieces it arrived in
    size = 0
    try:
        watch.waiting = True
        async for chunk in resp.content.iter_any():
            watch.waiting = False
            start = 0
            while (end := chunk.find(b"\n", start)) != -1:
                line = b"".join((*part, chunk[start:end])) if part else chunk[start:end]
                part, size, start = [], 0, end + 1
                if line.strip():
                    yield line
            if start < len(chunk):
                part.append(chunk[start:])
                size += len(chunk) - start
                if size > MAX_RESULT_LINE:
                    raise UpstreamError(f"{provider.name}: a batch result line is longer than {MAX_RESULT_LINE} bytes")
            watch.waiting = True
        if (line := b"".join(part)).strip():
            yield line
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise http.map_transport_error(exc, provider) from exc
    finally:
        watch.cancel()
        resp.close()
