"""``GET /api/keys``: the store's client keys as JSON (admins only, as everything under ``/api/``), for the
dashboard and scripts; never a secret (the store has none). Keys are created and changed with ``llmproxy
keys`` (docs/operations.md "Keys"). ``GET /api/keys/me``, a store key's own usage, is any store key's
(``keyauth.own_key``).

``GET /api/keys/usage`` (admins): every live (not revoked) key with its spend this budget period, what is
left and when it resets — the dashboard's Keys panel. One read of the store for all dashboards every
``USAGE_TTL_S`` (concurrent callers share it): the key list, and per key with a budget its spend through
the same cache and fleet counters the budget check uses (``keylimits.period_spend``)."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from datetime import UTC, datetime

from aiohttp import web

from llmproxy.errors import ProxyError
from llmproxy.server.request.edge import json_response
from llmproxy.server.request.keyauth import OWN_KEY_PATH, budgets_of, own_key, store_of_app
from llmproxy.server.request.keylimits import FLEET, period_spend
from llmproxy.server.state import STATE
from llmproxy.store import Store, StoreUnavailable
from llmproxy.store.keys import ApiKey

log = logging.getLogger("llmproxy")
USAGE_PATH = "/api/keys/usage"
#: how long one answer of ``/api/keys/usage`` serves every dashboard (seconds)
USAGE_TTL_S = 3.0
#: how long a read of the key list may take before the answer is a 503 (the dashboard keeps its last rows)
READ_TIMEOUT_S = 5.0
_USAGE: weakref.WeakKeyDictionary[web.Application, UsageCache] = weakref.WeakKeyDictionary()


async def list_keys(request: web.Request) -> web.Response:
    """Every key, revoked ones included, oldest first: ``{"data": [{id, name, state, profiles, …}]}``."""
    return json_response({"data": [k.to_json() for k in await read_keys(_store(request.app))]})


async def read_keys(store: Store) -> list[ApiKey]:
    """The store's keys; a store that fails or does not answer within ``READ_TIMEOUT_S``: a 503 saying so
    (``StoreUnavailable`` names the store without its password; other errors by their type alone)."""
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            return await store.list_keys()
    except Exception as exc:  # noqa: BLE001 - whatever the database said, the caller hears a 503, not a 500
        why = (str(exc) if isinstance(exc, StoreUnavailable) else
               f"no answer within {READ_TIMEOUT_S:g}s" if isinstance(exc, TimeoutError) else type(exc).__name__)
        log.warning("cannot list the keys: %s", why)
        raise ProxyError(f"cannot list the keys now: the store is unreachable ({why})", status=503,
                         retry_after="1") from None


def _store(app: web.Application) -> Store:
    store = store_of_app(app)
    if store is None:
        raise ProxyError("the store is not open yet", status=503, retry_after="1")
    return store


class UsageCache:
    """The last answer of ``/api/keys/usage`` for ``ttl`` seconds; one read at a time (callers wait on it)."""

    def __init__(self, ttl: float = USAGE_TTL_S):
        self.ttl = ttl
        self._answer: tuple[float, dict] | None = None
        self._read: asyncio.Future | None = None

    async def get(self, app: web.Application) -> dict:
        if self._answer is not None and self._answer[0] > time.monotonic():
            return self._answer[1]
        if self._read is None:
            self._read = asyncio.ensure_future(self._fetch(app))
            self._read.add_done_callback(self._done)
        return await asyncio.shield(self._read)

    def _done(self, read: asyncio.Future) -> None:
        self._read = None
        if not read.cancelled() and read.exception() is None:
            self._answer = (time.monotonic() + self.ttl, read.result())

    async def _fetch(self, app: web.Application) -> dict:
        store = store_of_app(app)
        if store is None:  # starting: no keys to show yet (the panel stays hidden; not an error on the page)
            return {"data": [], "as_of": None, "ttl_s": self.ttl, "note": "the store is not open yet"}
        fail_open = app[STATE].runtime.cfg.auth.on_store_down == "open"
        keys = await read_keys(store)
        rows = [await key_usage(app, store, k, fail_open) for k in keys if k.revoked_at is None]
        as_of = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return {"data": rows, "as_of": as_of, "ttl_s": self.ttl}


async def key_usage(app: web.Application, store: Store, key: ApiKey, fail_open: bool) -> dict:
    """One key's row: its fields (no ``revoked_at``: live keys only) and, with a budget, ``spent_usd``,
    ``remaining_usd`` and ``resets_at`` (null without one)."""
    out = {k: v for k, v in key.to_json().items() if k != "revoked_at"}
    out.update(spent_usd=None, remaining_usd=None, resets_at=None)
    if key.budget_usd is not None and key.budget_period is not None:
        spent, end = await period_spend(key, store, budgets_of(app), FLEET, fail_open)
        out.update(spent_usd=round(spent, 6), remaining_usd=round(max(0.0, key.budget_usd - spent), 6),
                   resets_at=end.isoformat().replace("+00:00", "Z"))
    return out


async def keys_usage(request: web.Request) -> web.Response:
    """``{"data": [{id, name, state, profiles, rpm, tpm, budget_usd, budget_period, spent_usd, remaining_usd,
    resets_at, …}], "as_of": …, "ttl_s": …}``: the live keys, oldest first."""
    cache = _USAGE.get(request.app)
    if cache is None:
        cache = _USAGE[request.app] = UsageCache()
    return json_response(await cache.get(request.app))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/keys", list_keys)
    app.router.add_get(USAGE_PATH, keys_usage)
    app.router.add_get(OWN_KEY_PATH, own_key)  # any store key, about itself (server/request/keyauth.py)
