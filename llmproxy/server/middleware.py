"""Middleware: request id, one place that turns every failure into the API's error shape, and auth."""

from __future__ import annotations

import hmac
import logging
import secrets

from aiohttp import web

from llmproxy.errors import AuthenticationFailed, InvalidRequest, NotFound, ProxyError, RequestTooLarge
from llmproxy.server.errors import error_response, is_openai_surface
from llmproxy.server.record import RequestRecord, finish
from llmproxy.server.state import REQUEST_ID, STATE

log = logging.getLogger("llmproxy")
PUBLIC_PATHS = frozenset({"/", "/health", "/ui", "/ui/"})
PUBLIC_PREFIXES = ("/ui/",)  # the dashboard's static files (its data under /api/ needs the key)


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
    """No proxy keys configured, or the request presents one of them (compared in constant time)."""
    keys = request.app[STATE].runtime.cfg.api_keys
    if not keys:
        return True
    presented = client_credential(request)
    if presented is None:
        return False
    given = presented.encode()
    ok = False
    for k in keys:  # check them all: constant time whatever the match position
        ok |= hmac.compare_digest(given, k.encode())
    return ok


@web.middleware
async def auth_middleware(request: web.Request, handler):
    path = request.path
    if path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES) and not _is_profile_root(path) \
            and not is_authorised(request):
        if client_credential(request) is None:
            exc = AuthenticationFailed("this proxy requires an API key (x-api-key or Authorization: Bearer)")
        else:
            exc = AuthenticationFailed("invalid proxy API key")
        _log_rejection(request, exc)
        raise exc
    return await handler(request)


def _log_rejection(request: web.Request, exc: ProxyError) -> None:
    """A refused request is in the request log too (who knocked, on what), never with the key."""
    path = request.path
    endpoint = next((name for suffix, name in (("/count_tokens", "count_tokens"), ("/chat/completions",
                     "chat_completions"), ("/messages", "messages")) if path.endswith(suffix)), "other")
    rec = RequestRecord.of(request, endpoint)
    rec.status, rec.error = exc.status, exc.message
    if endpoint == "other":
        rec.extra["path"] = path
    finish(request.app[STATE], rec)


def _is_profile_root(path: str) -> bool:
    parts = path.strip("/").split("/")
    return len(parts) == 2 and parts[0] == "p"
