"""The provider seam: one small interface every upstream kind implements.

A provider takes a ``Call`` (an Anthropic Messages request already routed to one target) and returns a
``Reply``: either a complete Anthropic message, or a stream of ``Frame`` batches (Anthropic events).
Events cross this seam parsed, once: a passthrough provider keeps each frame's upstream bytes in
``Frame.raw`` so the client still receives them exactly; a converting provider builds frames with
``raw=None`` and the server encodes them once. Errors are mapped to the ProxyError family at the upstream
boundary (``providers/http.py``); the dispatcher decides on fallback from ``ProxyError.retryable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from llmproxy.config import ModelSpec, ProviderConfig, Target
from llmproxy.protocol.sse import Frame
from llmproxy.routing import Decision

#: what a streaming reply yields: the frames that arrived together (one upstream read), so the server
#: writes them to the client in one go
FrameBatch = list[Frame]


_MISSING = object()


class RetryCopy:
    """The request as the client sent it, kept while an upstream is asked so that a retry or a fallback can
    rebuild it: the client's bytes, or — once a provider has sent bytes that differ from them only in
    top-level fields (``keep``) — those bytes and the fields' original values. A thousand requests waiting
    for their first byte then hold one copy of their body each, not two."""

    __slots__ = ("raw", "sent", "patch")

    def __init__(self, raw: bytes) -> None:
        self.raw: bytes | None = raw
        self.sent: bytes | None = None
        self.patch: dict = {}

    def keep(self, sent: bytes, patch: dict) -> None:
        """``sent`` is the request with the top-level fields of ``patch`` changed (``patch`` holds their
        original values, ``_MISSING`` for one the client did not send): the client's bytes may go."""
        if sent is not self.raw:
            self.raw, self.sent, self.patch = None, sent, patch

    def body(self) -> dict:
        """The client's request, parsed again (it was validated when it came in)."""
        if self.raw is not None:
            return orjson.loads(self.raw)
        body = orjson.loads(self.sent)
        for key, value in self.patch.items():
            if value is _MISSING:
                body.pop(key, None)
            else:
                body[key] = value
        return body


def top_level_patch(original: dict, changed: dict) -> dict:
    """How to turn ``changed``, a top-level edit of ``original`` (values replaced, keys added or dropped, as
    ``adapt_for_model`` makes them), back into ``original``: the original value of each key that differs,
    ``_MISSING`` for a key ``original`` did not have."""
    patch = {k: v for k, v in original.items() if changed.get(k, _MISSING) is not v}
    patch.update({k: _MISSING for k in changed.keys() - original.keys()})
    return patch


@dataclass
class Call:
    body: dict                      # the Anthropic request, model already set to target.model
    raw: bytes | None               # the client's exact bytes, when ``body`` is unchanged from them
    target: Target
    spec: ModelSpec | None
    decision: Decision              # why this request goes here (the simulator says so; token estimate)
    headers: Mapping[str, str]      # inbound client headers (case-insensitive mapping)
    query: Mapping[str, str] = field(default_factory=dict)  # inbound query (Claude Code sends ?beta=true)
    client_key: str | None = None   # the client's credential, if it may be forwarded
    retry_copy: RetryCopy | None = None  # the client's request, for a retry or fallback (the exchange's)
    patch: dict | None = None       # ``body`` -> the client's request: original top-level values (``RetryCopy.keep``)
    on_sent: Callable[[], None] | None = None  # called once the body has been handed to the connection

    stream: bool = field(init=False)
    whole_tokens: int = field(init=False)  # max_tokens of a non-streaming call (its answer arrives whole), else 0

    def __post_init__(self) -> None:
        self.stream = bool(self.body.get("stream"))
        self.whole_tokens = 0 if self.stream else int(self.body.get("max_tokens") or 4096)

    def release(self) -> None:
        """The request is on the wire: let the parsed body and the client's bytes go while the answer is
        awaited (the handler parses the bytes again should a fallback need them)."""
        self.body, self.raw = {}, None

    @property
    def estimated_tokens(self) -> int:
        return self.decision.estimated_tokens


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    message: dict | None = None                       # complete Anthropic message (non-streaming)
    raw: bytes | None = None                          # its upstream bytes, relayed as they are when set
    stream: AsyncIterator[FrameBatch] | None = None   # Anthropic events (streaming)
    close: Callable[[], None] = lambda: None          # aborts the upstream request if still open

    def body_bytes(self) -> bytes:
        return self.raw if self.raw is not None else orjson.dumps(self.message or {})


class Provider(Protocol):
    config: ProviderConfig
    simulated_reason: str | None   # why a simulator stands in for this provider, or None if it is live

    async def messages(self, call: Call) -> Reply: ...

    async def count_tokens(self, call: Call) -> int: ...


@runtime_checkable
class ChatProvider(Protocol):
    """A provider that speaks Chat Completions itself: the OpenAI surface hands it the client's request
    unconverted (``stream`` then yields OpenAI chunk frames, ``message`` is an OpenAI completion).
    ``on_sent`` is called once the request is on the connection (as ``Call.on_sent``)."""

    async def chat(self, request: dict[str, Any], model: str, on_sent: Callable[[], None] | None = None) -> Reply: ...
