"""The origin guard: one middleware in front of every route, so no web page can drive the daemon.

- **Host** (DNS rebinding). Without proxy keys, a request must be addressed to this machine by a name we know:
  a loopback name (``localhost``, ``*.localhost``, ``127.0.0.1``…, ``::1``), the configured ``server.host`` or
  ``--host``, or the address the connection came in on. A page whose own name was rebound to 127.0.0.1 sends
  its own name and gets a 403 on every route (``/health``, ``/metrics``, ``/ui``, ``/v1/*``, ``/api/*``,
  ``/p/<profile>/…``).
  With proxy keys set the Host is not checked: the key protects (``--allow-remote`` setups reached by any name).
- **Origin** (cross-site request forgery). A state-changing request (any method but GET, HEAD and OPTIONS) from
  another site's page is refused, keys or not: an ``Origin`` that is neither this request's Host nor a local
  name (``Origin: null`` included), or ``Sec-Fetch-Site: cross-site`` / ``same-site``. The dashboard's own
  requests are same-origin; SDKs, Claude Code and the CLI send neither header.
- **Content type**. A body sent to a JSON endpoint must be ``application/json`` or ``*/*+json`` (415 otherwise):
  the types a form or a fetch without preflight can send (``text/plain``, urlencoded, multipart) are not
  JSON. The file upload (``POST /v1/files``) takes ``multipart/form-data`` only.

Every refusal is in the API's error shape, counted and (rate-limited) logged by ``middleware.reject``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from llmproxy.config import Config
from llmproxy.errors import InvalidRequest, PermissionDenied
from llmproxy.server.request.middleware import reject
from llmproxy.server.state import STATE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: loopback names, and the two loopback addresses clients write (found here before parsing any address)
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback", "127.0.0.1", "::1"})
#: routes (path without the ``/p/{profile}`` prefix) whose body is multipart; every other body is JSON
MULTIPART_ROUTES = frozenset({"/v1/files"})
PROFILE_PREFIX = "/p/{profile}"


@web.middleware
async def guard_middleware(request: web.Request, handler):
    cfg = request.app[STATE].runtime.cfg
    if not cfg.api_keys and not is_local(host_name(request.headers.get("host", "")), request, cfg):
        host = request.headers.get("host", "")
        raise reject(request, PermissionDenied(
            f"this proxy answers only requests addressed to localhost or {cfg.server.host} (got Host: "
            f"{host[:100]!r}); a web page cannot reach it by another name. To reach it by other names, set "
            f"proxy API keys (auth.api_keys)"), "host")
    if request.method not in SAFE_METHODS:
        if (foreign := foreign_origin(request, cfg)) is not None:
            raise reject(request, PermissionDenied(
                f"{foreign}: a {request.method} from another site's web page is refused (cross-site request "
                f"forgery); API clients send no Origin"), "origin")
        if (problem := body_type_problem(request)) is not None:
            raise reject(request, InvalidRequest(problem, status=415), "content_type")
    return await handler(request)


def host_name(value: str) -> str:
    """The name in a Host header or URL authority, lower-case: ``Example.COM:3456`` -> ``example.com``,
    ``[::1]:80`` -> ``::1``; a trailing dot is dropped; ``""`` when there is none."""
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        name = v[1:end] if end > 0 else ""
    elif v.count(":") == 1:
        name = v.partition(":")[0]
    else:  # a bare name, or a bare IPv6 address (no port can be told apart)
        name = v
    return name.rstrip(".")


def is_local(name: str, request: web.Request, cfg: Config) -> bool:
    """Whether ``name`` is one a page elsewhere cannot make a browser send us (see the module docstring).
    An empty name (no Host header: not a browser) passes."""
    if not name or name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        if ipaddress.ip_address(name).is_loopback:
            return True
    except ValueError:
        pass
    listening = request.app[STATE].options.host  # --host, as given (a name, perhaps)
    if name in {host_name(h) for h in (cfg.server.host, listening) if h} | {cfg.server.host.lower()}:
        return True
    sock = request.transport.get_extra_info("sockname") if request.transport is not None else None
    return bool(sock) and isinstance(sock, tuple) and name == str(sock[0]).lower()


def foreign_origin(request: web.Request, cfg: Config) -> str | None:
    """What says this request comes from another site's page (to name in the 403), or None."""
    origin = request.headers.get("origin")
    if origin is not None:
        text = origin.strip()
        parts = urlsplit(text) if text.lower() != "null" else None
        same = parts is not None and parts.netloc.lower() == request.headers.get("host", "").strip().lower()
        if not same and (parts is None or not parts.scheme or not is_local(host_name(parts.netloc) or "?",
                                                                              request, cfg)):
            return f"Origin {text[:100]!r}"
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {site}"
    return None


def body_type_problem(request: web.Request) -> str | None:
    """Why this request's body has the wrong content type for its route, or None (no body, or a route that
    is not found: the router answers that)."""
    if not request.body_exists or request.content_length == 0:
        return None
    resource = request.match_info.route.resource
    if resource is None:
        return None
    path = resource.canonical.removeprefix(PROFILE_PREFIX)
    given = request.headers.get("content-type")
    if given == "application/json" and path not in MULTIPART_ROUTES:  # what nearly every client sends
        return None
    ctype = request.content_type.lower()
    if path in MULTIPART_ROUTES:
        if ctype == "multipart/form-data":
            return None
        want = "multipart/form-data"
    else:
        if ctype == "application/json" or ("/" in ctype and ctype.endswith("+json")):
            return None
        want = "application/json"
    got = f"content-type {given[:100]!r}" if given else "no content-type"
    return f"{request.method} {path} takes a {want} body, got {got}"
