"""The provider seam: one small interface every upstream kind implements.

A provider takes a ``Call`` (an Anthropic Messages request already routed to one target) and returns a
``Reply`` holding either a complete Anthropic JSON body or an async iterator of Anthropic SSE bytes.
Errors are mapped to the ProxyError family once, here at the boundary; the dispatcher decides on
fallback from ``ProxyError.retryable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmproxy.config import ModelSpec, ProviderConfig, Target


@dataclass
class Call:
    body: dict                      # the Anthropic request, model already set to target.model
    raw: bytes | None               # exact bytes to send when nothing needed changing, else None
    target: Target
    spec: ModelSpec | None
    headers: Mapping[str, str]      # inbound client headers (lower-case keys)
    query: str = ""                 # inbound query string (Claude Code sends ?beta=true)
    client_key: str | None = None   # the client's credential, if it may be forwarded
    label: dict[str, Any] = field(default_factory=dict)  # profile/scenario/concept, for the simulator

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None                    # complete Anthropic JSON (non-streaming)
    stream: AsyncIterator[bytes] | None = None   # Anthropic SSE bytes (streaming)
    close: Callable[[], None] = lambda: None     # aborts the upstream request if still open


class Provider(Protocol):
    config: ProviderConfig
    simulated_reason: str | None   # why a simulator stands in for this provider, or None if it is live

    async def messages(self, call: Call) -> Reply: ...

    async def count_tokens(self, call: Call) -> int: ...
