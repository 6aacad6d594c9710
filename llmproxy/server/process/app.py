"""The aiohttp app factory: typed state under AppKeys, the upstream client session and the request log
as cleanup contexts, and every route under the bare root and under each ``/p/<profile>`` prefix. In front of
every route: errors rendered in the API's shape, the origin guard (``server/request/guard.py``), then auth."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from llmproxy import config as config_mod
from llmproxy import paths, providers
from llmproxy.obs.log import RequestLog
from llmproxy.server.batch import batches, files
from llmproxy.server.dashboard import keys_api, ui
from llmproxy.server.dashboard.relay import relay_context
from llmproxy.server.process import endpoints
from llmproxy.server.process.fleet import fleet_context
from llmproxy.server.process.runtime import load_runtime, reload, with_providers
from llmproxy.server.request import handlers, openai_surface
from llmproxy.server.request.guard import guard_middleware
from llmproxy.server.request.middleware import (
    REJECTIONS,
    auth_middleware,
    errors_middleware,
    rejection_budget,
)
from llmproxy.server.state import STATE, State

__all__ = ["create_app", "load_runtime", "reload"]

log = logging.getLogger("llmproxy")


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    # no pool cap: admission control (server.max_concurrent_requests) bounds the work, and a request must
    # never wait for a pooled connection (that wait would be reported as an upstream timeout)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
    state.session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
    state.local_up = await providers.probe_local(state.runtime.cfg)
    state.runtime = with_providers(state, state.runtime)
    yield
    await state.session.close()


async def _request_log(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    cfg = state.runtime.cfg
    state.log = RequestLog(paths.request_log(), cfg.log.rotate_bytes,
                           cfg.log.rotate_keep, secrets=_known_secrets(cfg), body_max_bytes=cfg.log.body_max_bytes,
                           enabled=cfg.log.enabled)
    for listener in app.get(LISTENERS, ()):
        state.log.add_listener(listener)
    state.log.start()
    yield
    await state.log.close()


def _known_secrets(cfg: config_mod.Config) -> tuple[str, ...]:
    import os

    vals = [os.environ.get(p.api_key_env, "") for p in cfg.providers.values() if p.api_key_env]
    return tuple(v for v in (*vals, *cfg.api_keys) if v)


LISTENERS = web.AppKey("listeners", list)


def create_app(state: State, listeners: list | None = None) -> web.Application:
    srv = state.runtime.cfg.server
    # the parser's own limits sit well above ours, so that what exceeds ours is answered by the middleware in
    # the API's error shape (the parser can only answer text/plain)
    hard = {"max_line_size": 4 * srv.max_header_bytes, "max_field_size": 4 * srv.max_header_bytes,
            "max_headers": 4 * srv.max_headers}
    app = web.Application(client_max_size=srv.max_body_bytes, handler_args=hard,
                          middlewares=[errors_middleware, guard_middleware, auth_middleware])
    app[STATE] = state
    app[REJECTIONS] = rejection_budget()
    app[LISTENERS] = list(listeners or [])
    app.cleanup_ctx.append(_client_session)
    app.cleanup_ctx.append(_request_log)
    app.cleanup_ctx.append(batches.store_context)
    app.cleanup_ctx.append(relay_context)
    app.cleanup_ctx.append(fleet_context)  # after the store and the request log: heartbeat, usage ledger
    for prefix in ("", "/p/{profile}"):
        r = app.router
        r.add_post(prefix + "/v1/messages", handlers.messages)
        r.add_post(prefix + "/v1/messages/count_tokens", handlers.count_tokens)
        r.add_get(prefix + "/v1/models", handlers.list_models)
        r.add_get(prefix + "/v1/models/{model_id:.+}", handlers.get_model)
        r.add_post(prefix + "/v1/chat/completions", openai_surface.chat_completions)
        r.add_post(prefix + "/api/route", handlers.api_route)
        r.add_post(prefix + "/api/reload", endpoints.api_reload)
        batches.add_routes(app, prefix)
        files.add_routes(app, prefix)
        r.add_get(prefix or "/", handlers.root)
        if prefix:
            r.add_get(prefix + "/", handlers.root)
    app.router.add_get("/health", endpoints.health)
    app.router.add_get("/metrics", endpoints.metrics)
    keys_api.add_routes(app)
    ui.add_routes(app)
    return app
