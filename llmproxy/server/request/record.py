"""The request record: one typed object per request, filled as the request goes, written once to the log.

``RequestRecord.to_json()`` writes the keys the JSONL request log has always had, so ``llmproxy logs`` and
``stats`` read old and new files alike. ``recording`` wraps a handler: in-flight count, error and
disconnect bookkeeping, and the record finished (duration, cost, metrics, log) whatever happens.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic
from typing import Any

from aiohttp import web

from llmproxy.config import Target
from llmproxy.convert.chunks import map_usage
from llmproxy.errors import ProxyError
from llmproxy.obs.cost import cost_usd
from llmproxy.routing import Decision
from llmproxy.server.request.keyauth import CALLER, spend_tokens
from llmproxy.server.state import REQUEST_ID, STATE, State

#: optional fields written only when set, in this order (after time, request_id, endpoint, client)
_OPTIONAL = ("profile", "requested_model", "stream", "mode", "status", "error", "stream_error", "tokens_from",
             "upstream_error", "usage", "stop_reason", "bytes_in", "bytes_out", "ttfb_ms", "ttft_ms",
             "duration_ms")


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    endpoint: str
    client: dict[str, Any]
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    t0: float = field(default_factory=monotonic)
    profile: str | None = None
    requested_model: str | None = None
    stream: bool | None = None
    decision: Decision | None = None
    target: Target | None = None
    simulated: bool | None = None
    mode: str | None = None                       # "passthrough" (the upstream spoke the client's API) | "converted"
    attempts: list[dict] | None = None            # failed tries, in order; None when nothing was dispatched
    status: int | None = None
    error: str | None = None
    stream_error: str | None = None
    client_disconnected: bool = False
    tokens_from: str | None = None                # count_tokens: the count is "upstream"'s or our "estimate"
    upstream_error: str | None = None
    usage: dict | None = None
    stop_reason: str | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    cost_usd: float | None = None
    request_body: Any = None
    response_body: Any = None
    extra: dict[str, Any] = field(default_factory=dict)   # e.g. batch_id / custom_id for batch items

    @classmethod
    def of(cls, request: web.Request, endpoint: str) -> RequestRecord:
        h = request.headers  # case-insensitive: Claude Code capitalises these
        client: dict[str, Any] = {"address": request.remote, "user_agent": h.get("user-agent")}
        if sid := h.get("x-claude-code-session-id"):
            client["session_id"] = sid
        if aid := h.get("x-claude-code-agent-id"):
            client["agent_id"] = aid
        rec = cls(request_id=request[REQUEST_ID], endpoint=endpoint, client=client)
        if (worker := request.app[STATE].worker) is not None:
            rec.extra["worker"] = worker
        if (caller := request.get(CALLER)) is not None and caller.key is not None:  # never the secret
            rec.extra["key"] = {"id": caller.key.id, "name": caller.key.name}
        return rec

    def ms_since_start(self, at: float | None = None) -> float:
        return round(((at if at is not None else monotonic()) - self.t0) * 1000, 1)

    def start_json(self) -> dict[str, Any]:
        """What the ``start`` event says, once the route is decided: who asked, through which profile, and
        the route. The rest comes with ``end`` (``to_json``)."""
        out: dict[str, Any] = {"time": self.time, "request_id": self.request_id, "endpoint": self.endpoint,
                               "client": self.client}
        for key in ("profile", "requested_model", "stream"):
            if (val := getattr(self, key)) is not None:
                out[key] = val
        if (d := self.decision) is not None:
            out["decision"] = {"profile": d.profile, "scenario": d.scenario, "concept": d.concept,
                               "target": str(d.target)}
        if (key := self.extra.get("key")) is not None:
            out["key"] = key
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": self.time, "request_id": self.request_id, "endpoint": self.endpoint,
                               "client": self.client}
        for key in _OPTIONAL:
            val = getattr(self, key)
            if val is not None:
                out[key] = val
        if self.decision is not None:
            out["decision"] = self.decision.to_dict()
        if self.target is not None:
            out["target"] = str(self.target)
            out["simulated"] = bool(self.simulated)
            if self.endpoint != "count_tokens":
                out["cost_usd"] = self.cost_usd   # None: unknown price, never shown as zero
        if self.attempts is not None:
            out["attempts"] = self.attempts
        if self.client_disconnected:
            out["client_disconnected"] = True
        if self.request_body is not None:
            out["request_body"] = self.request_body
        if self.response_body is not None:
            out["response_body"] = self.response_body
        out.update(self.extra)
        return out


def whole_message(rec: RequestRecord, msg: object, *, chat: bool = False, size: int | None = None,
                  collect: bool = False) -> None:
    """The record of a whole (not streamed) answer, for every caller: its usage and stop reason (of an OpenAI
    completion with ``chat``: usage in Anthropic's names, the first choice's finish reason), the message when
    bodies are logged (``collect``), and for an answer written now its size (``size``) and time to first byte."""
    msg = msg if isinstance(msg, dict) else {}
    usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else {}
    if chat:
        choices = msg.get("choices")
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        rec.usage, rec.stop_reason = map_usage(usage), first.get("finish_reason")
    else:
        rec.usage, rec.stop_reason = usage, msg.get("stop_reason")
    if collect:
        rec.response_body = msg
    if size is not None:
        rec.bytes_out, rec.ttfb_ms = size, rec.ms_since_start()


def bodies_wanted(state: State) -> bool:
    return state.options.verbose >= 2 or state.runtime.cfg.log.bodies


def finish(state: State, rec: RequestRecord, body: dict | None = None) -> None:
    """Complete a record (duration, cost), account it in the metrics, queue it for the log."""
    cfg = state.runtime.cfg
    rec.duration_ms = rec.ms_since_start()
    if body is not None and bodies_wanted(state):
        rec.request_body = body
    if rec.target is not None and rec.endpoint != "count_tokens":
        prov = cfg.providers.get(rec.target.provider)
        rec.cost_usd = 0.0 if rec.simulated else cost_usd(rec.usage, prov.model(rec.target.model) if prov else None)
        if (key := rec.extra.get("key")) is not None:
            spend_tokens(key["id"], rec.usage, rec.cost_usd)  # its --tpm and budget (server/request/keyauth.py)
    data = rec.to_json()
    state.served += 1
    state.metrics.observe(data, cfg)
    if state.log is not None:
        state.log.record(data)
    state.events.publish("end", data)


class recording:  # noqa: N801 - reads as a statement: `with recording(request, "messages") as rec:`
    """The request record around a handler. Set ``rec.body`` once the request is parsed."""

    def __init__(self, request: web.Request, endpoint: str):
        self.state = request.app[STATE]
        self.record = RequestRecord.of(request, endpoint)
        self.body: dict | None = None

    def __enter__(self) -> recording:
        self.state.in_flight += 1
        return self

    def __exit__(self, _type, exc, _tb) -> None:
        rec = self.record
        if isinstance(exc, ProxyError):
            rec.status, rec.error = exc.status, exc.message
        elif isinstance(exc, asyncio.CancelledError):
            rec.client_disconnected = True
            if rec.status is None:
                rec.status = 499
        elif exc is not None and rec.status is None:
            rec.status, rec.error = 500, f"internal proxy error: {type(exc).__name__}"
        self.state.in_flight -= 1
        finish(self.state, rec, self.body)
