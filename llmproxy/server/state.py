"""Application state, kept under typed ``web.AppKey``s. ``Runtime`` is what a reload replaces as a whole
(config, compiled profiles, providers), so a request always sees one consistent version."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from llmproxy.config import Config
from llmproxy.obs.hub import EventHub
from llmproxy.obs.log import RequestLog
from llmproxy.providers import Provider
from llmproxy.routing import CompiledProfile, Router
from llmproxy.server.request.breaker import Breakers
from llmproxy.server.request.sending import SendWindows


@dataclass(frozen=True)
class Runtime:
    router: Router
    providers: dict[str, Provider]

    @property
    def cfg(self) -> Config:
        return self.router.cfg

    @property
    def profiles(self) -> Mapping[str, CompiledProfile]:
        return self.router.profiles


@dataclass
class Options:
    """How this server was started (the CLI's flags)."""
    config_path: Path | None = None
    profile_dirs: tuple[Path, ...] = ()
    simulate: bool = False
    verbose: int = 0
    host: str = ""              # the address it listens on ("" when not known: an embedded app)
    allow_remote: bool = False  # --allow-remote: a non-loopback address without proxy keys is allowed


@dataclass
class State:
    runtime: Runtime
    options: Options
    session: aiohttp.ClientSession | None = None
    log: RequestLog | None = None
    _metrics: object | None = None
    local_up: dict[str, bool] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    served: int = 0
    in_flight: int = 0
    breakers: Breakers = field(default_factory=Breakers)
    worker: int | None = None   # this worker's index in a ``serve --workers N`` daemon
    reload_problems: list[str] = field(default_factory=list)
    config_stale_since: str | None = None   # when a reload last failed (ISO time), until one succeeds
    events: EventHub = field(default_factory=EventHub)  # the dashboard's live feed (llmproxy/server/dashboard/ui.py)
    send_windows: SendWindows | None = None  # made (and resized) by dispatch.send_windows
    fleet: object | None = None  # server/process/fleet.Fleet: the registry heartbeat and the usage ledger (None until started)

    @property
    def metrics(self):
        """Prometheus metrics, created on first use (keeps prometheus-client off the start-up path)."""
        if self._metrics is None:
            from llmproxy.obs.metrics import Metrics

            self._metrics = Metrics()
        return self._metrics


def this_worker() -> tuple[int, int] | None:
    """(index, count) in a worker of a ``serve --workers N`` daemon, else None."""
    i, _, n = os.environ.get(WORKER_ENV, "").partition("/")
    return (int(i), int(n)) if i.isdigit() and n.isdigit() else None


WORKER_ENV = "LLMPROXY_WORKER"  # "i/N" in each worker process of a multi-worker daemon
STATE = web.AppKey("state", State)
#: the batches-and-files store, opened by ``batches.store_context`` (None before it opens)
STORE = web.AppKey("store", object)
REQUEST_ID = web.RequestKey("request_id", str)
