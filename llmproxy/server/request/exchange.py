"""The exchange: one request from "admitted" to "recorded", the same for every caller.

Both HTTP surfaces (``handlers.messages``, ``openai_surface.chat_completions``) and every batch item
(``batch/executor.py``) build an ``Admitted`` — a plain value, no aiohttp ``Request`` in it: the validated
body, the client's bytes, headers, query, credential and the routing decision — and hand it to an
``Exchange``. ``Exchange.open()`` owns the request body while an upstream is asked (see its docstring),
runs the chain (``dispatch.open_chain``: retries, fallback, circuits) with one attempt function, and
returns an ``Outcome``: the open reply, the target and provider that answered, and the mode — chosen by
the provider's capability, never read back from the record. ``Exchange.reply(request, surface)`` writes it
to an HTTP client in that surface's API (a ``Surface``: the Anthropic one in ``handlers.py``, the OpenAI
one in ``openai_surface.py``) — a stream frame by frame, or a whole message; a batch item stores the whole
message instead. The record is filled from the outcome here and, for a whole answer, by
``record.whole_message``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from llmproxy.config import Target
from llmproxy.protocol.adapt import adapt_for_model
from llmproxy.providers import Call, ChatProvider, Provider, Reply, RetryCopy, top_level_patch
from llmproxy.routing import Decision
from llmproxy.server.request import dispatch, streaming
from llmproxy.server.request.edge import route_headers
from llmproxy.server.request.record import RequestRecord
from llmproxy.server.state import State

#: ``Outcome.mode``: the upstream spoke the client's API (its answer is relayed as it came) or not
PASSTHROUGH, CONVERTED = "passthrough", "converted"


@dataclass(slots=True)
class Admitted:
    """A request as admitted: what dispatch needs of it, nothing of the HTTP server's."""
    body: dict                          # the validated request in Anthropic form (routed; sent by messages())
    raw: bytes | None                   # the client's bytes when ``body`` is exactly them, else None
    decision: Decision
    headers: Mapping[str, str]
    query: Mapping[str, str]
    client_key: str | None = None       # the client's credential, when it may be forwarded
    chat: dict | None = None            # the OpenAI surface's request as it came (for a ChatProvider)

    def call(self, body: dict, raw: bytes | None, target: Target, provider: Provider, retry_copy: RetryCopy | None = None,
             on_sent=None) -> Call:
        """``body`` as ``target`` gets it. ``raw`` travels only while nothing changed; otherwise the call
        carries how to undo the change (``RetryCopy.keep``)."""
        spec = provider.config.model(target.model)
        new_body = adapt_for_model(body, target.model, spec)
        same = new_body is body
        return Call(body=new_body, raw=raw if same else None, target=target, spec=spec, decision=self.decision,
                    headers=self.headers, query=self.query, client_key=self.client_key, retry_copy=retry_copy,
                    patch={} if same else top_level_patch(body, new_body), on_sent=on_sent)


@dataclass(slots=True)
class Outcome(dispatch.Opened):
    mode: str = PASSTHROUGH             # PASSTHROUGH or CONVERTED, for the surface that asked


class Surface(Protocol):
    """The API a client speaks, as far as writing its answer goes."""

    def framing(self, out: Outcome) -> streaming.Framing:
        """How the frames of a streamed ``out`` are written."""

    def whole(self, out: Outcome, rec: RequestRecord) -> web.Response:
        """The answer for a whole (not streamed) ``out``; its usage and size written to ``rec``."""


@functools.cache
def speaks_chat(cls: type) -> bool:
    """Whether providers of ``cls`` speak Chat Completions themselves (``ChatProvider``; asked once per class:
    a protocol check costs microseconds on every request otherwise)."""
    return issubclass(cls, ChatProvider)


def mode_of(provider: Provider, chat_surface: bool) -> str:
    """Passthrough when the provider speaks the surface's API: Chat Completions (``ChatProvider``) on the
    OpenAI surface, the Messages API (any other provider) on the Anthropic surface and in batches."""
    return PASSTHROUGH if speaks_chat(type(provider)) == chat_surface else CONVERTED


class Exchange:
    """One admitted request on its way to an upstream and back into the record."""

    __slots__ = ("state", "rec", "admitted", "parsed", "copy", "outcome")

    def __init__(self, state: State, rec: RequestRecord, admitted: Admitted) -> None:
        self.state, self.rec, self.admitted = state, rec, admitted
        rec.profile, rec.decision = admitted.decision.profile, admitted.decision
        # the body is the exchange's now: the parsed object (``parsed``) and, with the client's bytes, a
        # ``RetryCopy`` that can parse it again; the admitted value keeps neither
        self.parsed: dict | None = admitted.body
        self.copy = RetryCopy(admitted.raw) if admitted.raw is not None else None
        admitted.body, admitted.raw = {}, None
        self.outcome: Outcome | None = None

    async def open(self) -> Outcome:
        """Ask the chain's targets until one answers; the outcome, its record fields written.

        The body's lifetime, in one place (a thousand Claude Code bodies waiting for their first byte must
        not hold ~200 KB of objects each): with the client's bytes, the parsed body is handed to the first
        attempt and let go; a retry or fallback parses it again from the ``RetryCopy``, which holds one copy of
        the bytes (the client's, or what was sent and how to undo it). Each attempt takes a place in the
        provider's send window (``server/request/sending.py``); while it waits for one it lets go of the parsed body,
        and the place is given back once the body is on the connection (``on_sent``). Without the client's
        bytes (the OpenAI surface's converted body, a batch item) the parsed body is kept until sent."""
        if (hub := self.state.events).listening:  # the dashboard: in flight, its route decided
            hub.publish("start", self.rec.start_json())
        opened = await dispatch.open_chain(self.state, self.admitted.decision, self.rec, self._attempt)
        self.parsed = self.copy = None  # sent: what comes back needs neither
        out = Outcome(opened.reply, opened.target, opened.provider,
                      mode_of(opened.provider, self.admitted.chat is not None))
        rec = self.rec
        rec.target, rec.simulated, rec.mode = out.target, out.provider.simulated_reason is not None, out.mode
        self.outcome = out
        return out

    async def reply(self, request: web.Request, surface: Surface) -> web.StreamResponse:
        """Write the opened answer to ``request``'s client in ``surface``'s API (after ``open()``): a stream
        through the one stream writer, or a whole message; the record gets the status."""
        out, state = self.outcome, self.state
        assert out is not None, "reply() before open()"
        headers = route_headers(request, self.admitted.decision, out.target)
        if out.reply.stream is not None:
            resp = await streaming.write_stream(request, out.reply, headers, self.rec, surface.framing(out),
                                                state.runtime.cfg.server.ping_interval,
                                                lambda exc: dispatch.stream_failed(state, out, exc))
        else:
            resp = surface.whole(out, self.rec)
            resp.headers.update(headers)
        self.rec.status = resp.status
        return resp

    def _let_go(self) -> None:
        if self.copy is not None:
            self.parsed = None

    def _body(self) -> dict:
        """The parsed body for one attempt (validated when admitted: the same request)."""
        body = self.parsed
        if self.copy is None:
            return body  # type: ignore[return-value]  # kept until sent
        if body is None:
            return self.copy.body()
        self.parsed = None
        return body

    async def _attempt(self, _i: int, target: Target, provider: Provider) -> Reply:
        windows = dispatch.send_windows(self.state)
        async with windows.slot(target.provider, provider.config.ttfb_timeout, self._let_go,
                                sends=provider.simulated_reason is None) as slot:
            chat = self.admitted.chat
            if chat is not None and speaks_chat(type(provider)):
                return await provider.chat(chat, target.model, on_sent=slot.release)  # type: ignore[attr-defined]
            body = self._body()
            src = self.copy
            call = self.admitted.call(body, src.raw if src is not None else None, target, provider, src,
                                      slot.release)
            del body
            return await provider.messages(call)
