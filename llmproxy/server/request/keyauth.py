"""Who a request comes from (issue 27): a key of the config's ``[auth] api_keys`` (an admin: unlimited, every
route), a client key from the store (``llmproxy keys``: limited to its profiles, not the admin routes), or
nobody when the proxy is open (no config keys and no key ever created).

A store key is found by the keyed hash of the presented secret through ``KeyCache``: an in-process cache
whose entries (found or not) live ``KEY_CACHE_TTL_S``, so a revocation made anywhere (the CLI, another
instance, another worker) is seen by every process within that time, while a burst of requests with one key
asks the store once (concurrent misses share one lookup). The lookup runs on the store's own thread (SQLite)
or the event loop's asyncpg pool (PostgreSQL): it never blocks the loop.

Also here: a limited key's allowed profiles (``check_profile``, ``check_batch``), the admin-only routes, and
``check_limits``: its budget and ``--rpm`` / ``--tpm`` across the fleet (``server/request/keylimits.py``), or in this
process (``RequestWindows``, ``TokenWindows``) without a fleet task or while the store is down
(docs/operations.md "Keys").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from llmproxy import paths
from llmproxy.errors import AuthenticationFailed, NotFound, PermissionDenied, ProxyError, RateLimited
from llmproxy.server.request.keylimits import CLAIM_WAIT_S, FLEET, Budgets, check_budget, period_spend
from llmproxy.server.state import STATE, STORE
from llmproxy.store import Store
from llmproxy.store.keys import SECRET_PREFIX, ApiKey, key_hash, load_server_secret

log = logging.getLogger("llmproxy")

#: how long a key looked up in the store (or found absent) is trusted: the bound on revocation latency
KEY_CACHE_TTL_S = 1.0
#: entries kept at most (a flood of wrong secrets evicts the oldest, never grows the cache)
KEY_CACHE_MAX = 10_000


@dataclass(frozen=True)
class Caller:
    admin: bool                   # a config key, or an open proxy: every route
    key: ApiKey | None = None     # the store key it came with
    proxy_credential: bool = False  # the credential was ours: never forwarded upstream


class RequestWindows:
    """``--rpm`` per key: a sliding window of the last minute's admitted requests, per process (an instance,
    or a worker of ``serve --workers N``): the fallback of the fleet-wide limit (``keylimits.FleetWindows``).
    Exact within the process: at most ``limit`` admitted in any ``window`` seconds."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window, self.clock = window, clock
        self._seen: dict[str, deque[float]] = {}

    def admit(self, key_id: str, limit: int) -> float | None:
        """None when admitted (and counted), else the seconds until a place frees up."""
        now = self.clock()
        seen = self._seen.setdefault(key_id, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= limit:
            return seen[0] + self.window - now
        seen.append(now)
        return None


class TokenWindows:
    """``--tpm`` per key: the tokens of the requests a key finished in the last minute, per process (as
    ``RequestWindows``). A request is admitted while the sum is under the limit; its own tokens count once it
    has finished, so the overshoot is bounded by the requests already in flight."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window, self.clock = window, clock
        self._seen: dict[str, deque[tuple[float, int]]] = {}
        self._sum: dict[str, int] = {}

    def add(self, key_id: str, tokens: int) -> None:
        if tokens > 0:
            self._seen.setdefault(key_id, deque()).append((self.clock(), tokens))
            self._sum[key_id] = self._sum.get(key_id, 0) + tokens

    def wait(self, key_id: str, limit: int) -> float | None:
        """None while the key's tokens in the window are under ``limit``, else the seconds until enough of
        them leave it."""
        now, seen = self.clock(), self._seen.get(key_id)
        if not seen:
            return None
        while seen and seen[0][0] <= now - self.window:
            self._sum[key_id] -= seen.popleft()[1]
        total = self._sum.get(key_id, 0)
        if total < limit:
            return None
        for at, n in seen:  # the oldest first: once enough have left, the sum is under the limit
            total -= n
            if total < limit:
                return at + self.window - now
        return None


def usage_tokens(usage: object) -> int:
    """The tokens ``--tpm`` counts in a record's usage: input (uncached and written to the cache) and output,
    as Anthropic's own rate limits count them; cache reads are not counted."""
    if not isinstance(usage, dict):
        return 0
    names = ("input_tokens", "cache_creation_input_tokens", "output_tokens")
    return sum(v for k in names if isinstance(v := usage.get(k), int) and v > 0)


#: this process's windows (the limits are per process: docs/operations.md "Keys")
REQUESTS = RequestWindows()
TOKENS = TokenWindows()


def spend_tokens(key_id: str, usage: object, cost: float | None = None) -> None:
    """Count a finished request's tokens against its key's ``--tpm`` (called when its record is finished), in
    this process's window and, with its cost (budgets), in the fleet's counters (``keylimits.FLEET``)."""
    tokens = usage_tokens(usage)
    TOKENS.add(key_id, tokens)
    FLEET.finished(key_id, tokens, cost)


class KeyCache:
    def __init__(self, home: Path, ttl: float = KEY_CACHE_TTL_S, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = KEY_CACHE_MAX):
        self.home, self.ttl, self.clock, self.max_entries = home, ttl, clock, max_entries
        self._secret: bytes | None = None
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self._any: tuple[float, bool] | None = None
        self._any_task: asyncio.Future | None = None

    async def lookup(self, store: Store, secret: str, fail_open: bool = False) -> ApiKey | None:
        """The store key with this secret (revoked and expired ones too), as of at most ``ttl`` ago. With
        ``fail_open`` (``[auth] on_store_down = "open"``) a key found before is answered at once as last found
        while it is asked again in the background (a store that is down is not waited for; a revocation is
        seen within ``ttl`` and one lookup, as without)."""
        if self._secret is None:
            try:
                self._secret = await asyncio.to_thread(load_server_secret, self.home)
            except (OSError, ValueError) as exc:  # names the file and the fix, never its content
                raise ProxyError(f"cannot check proxy keys: {exc}") from None
        digest = key_hash(self._secret, secret)
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        task = self._inflight.get(digest)
        if task is None:
            task = self._inflight[digest] = asyncio.ensure_future(self._fetch(store, digest))
            task.add_done_callback(lambda t: self._inflight.pop(digest, None) and (t.cancelled() or t.exception()))
        if fail_open and hit is not None:
            return hit[1]  # asked again in the background: the live path never waits on a store that may be down
        return await asyncio.shield(task)

    async def _fetch(self, store: Store, digest: str) -> ApiKey | None:
        key = await store.key_by_hash(digest)
        self._entries.pop(digest, None)
        while len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[digest] = (self.clock() + self.ttl, key)
        return key

    def keys_known(self) -> bool:
        """What ``keys_exist`` last answered (False before it was first asked)."""
        return self._any is not None and self._any[1]

    async def keys_exist(self, store: Store) -> bool:
        """Whether any key was ever created (then a credential is required). Keys are never deleted, so a yes
        is kept. A no is refreshed in the background once ``ttl`` has passed, the request going on with the
        last answer: the live path of a proxy without keys never waits on the store (a first key is in force
        within ``ttl`` and one lookup). Only the very first answer is waited for (one lookup for every request
        that wants it); if the store cannot give it, the error propagates and the request is refused."""
        if self._any is not None:
            if self._any[1]:
                return True
            if self._any[0] <= self.clock() and self._any_task is None:
                task = self._any_task = asyncio.ensure_future(self._refresh_any(store))
                task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures: logged, retried
            return False
        if self._any_task is None:
            self._any_task = asyncio.ensure_future(self._refresh_any(store))
        return await asyncio.shield(self._any_task)

    async def _refresh_any(self, store: Store) -> bool:
        try:
            found = await store.has_keys()
        except Exception as exc:
            if self._any is not None:  # keep the last answer, ask again after ttl
                self._any = (self.clock() + self.ttl, self._any[1])
                log.warning("cannot ask the store whether keys exist: %s: %s", type(exc).__name__, exc)
            raise
        finally:
            self._any_task = None
        self._any = (self.clock() + self.ttl, found)
        return found


def refusal(key: ApiKey) -> AuthenticationFailed | None:
    """Why a store key found by its secret may not be used (never quoting the secret), or None."""
    state = key.state()
    if state == "revoked":
        return AuthenticationFailed(f"proxy key {key.name!r} was revoked at {key.revoked_at}; ask the proxy's "
                                    "admin for a new one")
    if state == "expired":
        return AuthenticationFailed(f"proxy key {key.name!r} expired at {key.expires_at}; ask the proxy's admin "
                                    f"to extend it (llmproxy keys update {key.name} --expires DATE)")
    return None


def is_store_secret(presented: str) -> bool:
    return presented.startswith(SECRET_PREFIX)


#: the one ``/api/`` route for every caller: a store key's own usage (``own_key``)
OWN_KEY_PATH = "/api/keys/me"


def is_admin_path(path: str) -> bool:
    """The dashboard's data and control routes (``/api/…``, also under ``/p/<profile>``; not ``OWN_KEY_PATH``)
    and ``/metrics``."""
    if path.startswith("/p/"):
        path = "/" + path[3:].partition("/")[2]
    return (path.startswith("/api/") and path != OWN_KEY_PATH) or path == "/metrics"


CALLER = web.RequestKey("caller", Caller)


def check_profile(request: web.Request, profile: str, body: object = None) -> None:
    """A 403 naming the allowed profiles when the request's store key may not use ``profile``, or the one
    ``body``'s ``model`` switches to (``profile:<name>``); a model naming a target directly
    (``provider,model``) would bypass the profiles, so a limited key may not send one."""
    caller = request.get(CALLER)
    if caller is None or caller.key is None or not caller.key.profiles:
        return
    key = caller.key
    allowed = ", ".join(key.profiles)
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str) and model.startswith("profile:"):
        profile = model[len("profile:"):].strip()
    elif isinstance(model, str) and "," in model:
        raise PermissionDenied(f"key {key.name!r} may not name a target directly (model {model[:100]!r}); "
                               f"it may use the profiles {allowed}")
    if profile not in key.profiles:
        raise PermissionDenied(f"key {key.name!r} may not use profile {profile!r}; allowed profiles: {allowed} "
                               "(choose one by /p/<profile>, the x-llmproxy-profile header or model "
                               "'profile:<name>')")


_CACHES: weakref.WeakKeyDictionary[web.Application, KeyCache] = weakref.WeakKeyDictionary()


def cache_of(app: web.Application) -> KeyCache:
    """The app's key cache (one per app, made on first use under this process's LLMPROXY_HOME)."""
    cache = _CACHES.get(app)
    if cache is None:
        cache = _CACHES[app] = KeyCache(paths.home())
    return cache


def store_of_app(app: web.Application) -> Store | None:
    """The app's store, once its cleanup context opened it."""
    return app.get(STORE)  # type: ignore[return-value]


async def caller_of(request: web.Request, presented: str | None, config_keys: list[str],
                    matches_config: Callable[[str], bool]) -> Caller | None:
    """Who presents ``presented``: a Caller, None (no or an unknown credential where one is needed), or an
    AuthenticationFailed raised naming why a known store key may not be used."""
    if presented is not None and config_keys and matches_config(presented):
        return Caller(admin=True, proxy_credential=True)
    store = store_of_app(request.app)
    cache = cache_of(request.app)
    try:
        store_keys = store is not None and await cache.keys_exist(store)
        fail_open = request.app[STATE].runtime.cfg.auth.on_store_down == "open"
        key = await cache.lookup(store, presented, fail_open) \
            if presented and store_keys and is_store_secret(presented) else None
    except ProxyError:
        raise
    except Exception as exc:  # the store unreachable: the caller may retry; never a key let through unchecked
        log.warning("cannot check a proxy key: %s: %s", type(exc).__name__, exc)
        raise ProxyError("cannot check the proxy key now: the key store is unreachable; retry shortly",
                         status=503, retry_after="1") from None
    if key is not None:
        if (why := refusal(key)) is not None:
            raise why
        return Caller(admin=False, key=key, proxy_credential=True)
    if not config_keys and not store_keys:
        return Caller(admin=True)  # an open proxy: anyone, as without keys
    return None


def check_batch(request: web.Request, profile: str, data: object) -> None:
    """``check_profile`` for a batch's profile and for each of its requests' ``model`` (a limited key's
    batch may not switch a request to another profile or a target either)."""
    check_profile(request, profile)
    caller = request.get(CALLER)
    if caller is None or caller.key is None or not caller.key.profiles or not isinstance(data, dict):
        return
    for item in data.get("requests") or ():
        check_profile(request, profile, item.get("params") if isinstance(item, dict) else None)


#: the requests ``--rpm`` counts: calls of a model (not listing models, reading batches or files)
MODEL_CALLS = ("/v1/messages", "/v1/chat/completions")


def is_model_call(request: web.Request) -> bool:
    return request.method == "POST" and request.path.endswith(MODEL_CALLS)


async def check_limits(request: web.Request, caller: Caller) -> None:
    """A store key's limits before its model request is sent: its budget (``BudgetSpent``) and its
    ``--rpm`` / ``--tpm`` (``RateLimited``) — across every instance on the store when the app has a fleet
    task (``server/request/keylimits.py``), else in this process (``check_rate``)."""
    key = caller.key
    if key is None or not (key.rpm or key.tpm or key.budget_usd is not None) or not is_model_call(request):
        return
    state = request.app[STATE]
    fleet = state.fleet
    fail_open = state.runtime.cfg.auth.on_store_down == "open"
    if key.budget_usd is not None:
        await check_budget(key, store_of_app(request.app), budgets_of(request.app), FLEET, fail_open)
    if key.rpm or key.tpm:
        await _check_rates(request, caller, fleet is not None, fail_open)
    if key.budget_usd is not None and (task := asyncio.current_task()) is not None:
        FLEET.opened(key.id)  # in flight until this request's task ends (how near its budget the key may be)
        task.add_done_callback(lambda _t: FLEET.closed(key.id))


async def _check_rates(request: web.Request, caller: Caller, fleet: bool, fail_open: bool) -> None:
    """``--rpm`` / ``--tpm``: across the fleet (``FLEET``), else (no fleet task, or the store down and
    ``fail_open``) in this process (``check_rate``)."""
    key = caller.key
    if not fleet:
        return check_rate(request, caller)
    if not fail_open and not await FLEET.fresh():
        raise ProxyError("cannot check the key's rate limits now: the store is unreachable; retry shortly",
                         status=503, retry_after="1")
    refused = FLEET.admit(key.id, key.rpm, key.tpm)
    if refused is not None and refused[0] == "claim":  # no allowance left here: wait for the sync's claim
        await FLEET.next_sync(CLAIM_WAIT_S)
        refused = FLEET.admit(key.id, key.rpm, key.tpm)
        if refused is not None and refused[0] == "claim":  # none granted, or the store did not answer
            if fail_open and FLEET.stale():
                return check_rate(request, caller)  # the store is down: this process's own windows
            refused = ("rpm", 1.0)
    if refused is not None:
        why, wait = refused
        raise _limited(f"key {key.name!r} has used its {key.tpm} tokens per minute" if why == "tpm" else
                       f"key {key.name!r} is over its limit of {key.rpm} requests per minute", wait)


_BUDGETS: weakref.WeakKeyDictionary[web.Application, Budgets] = weakref.WeakKeyDictionary()


def budgets_of(app: web.Application) -> Budgets:
    budgets = _BUDGETS.get(app)
    if budgets is None:
        budgets = _BUDGETS[app] = Budgets()
    return budgets


def check_rate(request: web.Request, caller: Caller) -> None:
    """A 429 ``rate_limit_error`` with ``retry-after`` when the caller's key is over its ``--rpm`` or
    ``--tpm`` in this process (``REQUESTS``, ``TOKENS``)."""
    key = caller.key
    if key is None or not (key.rpm or key.tpm) or not is_model_call(request):
        return
    if key.tpm and (wait := TOKENS.wait(key.id, key.tpm)) is not None:
        raise _limited(f"key {key.name!r} has used its {key.tpm} tokens per minute", wait)
    if key.rpm and (wait := REQUESTS.admit(key.id, key.rpm)) is not None:
        raise _limited(f"key {key.name!r} is over its limit of {key.rpm} requests per minute", wait)


def _limited(why: str, wait: float) -> RateLimited:
    secs = max(1, math.ceil(wait))
    return RateLimited(f"{why}; retry in {secs} s", retry_after=str(secs))


async def own_key(request: web.Request) -> web.Response:
    """``GET /api/keys/me``: the caller's own store key — name, state, limits and, with a budget, its spend
    this period, what is left and when it resets (the status line shows it). Any store key may ask, about
    itself only; a config key or an open proxy has no such key (404)."""
    caller = request.get(CALLER)
    key = caller.key if caller is not None else None
    if key is None:
        raise NotFound("this credential is not a store key (llmproxy keys): it has no budget or usage here")
    out = {k: v for k, v in key.to_json().items() if k not in ("revoked_at", "rotated_from")}
    store = store_of_app(request.app)
    if key.budget_usd is not None and store is not None:
        fail_open = request.app[STATE].runtime.cfg.auth.on_store_down == "open"
        spent, end = await period_spend(key, store, budgets_of(request.app), FLEET, fail_open)
        out.update(spent_usd=round(spent, 6), remaining_usd=round(max(0.0, key.budget_usd - spent), 6),
                   resets_at=end.isoformat().replace("+00:00", "Z"))
    return web.json_response(out)
