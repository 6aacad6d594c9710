"""The daemon's own endpoints: ``/metrics``, ``/health`` and ``POST /api/reload`` (what the process says
about itself and how it is told to reload), beside the process code they read."""

from __future__ import annotations

import os
import signal

from aiohttp import web

from llmproxy.server.process.health import health_info, public_health
from llmproxy.server.process.runtime import reload
from llmproxy.server.request.edge import json_response
from llmproxy.server.request.middleware import is_authorised
from llmproxy.server.state import STATE, this_worker


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.metrics.in_flight.set(state.in_flight)
    state.metrics.observe_circuits(state.breakers.snapshot())
    return web.Response(body=state.metrics.render(),
                        headers={"content-type": "text/plain; version=0.0.4; charset=utf-8"})


async def health(request: web.Request) -> web.Response:
    """Everything to a caller the proxy would serve; with proxy keys set, only "up" to anyone else."""
    state = request.app[STATE]
    if not is_authorised(request):
        return json_response(public_health())
    return json_response(health_info(state))


async def api_reload(request: web.Request) -> web.Response:
    """Reload config, profiles and knowledge graphs now; answer whether it worked (422 with the problems)."""
    state = request.app[STATE]
    problems = await reload(state)
    if not problems and this_worker() is not None:  # the other workers reload on the supervisor's SIGHUP
        os.kill(os.getppid(), signal.SIGHUP)
    return json_response({"ok": not problems, "problems": problems,
                          "config_stale_since": state.config_stale_since}, status=422 if problems else 200)
