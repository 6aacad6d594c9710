"""HTTP handlers: thin. Parse once, decide, dispatch, record."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

import orjson
from aiohttp import web

from llmproxy import __version__
from llmproxy.errors import InvalidRequest, NotFound, ProxyError
from llmproxy.obs.cost import cost_usd
from llmproxy.protocol.anthropic import parse_json, validate_messages
from llmproxy.routing import CompiledProfile, decide
from llmproxy.server import dispatch
from llmproxy.server.middleware import REQUEST_ID, client_credential
from llmproxy.server.state import STATE, State

PROFILE_HEADER = "x-llmproxy-profile"


def resolve_profile(request: web.Request) -> CompiledProfile:
    rt = request.app[STATE].runtime
    name = request.match_info.get("profile") or request.headers.get(PROFILE_HEADER) or rt.cfg.server.default_profile
    prof = rt.profiles.get(name)
    if prof is None:
        raise NotFound(f"unknown profile {name!r}; valid profiles: {', '.join(sorted(rt.profiles))}")
    return prof


def json_response(data, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


def new_record(request: web.Request, endpoint: str) -> dict:
    h = request.headers
    client = {"address": request.remote, "user_agent": h.get("user-agent")}
    if sid := h.get("x-claude-code-session-id"):
        client["session_id"] = sid
    if aid := h.get("x-claude-code-agent-id"):
        client["agent_id"] = aid
    return {"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": request[REQUEST_ID], "endpoint": endpoint, "client": client,
            "_t0": time.monotonic()}


class recording:  # noqa: N801 - reads as a statement: `with recording(request, "messages") as rec:`
    """The request record around a handler: in-flight count, error and disconnect bookkeeping, and
    ``finish_record`` whatever happens. Set ``rec.body`` once the request is parsed."""

    def __init__(self, request: web.Request, endpoint: str):
        self.request = request
        self.state = request.app[STATE]
        self.record = new_record(request, endpoint)
        self.body: dict | None = None

    def __enter__(self) -> recording:
        self.state.in_flight += 1
        return self

    def __exit__(self, _type, exc, _tb) -> None:
        rec = self.record
        if isinstance(exc, ProxyError):
            rec["status"], rec["error"] = exc.status, exc.message
        elif isinstance(exc, asyncio.CancelledError):
            rec["client_disconnected"] = True
            rec.setdefault("status", 499)
        self.state.in_flight -= 1
        finish_record(self.state, rec, self.request, self.body)


def bodies_wanted(state: State) -> bool:
    return state.options.verbose >= 2 or state.runtime.cfg.log.bodies


def finish_record(state: State, record: dict, request: web.Request, body: dict | None) -> None:
    """Complete a request's record (duration, cost), account it in the metrics, queue it for the log."""
    cfg = state.runtime.cfg
    t0 = record.pop("_t0")
    record["duration_ms"] = round((time.monotonic() - t0) * 1000, 1)
    if bodies_wanted(state) and body is not None:
        record["request_body"] = body
    if record.get("target") and record.get("endpoint") != "count_tokens":
        provider, _, model = record["target"].partition("/")
        prov = cfg.providers.get(provider)
        record["cost_usd"] = 0.0 if record.get("simulated") else cost_usd(
            record.get("usage"), prov.model(model) if prov else None)
    state.served += 1
    state.metrics.observe(record, cfg)
    if state.log is not None:
        state.log.record(record)


async def _read_request(request: web.Request, record: dict, *, count_tokens: bool = False) -> tuple[bytes, dict]:
    raw = await request.read()
    record["bytes_in"] = len(raw)
    return raw, validate_messages(parse_json(raw), count_tokens=count_tokens)


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    rt = state.runtime
    with recording(request, "messages") as rec:
        record = rec.record
        profile = resolve_profile(request)
        record["profile"] = profile.name
        raw, rec.body = await _read_request(request, record)
        body = rec.body
        record["requested_model"] = body.get("model")
        record["stream"] = bool(body.get("stream"))
        decision = decide(body, profile, rt.cfg, rt.profiles, headers=request.headers, raw_len=len(raw))
        record["profile"] = decision.profile
        record["decision"] = decision.to_dict()
        client_key = None if rt.cfg.api_keys else client_credential(request)
        reply = await dispatch.open_reply(state, body, raw, decision, request, client_key, record)
        route = decision.header().replace(f"target={decision.target}", f"target={record['target']}")
        headers = {"x-llmproxy-route": route, "request-id": request[REQUEST_ID]}
        if reply.stream is not None:
            resp = await dispatch.write_stream(request, reply, headers, record, rt.cfg.server.ping_interval,
                                               collect=bodies_wanted(state))
        else:
            resp = dispatch.json_reply(reply, headers, record, collect=bodies_wanted(state))
        record["status"] = resp.status
        return resp


async def count_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE]
    rt = state.runtime
    with recording(request, "count_tokens") as rec:
        record = rec.record
        profile = resolve_profile(request)
        record["profile"] = profile.name
        raw, rec.body = await _read_request(request, record, count_tokens=True)
        decision = decide(rec.body, profile, rt.cfg, rt.profiles, headers=request.headers, raw_len=len(raw),
                          endpoint="count_tokens")
        record["decision"] = decision.to_dict()
        call = dispatch.build_call(state, rec.body, raw, decision, 0, request,
                                   None if rt.cfg.api_keys else client_credential(request))
        provider = rt.providers[call.target.provider]
        record["target"] = str(call.target)
        try:
            n = await provider.count_tokens(call)
            record["source"] = "upstream" if provider.simulated_reason is None else "estimate"
        except ProxyError as exc:
            if not exc.retryable:
                raise
            n = decision.estimated_tokens
            record["source"], record["upstream_error"] = "estimate", exc.message
        record["status"] = 200
        record["usage"] = {"input_tokens": n}
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


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    val = request.query.get(name)
    if val is None:
        return default
    try:
        n = int(val)
    except ValueError:
        raise InvalidRequest(f"{name}: Input should be a valid integer") from None
    if not lo <= n <= hi:
        raise InvalidRequest(f"{name}: Input should be between {lo} and {hi}")
    return n


async def list_models(request: web.Request) -> web.Response:
    items = _catalog(request.app[STATE])
    limit = _int_param(request, "limit", 20, 1, 1000)
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


# ---------------------------------------------------------------------------------------- root, health

UNSUPPORTED = {"messages/batches": "the Message Batches API", "files": "the Files API"}


async def not_supported(request: web.Request) -> web.Response:
    """Anthropic endpoints llmproxy does not implement: a clear, non-retryable answer, not a bare 404."""
    tail = request.match_info["tail"]
    what = next((v for k, v in UNSUPPORTED.items() if tail == k or tail.startswith(k + "/")), tail)
    raise NotFound(f"llmproxy does not support {what} ({request.method} {request.path}); send these requests to "
                   f"the provider directly")


async def root(request: web.Request) -> web.Response:
    prof = resolve_profile(request) if request.match_info.get("profile") else None
    return json_response({"name": "llmproxy", "version": __version__,
                          "profile": prof.name if prof else request.app[STATE].runtime.cfg.server.default_profile})


def health_info(state: State) -> dict:
    rt = state.runtime
    return {
        "status": "ok", "version": __version__, "pid": os.getpid(),
        "uptime_s": round(time.time() - state.started, 1),
        "default_profile": rt.cfg.server.default_profile,
        "profiles": sorted(rt.profiles),
        "providers": {n: {"kind": p.config.kind, "live": p.simulated_reason is None,
                          "simulated_reason": p.simulated_reason} for n, p in sorted(rt.providers.items())},
        "requests_served": state.served, "in_flight": state.in_flight,
        "config": rt.cfg.source,
    }


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.metrics.in_flight.set(state.in_flight)
    return web.Response(body=state.metrics.render(), headers={"content-type": "text/plain; version=0.0.4; charset=utf-8"})


async def health(request: web.Request) -> web.Response:
    return json_response(health_info(request.app[STATE]))


async def api_route(request: web.Request) -> web.Response:
    """The routing decision for a request (or a bare text), without calling any model."""
    state = request.app[STATE]
    rt = state.runtime
    raw = await request.read()
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object: an Anthropic request, or {\"text\", \"profile\"}")
    if "messages" in data:
        body = validate_messages(data, count_tokens=True)
        profile = resolve_profile(request)
    else:
        text = data.get("text")
        if not isinstance(text, str):
            raise InvalidRequest("text: Field required (or send a full Anthropic request)")
        name = data.get("profile") or request.match_info.get("profile") or rt.cfg.server.default_profile
        profile = rt.profiles.get(name)
        if profile is None:
            raise NotFound(f"unknown profile {name!r}; valid profiles: {', '.join(sorted(rt.profiles))}")
        body = {"model": "claude", "max_tokens": 1, "messages": [{"role": "user", "content": text}]}
        raw = orjson.dumps(body)
    d = decide(body, profile, rt.cfg, rt.profiles, headers=request.headers, raw_len=len(raw))
    return json_response(d.to_dict())
