"""What ``/health`` and ``llmproxy status`` say about the daemon. Without proxy keys (or with the right
one) the whole picture; to anyone else only whether the daemon is up."""

from __future__ import annotations

import os
import time

from llmproxy import __version__, paths
from llmproxy.server.state import State, this_worker


def public_health() -> dict:
    return {"status": "ok"}


def health_info(state: State) -> dict:
    rt = state.runtime
    info = {
        "status": "ok", "version": __version__, "pid": os.getpid(),
        "uptime_s": round(time.time() - state.started, 1),
        "default_profile": rt.cfg.server.default_profile,
        "profiles": sorted(rt.profiles),
        "providers": {n: {"kind": p.config.kind, "live": p.simulated_reason is None,
                          "simulated_reason": p.simulated_reason} for n, p in sorted(rt.providers.items())},
        "circuits": state.breakers.snapshot(),
        "requests_served": state.served, "in_flight": state.in_flight,
        "config": rt.cfg.source,
        "home": str(paths.home()),
        "config_stale_since": state.config_stale_since,
        "reload_problems": state.reload_problems,
    }
    if (worker := this_worker()) is not None:  # the counts above are this worker's
        info["worker"] = f"{worker[0]}/{worker[1]}"
        info["supervisor_pid"] = os.getppid()
    fleet = state.fleet
    if fleet is not None:  # the store: kind, ok, lag_s since the last heartbeat written (server/process/fleet.py)
        info["store"] = fleet.health()
    if state.log is not None:
        health = getattr(state.log, "health", None)
        info["request_log"] = health() if callable(health) else {"writing": True}
    return info
