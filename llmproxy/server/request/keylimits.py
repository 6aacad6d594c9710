"""A store key's limits that hold across a fleet (issue 27; docs/scaling.md "Limits across instances"):

* **Budgets** (``--budget 50/month``): before a model request is sent, the key's spend this period is
  compared with its budget: the store's usage ledger for the minutes up to two minutes ago (read through
  ``Budgets``, a cache whose answers live ``BUDGET_CACHE_TTL_S`` and are refreshed in the background: the
  live path waits on the store once per key and minute at most), plus the cost of the requests finished
  since, from the fleet counters below (every instance's as of the last sync, this process's at once).
  Spent: ``429 rate_limit_error`` with ``x-should-retry: false``. A request already admitted is never cut:
  the overspend is bounded by the requests in flight: near a budget's end (``FleetWindows.is_near``) every
  instance syncs a finished request's cost at once and admits only after a sync that started after the
  request came.
* **Fleet-wide ``--rpm`` / ``--tpm``** (``FleetWindows``): each process counts its admissions, tokens and
  cost per key and minute window, and every ``SYNC_S`` the fleet task adds them to the store's counters
  (``key_windows``, one upsert) and reads every instance's sums back. A request is admitted while the
  sliding estimate (the previous window weighted by how much of it is still inside the last 60 s, plus
  the current one) of the fleet's sums plus this process's unsynced counts is under the limit; between two
  syncs a process admits at most its share (the remaining allowance divided by the live instances).

When the store cannot be read, ``[auth] on_store_down`` decides: ``closed`` (the default) refuses a limited
key's requests with a 503, ``open`` goes on with the last answers and this process's own counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from llmproxy.errors import ProxyError, RateLimited
from llmproxy.store import Store
from llmproxy.store.keys import ApiKey

log = logging.getLogger("llmproxy")

#: how long a key's spend read from the ledger is trusted before it is read again (in the background)
BUDGET_CACHE_TTL_S = 1.0
#: how often each process adds its rate counts to the store's and reads the fleet's back
SYNC_S = 0.2
#: the part of a budget left under which a key's requests wait for a fresh sync before they are admitted
NEAR = 0.1
#: the longest a request waits for its instance to claim an allowance for its key
CLAIM_WAIT_S = 2.0
#: with ``on_store_down = "closed"``: fleet counts older than this refuse a limited key's requests
STALE_S = 3.0


class BudgetSpent(RateLimited):
    """A key's budget for this period is spent: no client retry helps before the period resets."""
    retryable, should_retry = False, False


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The UTC start and end of the ``day``, ``week`` (from Monday) or ``month`` holding ``now``."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def minute_of(t: datetime) -> str:
    """The ledger's minute label of ``t`` (``2026-12-05T10:37Z``)."""
    return t.strftime("%Y-%m-%dT%H:%MZ")


def spent_message(key: ApiKey, spent: float, resets: datetime) -> str:
    return (f"key {key.name!r} has spent ${spent:.2f} of ${key.budget_usd:.2f} this {key.budget_period}; "
            f"it resets on {resets.date().isoformat()}")


class Budgets:
    """A key's spend in the store's ledger over a range of minutes, per app: (expires, spend, ok) by (key,
    from, to). Each range is read once (concurrent requests share the read) and refreshed in the background
    once ``ttl`` has passed, the request going on with the last answer."""

    def __init__(self, ttl: float = BUDGET_CACHE_TTL_S, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.clock = ttl, clock
        self._entries: dict[tuple[str, str, str], tuple[float, float, bool]] = {}
        self._tasks: dict[tuple[str, str, str], asyncio.Future] = {}

    async def ledger_spend(self, store: Store, key_id: str, since: str, before: str) -> tuple[float, bool]:
        """(spend, whether the last read succeeded)."""
        if since >= before:
            return 0.0, True
        k = (key_id, since, before)
        entry = self._entries.get(k)
        if entry is None:
            await asyncio.shield(self._refresh(store, k))
            entry = self._entries[k]
        elif entry[0] <= self.clock():
            self._refresh(store, k)
        return entry[1], entry[2]

    def _refresh(self, store: Store, k: tuple[str, str, str]) -> asyncio.Future:
        task = self._tasks.get(k)
        if task is None:
            task = self._tasks[k] = asyncio.ensure_future(self._read(store, k))
            task.add_done_callback(lambda _t: self._tasks.pop(k, None))
        return task

    async def _read(self, store: Store, k: tuple[str, str, str]) -> None:
        try:
            spend, ok = float(await store.key_spend(*k)), True
        except Exception as exc:  # noqa: BLE001 - the store is down: the last answer, marked not ok
            log.warning("cannot read a key's spend: %s: %s", type(exc).__name__, exc)
            spend, ok = self._entries.get(k, (0.0, 0.0, False))[1], False
        for old in [e for e in self._entries if e[0] == k[0] and e[2] < k[2]]:
            del self._entries[old]  # a key's earlier splits: never asked again
        if len(self._entries) >= 10_000:
            self._entries.clear()
        self._entries[k] = (self.clock() + self.ttl, spend, ok)


async def period_spend(key: ApiKey, store: Store, budgets: Budgets, windows: FleetWindows,
                       fail_open: bool) -> tuple[float, datetime]:
    """(the key's spend this budget period, when the period ends): the ledger's minutes before the fleet
    counters' oldest window (through ``budgets``), plus the counters' cost from that window on (every
    instance's as of the last sync, and this process's not yet synced)."""
    windows.touch(key.id)
    now = windows.clock()
    split = int(now // windows.window) - 2  # the ledger holds a minute's spend within seconds of its end
    start, end = period_bounds(key.budget_period or "month", datetime.fromtimestamp(now, UTC))
    split_at = datetime.fromtimestamp(split * windows.window, UTC)
    stored, ok = await budgets.ledger_spend(store, key.id, minute_of(start), minute_of(split_at))
    if not fail_open and (not ok or not await windows.fresh()):
        raise ProxyError("cannot check the key's budget now: the store is unreachable; retry shortly",
                         status=503, retry_after="1")
    return stored + windows.cost_since(key.id, max(split, math.ceil(start.timestamp() / windows.window))), end


async def check_budget(key: ApiKey, store: Store | None, budgets: Budgets, windows: FleetWindows,
                       fail_open: bool) -> None:
    """A ``BudgetSpent`` when ``key`` has a budget and its spend this period reached it."""
    if key.budget_usd is None or key.budget_period is None or store is None:
        return
    spent, end = await period_spend(key, store, budgets, windows, fail_open)
    if spent < key.budget_usd and windows.is_near(key.id, key.budget_usd - spent, key.budget_usd) \
            and not windows.stale():
        # near the end: every instance sends a finished request's cost at once and admits only after a sync
        # that started after the request came (what others finished by then is counted): the overspend is
        # the requests in flight, not those admitted before the news of the spend arrived
        windows.near(key.id)
        await windows.next_sync(CLAIM_WAIT_S)
        spent, end = await period_spend(key, store, budgets, windows, fail_open)
    if spent >= key.budget_usd:
        raise BudgetSpent(spent_message(key, spent, end))


class FleetWindows:
    """Per-key counters in windows of ``window`` seconds (a minute; table tests pass their own clock), summed
    across every process on one store: requests admitted, tokens and cost of the requests finished. Per
    process (module state, like ``keyauth.REQUESTS``); ``sync_windows`` (the fleet task) talks to the store.

    Requests are admitted from an allowance claimed from the store: a claim adds to the window's count only
    what keeps the fleet's sliding estimate within the limit (atomically, in the store), so the instances
    together never admit more than the limit; an allowance not used by the end of its window is lost (the
    limit is then undershot by at most each instance's last claim). A claim asks for the waiting requests
    or a share of what is left (``(limit - counted) / (2 x live instances)``), whichever is more. Tokens and
    cost are only known once a request finished: they are added to the counts at each sync."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.time):
        self.window, self.clock = window, clock
        self.peers = 1  # live instances (the registry, as the last heartbeat saw it)
        self._fleet: dict[tuple[str, int], tuple[int, int, float]] = {}  # (key, window): sums at the last sync
        self._local: dict[tuple[str, int], list] = {}                    # tokens, cost counted here, not sent
        self._sending: dict[tuple[str, int], list] = {}                  # being sent
        self._allow: dict[str, tuple[int, int]] = {}                     # key -> (window, requests left)
        self._demand: dict[str, tuple[int, int]] = {}                    # key -> (rpm, requests waiting)
        self._used: dict[str, float] = {}                                # key -> when it was last checked
        self.synced_at: float | None = None                              # clock() of the last good sync
        self._wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._waiters: list[asyncio.Future] = []                        # requests waiting for the next sync
        self._near: dict[str, float] = {}                                # key -> when it was last near its budget
        self._open: dict[str, int] = {}                                  # key -> its requests open here
        self._mean: dict[str, tuple[float, int]] = {}                    # key -> cost and count finished here

    def win(self) -> int:
        return int(self.clock() // self.window)

    def _count(self, key_id: str, win: int) -> tuple[int, int, float]:
        f = self._fleet.get((key_id, win), (0, 0, 0.0))
        a = self._local.get((key_id, win), (0, 0, 0.0))
        b = self._sending.get((key_id, win), (0, 0, 0.0))
        return f[0] + a[0] + b[0], f[1] + a[1] + b[1], f[2] + a[2] + b[2]

    def estimate(self, key_id: str) -> tuple[float, float, float]:
        """(requests, tokens) in the last ``window`` seconds, estimated from the current and the previous
        window's sums (the previous weighted by the part of it still inside), and the current window's part
        passed."""
        now = self.clock()
        win, frac = int(now // self.window), (now % self.window) / self.window
        cur, prev = self._count(key_id, win), self._count(key_id, win - 1)
        return prev[0] * (1 - frac) + cur[0], prev[1] * (1 - frac) + cur[1], frac

    def cost_since(self, key_id: str, first_window: int) -> float:
        return sum(self._count(key_id, w)[2] for w in range(first_window, self.win() + 1))

    def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> tuple[str, float] | None:
        """None when admitted, else (``tpm``, ``rpm``, or ``claim``: no allowance left here, the next sync
        claims one) and the seconds until there may be room."""
        self.touch(key_id)
        reqs, toks, frac = self.estimate(key_id)
        if tpm and toks >= tpm:
            return "tpm", self._wait(key_id, 1, tpm, frac)
        if not rpm:
            return None
        win, left = self._allow.get(key_id, (0, 0))
        if win == self.win() and left > 0:
            self._allow[key_id] = (win, left - 1)
            return None
        if reqs + 1 > rpm:
            return "rpm", self._wait(key_id, 0, rpm, frac)
        self._demand[key_id] = (rpm, self._demand.get(key_id, (rpm, 0))[1] + 1)
        self.wake()
        return "claim", SYNC_S

    def _wait(self, key_id: str, i: int, limit: int, frac: float) -> float:
        """Seconds until the estimate falls under ``limit`` if nothing more is counted."""
        win = self.win()
        cur, prev = self._count(key_id, win)[i], self._count(key_id, win - 1)[i]
        left = (1 - frac) * self.window
        if cur >= limit:  # once the current window is the previous one and enough of it has passed
            return left + self.window * (1 - limit / cur)
        return max(0.0, self.window * (1 - (limit - cur) / prev) - frac * self.window) if prev else 1.0

    def touch(self, key_id: str) -> None:
        """``key_id`` is limited here: its counts are kept and the fleet's read back."""
        self._used[key_id] = self.clock()

    def finished(self, key_id: str, tokens: int, cost: float | None) -> None:
        """A finished request's tokens and cost (unknown: nothing), for a key limited here; a key near its
        budget has it sent at once."""
        if key_id in self._used and cost is not None:
            total, n = self._mean.get(key_id, (0.0, 0))
            self._mean[key_id] = (total + cost, n + 1)
        if key_id in self._used and (tokens > 0 or cost):
            c = self._local.setdefault((key_id, self.win()), [0, 0, 0.0])
            c[1] += max(0, tokens)
            c[2] += cost or 0.0
            if cost and self._near.get(key_id, 0.0) > self.clock() - 3 * self.window:
                self.wake()

    def opened(self, key_id: str) -> None:
        """A request of a key with a budget was admitted here (``closed`` when its handler ends)."""
        self._open[key_id] = self._open.get(key_id, 0) + 1

    def closed(self, key_id: str) -> None:
        self._open[key_id] = max(0, self._open.get(key_id, 0) - 1)

    def is_near(self, key_id: str, remaining: float, budget: float) -> bool:
        """Whether a key is near the end of its budget: in its last ``NEAR`` part, or within what the
        requests that may be in flight could cost (this process's open requests, as many on each peer, each
        costing the mean of those finished here; with no mean yet, as soon as one is open)."""
        if remaining <= NEAR * budget:
            return True
        total, n = self._mean.get(key_id, (0.0, 0))
        open_here = self._open.get(key_id, 0)
        if not n:
            return open_here > 0
        return remaining <= total / n * (open_here * max(1, self.peers) + 1)

    def near(self, key_id: str) -> None:
        """``key_id`` is near its budget: its finished requests' cost is synced at once (for three windows)."""
        self._near[key_id] = self.clock()

    def claims(self) -> list[tuple[str, int, int, int]]:
        """(key, window, wanted, cap) for each key with requests waiting: the cap keeps the sliding estimate
        within the key's rpm (the previous window's part still inside counted), the store grants at most
        ``cap`` less what the window counts."""
        now = self.clock()
        win, frac = int(now // self.window), (now % self.window) / self.window
        out = []
        for key_id, (rpm, waiting) in sorted(self._demand.items()):
            cap = rpm - math.ceil(self._count(key_id, win - 1)[0] * (1 - frac))
            share = math.ceil(max(0, cap - self._count(key_id, win)[0]) / (2 * max(1, self.peers)))
            out.append((key_id, win, max(waiting, share, 1), cap))
        self._demand = {}
        return out

    def granted(self, grants: list[tuple[str, int, int]]) -> None:
        for key_id, win, n in grants:
            have = self._allow.get(key_id, (win, 0))
            self._allow[key_id] = (win, (have[1] if have[0] == win else 0) + n)

    def take(self) -> tuple[list[tuple[str, int, int, int, float]], list[str], int]:
        """What to send: the deltas, the keys to read back (checked in the last three windows), and the
        oldest window wanted (budgets read three)."""
        now = self.clock()
        self._sending, self._local = {k: v for k, v in self._local.items() if any(v)}, {}
        self._used = {k: t for k, t in self._used.items() if t > now - 3 * self.window}
        return ([(k, w, *v) for (k, w), v in self._sending.items()], sorted(self._used),
                int(now // self.window) - 2)

    def synced(self, rows: list[tuple[str, int, int, int, float]]) -> None:
        """The fleet's sums as the store holds them now (the deltas sent included)."""
        self._fleet = {(k, w): (r, t, c) for k, w, r, t, c in rows}
        self._sending = {}
        self.synced_at = self.clock()

    def unsynced(self) -> None:
        """The send failed: its deltas go back to be sent next time."""
        for k, v in self._sending.items():
            c = self._local.setdefault(k, [0, 0, 0.0])
            for i in range(3):
                c[i] += v[i]
        self._sending = {}

    async def fresh(self) -> bool:
        """Whether the fleet's sums can be trusted, after waiting for one sync if they are old (a process
        that just started, or a store that was slow): False when that sync did not succeed either."""
        if self.stale():
            await self.next_sync(CLAIM_WAIT_S)
        return not self.stale()

    def stale(self) -> bool:
        """Whether the fleet's sums are too old to trust (``on_store_down = "closed"`` refuses then)."""
        return self.synced_at is None or self.clock() - self.synced_at > STALE_S

    def _event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._wake is None or self._wake[0] is not loop:
            self._wake = (loop, asyncio.Event())
        return self._wake[1]

    def wake(self) -> None:
        """Requests wait for a claim: the sync runs now rather than at its next tick."""
        with contextlib.suppress(RuntimeError):  # no running loop (table tests)
            self._event().set()

    async def sleep(self, seconds: float) -> None:
        """Until ``wake`` or ``seconds`` passed (the sync task's pause)."""
        event = self._event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        event.clear()

    async def next_sync(self, timeout: float) -> None:
        """Until a sync that starts now (woken) has ended, at most ``timeout`` seconds: a request waiting for
        its claim or for fresh counts."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.append(fut)
        self.wake()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fut, timeout)

    def take_waiters(self) -> list[asyncio.Future]:
        """The requests waiting now (their claims are in ``claims``): released when this sync ends; those
        that start waiting meanwhile wait for the next one."""
        waiters, self._waiters = self._waiters, []
        return waiters

    @staticmethod
    def release(waiters: list[asyncio.Future]) -> None:
        for fut in waiters:
            with contextlib.suppress(RuntimeError):  # a loop closed since (tests run one loop after another)
                if not fut.done():
                    fut.set_result(None)


#: this process's fleet counters (synced by the fleet task of the app it serves)
FLEET = FleetWindows()


async def sync_windows(store: Store, windows: FleetWindows = FLEET) -> None:
    """One round of the fleet task: the waiting claims, this process's counts sent, the fleet's read back.
    Requests waiting for a claim are released once it is done, granted or not."""
    waiters = windows.take_waiters()
    try:
        claims = windows.claims()
        if claims:
            windows.granted(await store.claim_key_requests(claims))
        deltas, keys, since = windows.take()
        if not deltas and not keys:
            windows.synced_at = windows.clock()
            return
        try:
            rows = await store.sync_key_windows(deltas, keys, since)
        except BaseException:
            windows.unsynced()
            raise
        windows.synced(rows)
    finally:
        windows.release(waiters)


async def sync_forever(store: Store, on_error: Callable[[Exception, int], None],
                       windows: FleetWindows = FLEET) -> None:
    """The fleet task's loop: ``sync_windows`` every ``SYNC_S`` or at once when a request waits for a claim;
    after a failure (``on_error``), again after a backoff up to 5 s."""
    failures = 0
    while True:
        try:
            await sync_windows(store, windows)
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store is down: keep trying
            failures += 1
            on_error(exc, failures)
        await windows.sleep(SYNC_S if not failures else min(5.0, SYNC_S * 2 ** failures))
