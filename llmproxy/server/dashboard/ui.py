"""The dashboard: ``GET /ui`` (static files shipped in the package) and its live feed.

- ``GET /api/events``: the live feed as server-sent events (``start`` when a request begins, ``end`` with
  its record when it is done), read from the event hub (``llmproxy/obs/hub.py``). Records are redacted
  as the log redacts them; bodies are not sent (``"bodies": true`` says the log has them).
- The JSON the page reads (one request, recent records, knowledge graphs, providers) is ``ui_api.py``'s;
  ``add_routes`` here mounts both.

The page is public (it holds no data); everything under ``/api/`` needs the proxy key when keys are set.
The page sends it as ``x-api-key`` (the feed is read with ``fetch``, so the key never goes in a URL).
Without proxy keys, these endpoints answer only requests addressed to a loopback name or the configured
host, so a web page elsewhere cannot read them through DNS rebinding (the origin guard, ``server/request/guard.py``,
checks that for every route).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import os
from pathlib import Path

from aiohttp import web

from llmproxy import __version__
from llmproxy.errors import NotFound, Overloaded
from llmproxy.obs.hub import Closed, Overrun
from llmproxy.server.dashboard.feed import render_batch, sse
from llmproxy.server.dashboard.ui_api import bodies_logged, kg, providers, request_detail, secrets_of, stats
from llmproxy.server.state import STATE

UI_DIR = Path(__file__).resolve().parents[2] / "ui"
#: the files the page is made of (nothing else under /ui/ is served)
FILES = {"index.html": "text/html", "app.css": "text/css", "app.js": "text/javascript",
         "charts.js": "text/javascript"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: seconds between keep-alive comments on an idle feed
HEARTBEAT = 15.0
#: a write to one browser that takes longer than this drops that browser
WRITE_TIMEOUT = 5.0


# ------------------------------------------------------------------------------------------------- page

class _Static:
    """The page's files, read once, with a gzip copy and an ETag."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[bytes, bytes, str]] = {}

    def get(self, name: str) -> tuple[bytes, bytes, str]:
        if name not in self.cache or os.environ.get("LLMPROXY_UI_DEV"):
            raw = (UI_DIR / name).read_bytes()
            self.cache[name] = (raw, gzip.compress(raw, 9, mtime=0), '"' + hashlib.sha256(raw).hexdigest()[:20] + '"')
        return self.cache[name]


_static = _Static()


def _file_response(request: web.Request, name: str) -> web.Response:
    try:
        raw, gz, etag = _static.get(name)
    except OSError:
        raise NotFound(f"the dashboard file {name!r} is missing from this installation") from None
    headers = {"content-type": FILES[name] + "; charset=utf-8", "cache-control": "no-cache", "etag": etag,
               "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "vary": "accept-encoding"}
    if name.endswith(".html"):
        headers["content-security-policy"] = CSP
        headers["x-frame-options"] = "DENY"
    if request.headers.get("if-none-match") == etag:
        return web.Response(status=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return web.Response(body=gz, headers=headers)
    return web.Response(body=raw, headers=headers)


async def page(request: web.Request) -> web.Response:
    return _file_response(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in FILES:
        raise NotFound(f"not found: {request.path}")
    return _file_response(request, name)


async def page_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ui")


# --------------------------------------------------------------------------------------------- events

async def events(request: web.Request) -> web.StreamResponse:
    """The live feed. A browser that stops reading (or falls more than the hub's ring behind) is dropped:
    its stream ends with a ``dropped`` event and the page reconnects."""
    state = request.app[STATE]
    hub = state.events
    sub = hub.subscribe()
    if sub is None:
        raise Overloaded(f"{hub.max_subscribers} dashboards are already following the feed", retry_after="5")
    resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-store",
                                       "x-accel-buffering": "no"})
    secrets = secrets_of(state)
    try:
        await resp.prepare(request)
        await resp.write(b"retry: 2000\n" + sse("hello", {"version": __version__, "seq": sub.cursor,
                                                           "bodies": bodies_logged(state)}))
        while True:
            try:
                batch = await sub.next_batch(timeout=HEARTBEAT)
            except Overrun as exc:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(resp.write(sse("dropped", {"reason": str(exc)})), 1.0)
                break
            except Closed:
                break
            chunk = render_batch(batch, secrets) if batch else b": ping\n\n"
            try:
                await asyncio.wait_for(resp.write(chunk), WRITE_TIMEOUT)
            except TimeoutError:
                hub.drop(sub, f"stalled: a write took longer than {WRITE_TIMEOUT:g}s")
                break
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(sub)
    return resp


async def close_events(app: web.Application) -> None:
    """on_shutdown: end every open feed so a graceful stop does not wait for them."""
    app[STATE].events.close()


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/ui", page)
    r.add_get("/ui/", page_redirect)
    r.add_get("/ui/{name}", asset)
    r.add_get("/api/events", events)
    r.add_get("/api/requests/{request_id}", request_detail)
    r.add_get("/api/stats", stats)
    r.add_get("/api/kg", kg)
    r.add_get("/api/providers", providers)
    app.on_shutdown.append(close_events)
