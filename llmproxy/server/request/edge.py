"""What the API handlers do at the edge of a request: resolve its profile, admit it, read its body within
the limit, inline the files it references, find the client's credential, read query parameters, answer JSON,
and name the route."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from aiohttp import web

from llmproxy.config import Target
from llmproxy.errors import InvalidRequest, Overloaded, RequestTooLarge, StoreDown
from llmproxy.protocol.anthropic import parse_json
from llmproxy.routing import PROFILE_HEADER, CompiledProfile, Decision
from llmproxy.server.request.keyauth import CALLER, check_profile
from llmproxy.server.request.middleware import client_credential
from llmproxy.server.request.record import RequestRecord
from llmproxy.server.state import REQUEST_ID, STATE, STORE, State
from llmproxy.store import StoreUnavailable
from llmproxy.store.inline import inline_files


def request_profile(request: web.Request, explicit: str | None = None) -> CompiledProfile:
    """The profile for this request (precedence: ``llmproxy/routing/router.py``)."""
    return request.app[STATE].runtime.router.profile(explicit, request.match_info.get("profile"),
                                                     request.headers.get(PROFILE_HEADER))


def json_response(data, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


async def begin(request: web.Request, rec: RequestRecord) -> tuple[CompiledProfile, bytes, object]:
    """What every API request does first: admission, its profile (recorded), its body read and parsed."""
    admit(request.app[STATE])
    profile = request_profile(request)
    rec.profile = profile.name
    raw, data = await read_body(request, rec)
    check_profile(request, profile.name, data)  # a store key's allowed profiles (server/request/keyauth.py)
    return profile, raw, data


def admit(state: State) -> None:
    """Refuse new work beyond ``server.max_concurrent_requests`` (the client retries a 529)."""
    limit = state.runtime.cfg.server.max_concurrent_requests
    if state.in_flight > limit:
        raise Overloaded(f"llmproxy is serving {limit} requests at once (server.max_concurrent_requests); "
                         f"retry shortly", retry_after="1")


@contextmanager
def admitted(state: State) -> Iterator[None]:
    """Admission for a request that keeps no record (``/api/route``): refused beyond the limit like the
    others, and counted in flight while it runs, so it takes its place among them."""
    state.in_flight += 1  # as ``recording`` does: counted first, so the limit includes this one
    try:
        admit(state)
        yield
    finally:
        state.in_flight -= 1


async def read_body(request: web.Request, rec: RequestRecord) -> tuple[bytes, object]:
    """The body, read within ``server.max_body_bytes``. Read from the stream rather than with
    ``request.read()``, which would keep the bytes on the request for as long as a stream lasts."""
    limit = request.app[STATE].runtime.cfg.server.max_body_bytes
    if (request.content_length or 0) > limit:
        raise RequestTooLarge(f"request body exceeds the {limit} byte limit (server.max_body_bytes)")
    parts, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"request body exceeds the {limit} byte limit (server.max_body_bytes)")
        parts.append(chunk)
    raw = parts[0] if len(parts) == 1 else b"".join(parts)
    rec.bytes_in = len(raw)
    return raw, parse_json(raw)


def client_key(state: State, request: web.Request) -> str | None:
    """The client's credential, forwardable only when it is not our own proxy key (config or store)."""
    caller = request.get(CALLER)
    ours = state.runtime.cfg.api_keys or (caller is not None and caller.proxy_credential)
    return None if ours else client_credential(request)


def viewer(request: web.Request) -> str | None:
    """Whose batches and files the caller sees: a store key's id (its own only), or None for an admin (a
    config key, or an open proxy: every one)."""
    caller = request.get(CALLER)
    return caller.key.id if caller is not None and caller.key is not None else None


async def inline_files_of(request: web.Request, body: dict, raw: bytes) -> tuple[dict, bytes]:
    """``(body, raw)`` with the files it references inlined (``raw`` re-encoded to match); unchanged without
    any (``store/inline.py``). A store key sees only the files it uploaded (another key's is unknown)."""
    try:
        new = await inline_files(body, request.app.get(STORE), owner_key=viewer(request),
                                 max_bytes=request.app[STATE].runtime.cfg.files.max_inline_bytes)
    except StoreUnavailable as exc:  # only a message that references a file needs the store
        raise StoreDown.of(exc) from None
    return (body, raw) if new is body else (new, orjson.dumps(new))


def route_headers(request: web.Request, decision: Decision, served_by: Target) -> dict[str, str]:
    return {"x-llmproxy-route": decision.header(served_by), "request-id": request[REQUEST_ID]}


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """A query parameter that must be an integer in [lo, hi]; a 400 naming it otherwise."""
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
