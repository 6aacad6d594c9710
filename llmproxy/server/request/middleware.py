"""Middleware: request id, one place that turns every failure into the API's error shape, and auth.

A refused request (no or a wrong proxy key here, a foreign Host or Origin in ``server/request/guard.py``) is counted in
``llmproxy_rejected_requests_total`` and written to the request log as a small record (client fields clipped
to ``CLIENT_FIELD_MAX`` characters), at most ``REJECTION_RECORDS_PER_SECOND`` a second: a flood of refused
requests cannot rotate the served records out of the log."""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from llmproxy.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ProxyError,
    RateLimited,
    RequestTooLarge,
)
from llmproxy.server.request.errors import error_response, is_openai_surface
from llmproxy.server.request.keyauth import CALLER, cache_of, caller_of, check_limits, is_admin_path
from llmproxy.server.request.keylimits import BudgetSpent
from llmproxy.server.request.record import RequestRecord, finish
from llmproxy.server.state import REQUEST_ID, STATE

log = logging.getLogger("llmproxy")
PUBLIC_PATHS = frozenset({"/", "/health", "/ui", "/ui/"})
PUBLIC_PREFIXES = ("/ui/",)  # the dashboard's static files (its data under /api/ needs the key)
#: refused requests written to the request log per second (burst: twice as many); the rest are only counted
REJECTION_RECORDS_PER_SECOND = 10
#: longest client-supplied text (user agent, session id, path) kept in a rejection record
CLIENT_FIELD_MAX = 200


class RateLimit:
    """A token bucket: ``take()`` is true at most ``burst`` times at once and ``rate`` times a second after."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.at = float(burst), clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def rejection_budget() -> RateLimit:
    return RateLimit(REJECTION_RECORDS_PER_SECOND, 2 * REJECTION_RECORDS_PER_SECOND)


#: the app's budget of rejection records (made in ``create_app``)
REJECTIONS = web.AppKey("rejections", RateLimit)


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


@web.middleware
async def errors_middleware(request: web.Request, handler):
    rid = request[REQUEST_ID] = new_request_id()
    openai = is_openai_surface(request)
    try:
        check_headers(request)
        resp = await handler(request)
    except ProxyError as exc:
        return error_response(exc, rid, openai=openai)
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[STATE].runtime.cfg.server.max_body_bytes
        return error_response(RequestTooLarge(f"request body exceeds the {limit} byte limit"
                                              f" ({exc.text or 'too large'})"), rid, openai=openai)
    except web.HTTPNotFound:
        return error_response(NotFound(f"not found: {request.method} {request.path}"), rid, openai=openai)
    except web.HTTPMethodNotAllowed as exc:
        err = InvalidRequest(f"method {request.method} not allowed on {request.path} "
                             f"(allowed: {', '.join(sorted(exc.allowed_methods))})", status=405)
        return error_response(err, rid, openai=openai)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(ProxyError(exc.reason, status=exc.status), rid, openai=openai)
    except Exception:  # noqa: BLE001 - the daemon never dies of a request
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, rid)
        return error_response(ProxyError(f"internal proxy error (request {rid})"), rid, openai=openai)
    if not resp.prepared:
        resp.headers["request-id"] = rid
    return resp


def check_headers(request: web.Request) -> None:
    """``server.max_headers`` and ``server.max_header_bytes`` (one line), answered 431 in the API's shape."""
    srv = request.app[STATE].runtime.cfg.server
    raw = request.raw_headers
    if len(raw) > srv.max_headers:
        raise ProxyError(f"too many request headers ({len(raw)} > {srv.max_headers}, server.max_headers)",
                         status=431)
    for name, value in raw:
        if len(name) + len(value) + 2 > srv.max_header_bytes:
            raise InvalidRequest(f"request header {name[:64].decode('latin-1')!r} is longer than "
                             f"{srv.max_header_bytes} bytes (server.max_header_bytes)", status=431)


def client_credential(request: web.Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def is_authorised(request: web.Request) -> bool:
    """An admin may see everything: no proxy keys at all (none configured, none in the store as far as this
    process knows), or the request presents one of the config's keys (compared in constant time)."""
    keys = request.app[STATE].runtime.cfg.api_keys
    if not keys:
        return not cache_of(request.app).keys_known()
    presented = client_credential(request)
    return presented is not None and _matches_config(presented, keys)


def _matches_config(presented: str, keys: list[str]) -> bool:
    # as the bytes that came in: a header that is not UTF-8 arrives with surrogates, and is just a wrong key
    given = presented.encode("utf-8", "surrogateescape")
    ok = False
    for k in keys:  # check them all: constant time whatever the match position
        ok |= hmac.compare_digest(given, k.encode())
    return ok


#: what a refused client should fix, named in the 401 (Claude Code shows the message as it is)
_WHERE_KEYS = ("send a key made by `llmproxy keys create` or one of the keys in [auth] api_keys of the proxy's "
               "config.toml (or in the variable [auth] api_keys_env names, LLMPROXY_API_KEYS by default); "
               "Claude Code sends ANTHROPIC_AUTH_TOKEN (or ANTHROPIC_API_KEY), the SDKs their api_key")


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """Who the caller is (``server/request/keyauth.py``): a config key (admin), a store key, or anyone on an open
    proxy; the admin routes (``/api/…``, ``/metrics``) for admins only."""
    path = request.path
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or _is_profile_root(path):
        return await handler(request)
    keys = request.app[STATE].runtime.cfg.api_keys
    presented = client_credential(request)
    try:
        caller = await caller_of(request, presented, keys, lambda p: _matches_config(p, keys))
    except AuthenticationFailed as exc:  # a known store key, revoked or expired
        raise reject(request, exc, "auth") from None
    if caller is None:
        if presented is None:
            exc = AuthenticationFailed("this proxy requires an API key (x-api-key or Authorization: Bearer): "
                                       f"{_WHERE_KEYS}")
        else:
            exc = AuthenticationFailed(f"invalid proxy API key: {_WHERE_KEYS}")
        raise reject(request, exc, "auth")
    request[CALLER] = caller
    if not caller.admin and is_admin_path(path):
        name = caller.key.name if caller.key else "?"
        raise reject(request, PermissionDenied(f"{path} is for admin keys ([auth] api_keys of the config); "
                                               f"key {name!r} may not use it"), "admin")
    try:
        await check_limits(request, caller)
    except BudgetSpent as exc:
        raise reject(request, exc, "key_budget") from None
    except RateLimited as exc:
        raise reject(request, exc, "key_rate") from None
    return await handler(request)


def reject(request: web.Request, exc: ProxyError, reason: str) -> ProxyError:
    """Count a refused request and, while the budget lasts, log a small record of it; returns ``exc``."""
    state = request.app[STATE]
    state.metrics.rejected.labels(reason).inc()
    if request.app[REJECTIONS].take():
        _log_rejection(request, exc, reason)
    return exc


def clip(text: str, limit: int = CLIENT_FIELD_MAX) -> str:
    """At most ``limit`` characters of client text, as valid UTF-8 (undecodable header bytes become U+FFFD)."""
    text = text[:limit + 1].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


def _log_rejection(request: web.Request, exc: ProxyError, reason: str) -> None:
    """A refused request is in the request log too (who knocked, on what), never with the key."""
    path = request.path
    endpoint = next((name for suffix, name in (("/count_tokens", "count_tokens"), ("/chat/completions",
                     "chat_completions"), ("/messages", "messages")) if path.endswith(suffix)), "other")
    rec = RequestRecord.of(request, endpoint)
    rec.client = {k: clip(v) if isinstance(v, str) else v for k, v in rec.client.items()}
    rec.status, rec.error = exc.status, clip(exc.message, 2 * CLIENT_FIELD_MAX)
    rec.extra["rejected"] = reason
    if endpoint == "other":
        rec.extra["path"] = clip(path)
    finish(request.app[STATE], rec)


def _is_profile_root(path: str) -> bool:
    parts = path.strip("/").split("/")
    return len(parts) == 2 and parts[0] == "p"
