"""HTTP handlers for the Anthropic surface, thin: read and validate once, resolve the profile, decide,
dispatch, write, record. (The daemon's own endpoints, /health, /metrics and /api/reload, are in
process/endpoints.py.)"""

from __future__ import annotations

from datetime import datetime

import orjson
from aiohttp import web

from llmproxy import __version__
from llmproxy.errors import InvalidRequest, NotFound, ProxyError
from llmproxy.protocol.anthropic import parse_json, validate_messages, validate_route_request
from llmproxy.routing import UnknownProfile
from llmproxy.server.request import streaming
from llmproxy.server.request.edge import (
    admitted,
    begin,
    client_key,
    inline_files_of,
    int_param,
    json_response,
    request_profile,
)
from llmproxy.server.request.exchange import Admitted, Exchange, Outcome
from llmproxy.server.request.record import RequestRecord, bodies_wanted, recording, whole_message
from llmproxy.server.state import STATE, State


class AnthropicSurface:
    """The Messages API's answer: frames as they came (or as a converting provider built them), or the
    whole message as JSON; its events and message kept for the log when bodies are logged (``collect``)."""

    __slots__ = ("collect",)

    def __init__(self, collect: bool) -> None:
        self.collect = collect

    def framing(self, out: Outcome) -> streaming.Framing:
        return streaming.anthropic_framing(self.collect)

    def whole(self, out: Outcome, rec: RequestRecord) -> web.Response:
        reply = out.reply
        body = reply.body_bytes()
        whole_message(rec, reply.message, size=len(body), collect=self.collect)
        return web.Response(status=reply.status, body=body, content_type="application/json", headers=reply.headers)


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    with recording(request, "messages") as rc:
        rec = rc.record
        profile, raw, data = await begin(request, rec)
        body = validate_messages(data)
        body, raw = await inline_files_of(request, body, raw)  # file_id references -> the stored content
        collect = bodies_wanted(state)
        rc.body = body if collect else None
        rec.requested_model, rec.stream = body.get("model"), bool(body.get("stream"))
        decision = state.runtime.router.decide(body, profile, headers=request.headers, raw_len=len(raw))
        ex = Exchange(state, rec, Admitted(body, raw, decision, request.headers, request.query,
                                           client_key(state, request)))
        data = body = raw = None  # the exchange holds the body now (``Exchange.open``)
        await ex.open()
        return await ex.reply(request, AnthropicSurface(collect))


async def count_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE]
    with recording(request, "count_tokens") as rc:
        rec = rc.record
        profile, raw, data = await begin(request, rec)
        body = rc.body = validate_messages(data, count_tokens=True)
        body, raw = await inline_files_of(request, body, raw)
        decision = state.runtime.router.decide(body, profile, headers=request.headers, raw_len=len(raw),
                                               endpoint="count_tokens")
        target, rec.decision = decision.target, decision
        provider = state.runtime.providers[target.provider]
        rec.target, rec.simulated = target, provider.simulated_reason is not None
        call = Admitted(body, raw, decision, request.headers, request.query,
                        client_key(state, request)).call(body, raw, target, provider)
        try:
            n = await provider.count_tokens(call)
            rec.tokens_from = "upstream" if provider.simulated_reason is None else "estimate"
        except ProxyError as exc:
            if not exc.retryable:
                raise
            n = decision.estimated_tokens
            rec.tokens_from, rec.upstream_error = "estimate", exc.message
        rec.status, rec.usage = 200, {"input_tokens": n}
        return json_response({"input_tokens": n}, headers={"x-llmproxy-route": decision.header()})


# ------------------------------------------------------------------------------------------------- models

def _catalog(state: State) -> list[dict]:
    seen: dict[str, dict] = {}
    for pname, prov in state.runtime.cfg.providers.items():
        for mid, spec in prov.models.items():
            if mid in seen:
                continue
            created = datetime.fromisoformat(spec.created.replace("Z", "+00:00"))
            seen[mid] = {"type": "model", "id": mid, "display_name": spec.display_name or mid,
                         "created_at": spec.created, "object": "model", "created": int(created.timestamp()),
                         "owned_by": pname, "max_input_tokens": spec.context_window, "max_tokens": spec.max_output}
    return sorted(seen.values(), key=lambda m: (-m["created"], m["id"]))


async def list_models(request: web.Request) -> web.Response:
    items = _catalog(request.app[STATE])
    limit = int_param(request, "limit", 20, 1, 1000)
    after, before = request.query.get("after_id"), request.query.get("before_id")
    ids = [m["id"] for m in items]
    for cursor in (after, before):
        if cursor is not None and cursor not in ids:
            raise InvalidRequest(f"unknown model id {cursor!r} in pagination cursor")
    if before is not None:
        end = ids.index(before)
        page = items[max(0, end - limit):end]
        has_more = end - limit > 0
    else:
        start = ids.index(after) + 1 if after is not None else 0
        page = items[start:start + limit]
        has_more = start + limit < len(items)
    return json_response({"data": page, "has_more": has_more, "object": "list",
                          "first_id": page[0]["id"] if page else None,
                          "last_id": page[-1]["id"] if page else None})


async def get_model(request: web.Request) -> web.Response:
    mid = request.match_info["model_id"]
    for m in _catalog(request.app[STATE]):
        if m["id"] == mid:
            return json_response(m)
    raise NotFound(f"model {mid!r} not found")


# ------------------------------------------------------------------------------ root, health, routing

async def root(request: web.Request) -> web.Response:
    state = request.app[STATE]
    prof = request_profile(request) if request.match_info.get("profile") else None
    return json_response({"name": "llmproxy", "version": __version__,
                          "profile": prof.name if prof else state.runtime.cfg.server.default_profile})


async def api_route(request: web.Request) -> web.Response:
    """The routing decision for a request (or a bare text), without calling any model."""
    state = request.app[STATE]
    with admitted(state):  # routing a large text is work: it counts toward server.max_concurrent_requests
        raw = await request.read()
        data = validate_route_request(parse_json(raw))
        if "messages" in data:
            body, profile = data, request_profile(request)
        else:
            try:
                profile = request_profile(request, data.get("profile"))
            except UnknownProfile as exc:
                raise UnknownProfile(f"profile: {exc.message}" if data.get("profile") else exc.message) from None
            body = {"model": "claude", "max_tokens": 1, "messages": [{"role": "user", "content": data["text"]}]}
            raw = orjson.dumps(body)
        d = state.runtime.router.decide(body, profile, headers=request.headers, raw_len=len(raw))
        return json_response(d.to_dict())
