"""The upstream HTTP boundary shared by every provider kind: transport failures and error statuses are
mapped to the ProxyError family here, once (the httpx idea: one transport, errors mapped at the edge)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp

from llmproxy.config import ProviderConfig
from llmproxy.errors import ProxyError, UpstreamError, UpstreamTimeout

#: (status, raw error body, retry-after header) -> the error to raise
StatusMapper = Callable[[int, bytes, "str | None"], ProxyError]


def map_transport_error(exc: BaseException, provider: ProviderConfig) -> ProxyError:
    """aiohttp/asyncio transport failures -> our errors; the message names the provider, never a key."""
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"{provider.name}: upstream timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(f"{provider.name}: cannot connect to {provider.base_url} "
                             f"({exc.os_error.strerror or exc.os_error})")
    return UpstreamError(f"{provider.name}: upstream connection failed ({type(exc).__name__})")


async def post(session: aiohttp.ClientSession, provider: ProviderConfig, url: str, payload: bytes,
               headers: dict[str, str], timeout: aiohttp.ClientTimeout, on_status: StatusMapper
               ) -> aiohttp.ClientResponse:
    """POST; a response below 400 is returned open (the caller reads or streams it), anything else raises."""
    try:
        resp = await session.post(url, data=payload, headers=headers, timeout=timeout)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise map_transport_error(exc, provider) from exc
    if resp.status >= 400:
        try:
            raw = await resp.read()
        except (TimeoutError, aiohttp.ClientError):
            raw = b""
        finally:
            resp.release()
        raise on_status(resp.status, raw, resp.headers.get("retry-after"))
    return resp


async def iter_chunks(resp: aiohttp.ClientResponse, provider: ProviderConfig) -> AsyncIterator[bytes]:
    """The response body as it arrives; transport failures mapped; the connection closed at the end (or when
    the consumer stops early, which aborts the upstream request)."""
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise map_transport_error(exc, provider) from exc
    finally:
        resp.close()


async def read_all(resp: aiohttp.ClientResponse, provider: ProviderConfig) -> bytes:
    try:
        return await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise map_transport_error(exc, provider) from exc
    finally:
        resp.release()
