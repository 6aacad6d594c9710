"""This instance's part in the fleet (docs/scaling.md), as background tasks of the app (a cleanup context),
never on the request path:

* the **registry heartbeat**: every ``[store] heartbeat_seconds`` this instance's row (id, host, port,
  version, pid, start time, its circuits) is written to the store; ``llmproxy status --fleet`` lists the
  rows. With the SQLite store the "fleet" is the ``serve --workers N`` processes of one host.
* the **usage ledger**: the request log's listener adds each finished request to a per-minute aggregate in
  memory (``obs/ledger.py``); every ``[store] ledger_flush_seconds`` the aggregates are added to the store's
  ledger (an upsert that sums). ``llmproxy stats --fleet`` reads it.
* the **fleet-wide key limits**: every ``keylimits.SYNC_S`` (or at once when a request waits for one) this
  process claims request allowances for its keys, adds its token and cost counts to the store's and reads
  the fleet's sums back (``server/request/keylimits.py``).

When the store is unreachable both keep trying with exponential backoff (up to ``BACKOFF_MAX_S``); the
ledger keeps aggregating in memory up to its bound. ``/health`` shows the store's kind, whether the last
write succeeded and the seconds since the last successful heartbeat (``lag_s``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from llmproxy import __version__, paths
from llmproxy.obs.ledger import Ledger
from llmproxy.pidfile import read_pid_file
from llmproxy.server.request.keylimits import FLEET, sync_forever
from llmproxy.server.state import STATE, STORE, State
from llmproxy.store import Instance, Store
from llmproxy.store.schema import now_iso

log = logging.getLogger("llmproxy")
#: the longest wait between two attempts while the store is unreachable
BACKOFF_MAX_S = 30.0
#: how long a clean stop waits for the last ledger write and the registry row's removal
STOP_TIMEOUT_S = 3.0


def backoff(failures: int, base: float) -> float:
    """The wait after ``failures`` consecutive failures: ``base`` doubled each time up to BACKOFF_MAX_S, with
    up to 20% jitter so that instances that lost the database together do not return together."""
    wait = min(BACKOFF_MAX_S, base * 2 ** min(failures, 16))
    return wait * (1 + random.random() / 5) if failures else base


class Fleet:
    def __init__(self, state: State, store: Store):
        self.state, self.store = state, store
        self.kind = getattr(store, "kind", "sqlite")
        self.instance = Instance(id=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
                                 host=socket.gethostname(), port=0, version=__version__, pid=os.getpid(),
                                 started_at=now_iso())
        self.ledger = Ledger(lambda: state.runtime.cfg, on_drop=lambda n: state.metrics.ledger_dropped.inc(n))
        self.last_beat: float | None = None   # time.monotonic() of the last successful heartbeat
        self.ok = False                       # whether the last background write succeeded
        self.last_error: str | None = None
        self._tasks: list[asyncio.Task] = []

    @property
    def cfg(self):
        return self.state.runtime.cfg.store

    def health(self) -> dict:
        """``/health``'s ``store``: kind, ok, lag_s (seconds since the last successful heartbeat; None before
        the first), the ledger's buffer and what it dropped."""
        lag = None if self.last_beat is None else round(time.monotonic() - self.last_beat, 1)
        return {"kind": self.kind, "ok": self.ok, "lag_s": lag, "last_error": self.last_error,
                "instance": self.instance.id,
                "ledger": {"buffered": self.ledger.buffered(), "dropped": self.ledger.dropped}}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every("heartbeat", lambda: self.cfg.heartbeat_seconds, self._beat)),
                       loop.create_task(self._every("ledger", lambda: self.cfg.ledger_flush_seconds, self._flush)),
                       loop.create_task(sync_forever(self.store, lambda e, n: self._failed("limits", e, n)))]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), STOP_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.store.forget_instance(self.instance.id), STOP_TIMEOUT_S)

    async def _every(self, task: str, interval: Callable[[], float], work: Callable[[], Awaitable[None]]) -> None:
        """``work`` now and then every ``interval()`` seconds; after a failure, again after a backoff."""
        failures = 0
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store is down or failing: keep trying
                failures += 1
                self._failed(task, exc, failures)
            else:
                if failures:
                    log.info("store reachable again (%s, after %d failed attempt(s))", task, failures)
                failures = 0
            await asyncio.sleep(backoff(failures, interval()))

    def _failed(self, task: str, exc: Exception, failures: int) -> None:
        message = f"{type(exc).__name__}: {exc}"  # StoreUnavailable names the store without its password
        self.ok = False
        self.state.metrics.store_failures.labels(task).inc()
        if failures == 1 or message != self.last_error:
            log.warning("store write failed (%s): %s; retrying with backoff", task, message)
        self.last_error = message

    async def _beat(self) -> None:
        inst = self.instance
        inst.port = inst.port or listening_port()
        inst.circuits = self.state.breakers.snapshot()
        await self.store.heartbeat(inst)
        self.last_beat, self.ok = time.monotonic(), True
        FLEET.peers = max(1, sum(i.seen_ago_s < 3 * self.cfg.heartbeat_seconds for i in await self.store.instances()))

    async def _flush(self) -> None:
        rows = self.ledger.take()
        if not rows:
            return
        try:
            await self.store.add_usage(rows)
        except BaseException:
            self.ledger.give_back(rows)  # kept for the next attempt (to the buffer's bound)
            raise


def listening_port() -> int:
    """The port this daemon serves on, from its pid file (written once it listens; with ``--workers`` the
    supervisor's); 0 while unknown (not yet listening, or an app embedded in tests)."""
    data = read_pid_file(paths.pid_file())
    if data and data.get("pid") in (os.getpid(), os.getppid()) and isinstance(data.get("port"), int):
        return data["port"]
    return 0


async def fleet_context(app: web.Application) -> AsyncIterator[None]:
    """The heartbeat and the ledger for the app's lifetime (after the store and the request log exist)."""
    state = app[STATE]
    fleet = Fleet(state, app[STORE])
    if state.log is not None:
        state.log.add_listener(fleet.ledger.add)
    state.fleet = fleet
    fleet.start()
    yield
    await fleet.stop()
