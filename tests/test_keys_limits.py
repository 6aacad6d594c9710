"""A store key's budget and fleet-wide rpm/tpm (issue 27; server/request/keylimits.py): the period bounds and the
counters as table tests with a clock of the test's, and end to end through the app on both stores: a key
whose budget is spent gets the Anthropic-shaped 429 Claude Code shows (``x-should-retry: false``). Across
instances (separate processes on one PostgreSQL): tests/store/test_keys_fleet.py."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aiohttp
import anthropic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.server.request.keylimits import FleetWindows, period_bounds
from tests.helpers import post_status
from tests.store.conftest import pg_cluster, pg_url  # noqa: F401 - the PostgreSQL fixtures, reused
from tests.test_keys import ADMIN, acreate, akeys, backend, hello, start  # noqa: F401 - fixtures and helpers


@pytest.mark.parametrize("period, now, start, end", [
    ("day", "2026-12-05T10:37:00", "2026-12-05", "2026-12-06"),
    ("week", "2026-12-05T10:37:00", "2026-11-30", "2026-12-07"),      # a Saturday: from Monday
    ("week", "2026-11-30T00:00:00", "2026-11-30", "2026-12-07"),
    ("month", "2026-12-05T10:37:00", "2026-12-01", "2027-01-01"),
    ("month", "2027-01-31T23:59:59", "2027-01-01", "2027-02-01"),
    ("month", "2028-02-29T12:00:00", "2028-02-01", "2028-03-01"),
])
def test_period_bounds(period, now, start, end):
    s, e = period_bounds(period, datetime.fromisoformat(now).replace(tzinfo=UTC))
    assert (s.date().isoformat(), e.date().isoformat()) == (start, end)
    assert s.tzinfo is not None and s.hour == 0


class Clock:
    def __init__(self, t: float = 6000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def grant_like_a_store(w: FleetWindows, counts: dict) -> None:
    """What the store does with ``w``'s claims (``counts``: (key, window) -> requests, the store's rows)."""
    grants = []
    for key_id, win, wanted, cap in w.claims():
        have = counts.get((key_id, win), 0)
        n = min(wanted, max(0, cap - have))
        counts[(key_id, win)] = have + n
        grants.append((key_id, win, n))
    w.granted(grants)
    w.take()
    w.synced([(k, win, n, 0, 0.0) for (k, win), n in counts.items()])


def admitted(w: FleetWindows, counts: dict, n: int, rpm: int) -> int:
    """Requests of ``n`` admitted, each one without an allowance waiting for one claim, as the server does."""
    got = 0
    for _ in range(n):
        refused = w.admit("k", rpm, None)
        if refused is not None and refused[0] == "claim":
            grant_like_a_store(w, counts)
            refused = w.admit("k", rpm, None)
        got += refused is None
    return got


def test_fleet_windows_admit_what_was_claimed_up_to_the_limit_and_slide():
    clock, counts = Clock(), {}
    w = FleetWindows(window=60, clock=clock)
    assert admitted(w, counts, 8, 5) == 5
    why, wait = w.admit("k", 5, None)
    assert why == "rpm" and 60 <= wait <= 120
    clock.t += 60  # the next window: the previous one weighs (1 - 0) = all of it
    assert admitted(w, counts, 3, 5) == 0
    clock.t += 30  # half of it left: 5 * 0.5 = 2.5 counted, two more fit
    assert admitted(w, counts, 3, 5) == 2
    assert counts == {("k", 100): 5, ("k", 101): 2}


def test_three_instances_claiming_never_admit_more_than_the_limit():
    """Three instances on one store (its rows shared), taking turns: together they admit the limit."""
    clock, counts = Clock(), {}
    fleet = [FleetWindows(window=60, clock=clock) for _ in range(3)]
    for w in fleet:
        w.peers = 3
    total = 0
    for _ in range(20):
        for w in fleet:
            total += admitted(w, counts, 3, 30)
    assert total == 30 and counts[("k", 100)] == 30


@settings(max_examples=200, deadline=None)
@given(rpm=st.integers(1, 40), peers=st.integers(1, 4),
       steps=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["request", "sync", "tick"])), max_size=300))
def test_instances_never_admit_more_than_the_limit_in_any_interleaving(rpm, peers, steps):
    """Any interleaving of requests, syncs (claims granted by a store shared by all) and time passing: in each
    window the instances together admit at most what the store granted, and that at most the limit."""
    clock, counts = Clock(), {}
    fleet = [FleetWindows(window=60, clock=clock) for _ in range(peers)]
    for w in fleet:
        w.peers = peers
    admitted: dict[int, int] = {}
    for who, what in steps:
        w = fleet[who % peers]
        if what == "request" and w.admit("k", rpm, None) is None:
            admitted[w.win()] = admitted.get(w.win(), 0) + 1
        elif what == "sync":
            grant_like_a_store(w, counts)
        elif what == "tick":
            clock.t += 7.0
    for win, n in admitted.items():
        assert n <= counts.get(("k", win), 0) <= rpm


def test_fleet_windows_count_what_other_instances_sent():
    w = FleetWindows(window=60, clock=Clock())
    w.touch("k")
    w.finished("k", 7, 0.5)
    deltas, keys, since = w.take()
    assert deltas == [("k", 100, 0, 7, 0.5)] and keys == ["k"] and since == 98
    w.finished("k", 3, 0.25)  # counted while the first is being sent
    w.synced([("k", 100, 9, 20, 2.0)])  # the store: ours and other instances'
    assert w.estimate("k")[:2] == (9, 23) and w.cost_since("k", 98) == 2.25
    deltas, _, _ = w.take()
    w.unsynced()  # the send failed: the delta is kept for the next one
    assert w.take()[0] == deltas == [("k", 100, 0, 3, 0.25)]


def test_a_claim_asks_for_the_waiting_requests_or_a_share():
    w = FleetWindows(window=60, clock=Clock())
    w.peers = 3
    assert w.admit("k", 60, None)[0] == "claim"
    assert w.claims() == [("k", 100, 10, 60)]  # 60 left / (2 x 3)
    for _ in range(12):
        w.admit("k", 60, None)
    assert w.claims() == [("k", 100, 12, 60)]  # more wait than the share
    assert w.claims() == []


def test_near_a_budget_by_its_last_tenth_or_what_is_in_flight():
    w = FleetWindows(window=60, clock=Clock())
    w.peers = 3
    w.touch("k")
    assert not w.is_near("k", 50.0, 100.0)
    assert w.is_near("k", 10.0, 100.0)           # the last tenth
    w.opened("k")
    assert w.is_near("k", 50.0, 100.0)           # one in flight, its cost unknown yet
    w.finished("k", 10, 2.0)                     # a mean of $2 a request
    assert not w.is_near("k", 50.0, 100.0)       # 1 open here, 3 peers: 2 x (1 x 3 + 1) = 8 < 50
    for _ in range(8):
        w.opened("k")
    assert w.is_near("k", 50.0, 100.0)           # 9 open: 2 x (9 x 3 + 1) = 56 >= 50
    for _ in range(9):
        w.closed("k")
    assert not w.is_near("k", 50.0, 100.0) and w._open["k"] == 0


def test_fleet_windows_tokens_and_cost_of_limited_keys_only():
    w = FleetWindows(window=60, clock=Clock())
    w.finished("other", 100, 1.0)  # never checked here: not counted
    assert w.admit("k", None, 50) is None
    w.finished("k", 60, 0.25)
    w.finished("k", 0, None)
    assert w.admit("k", None, 50)[0] == "tpm"
    assert w.cost_since("k", 0) == 0.25 and w.cost_since("other", 0) == 0
    assert [d[0] for d in w.take()[0]] == ["k"]


async def post(url: str, key: str) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as s, s.post(url + "/v1/messages", json=hello(),
                                                    headers={"x-api-key": key,
                                                             "anthropic-version": "2023-06-01"}) as r:
        return r.status, dict(r.headers), await r.json()


async def until(check, what: str, tries: int = 300):
    for _ in range(tries):
        if got := await check():
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_spent_budget_gets_a_429_claude_code_shows(backend, home, proxy_factory):  # noqa: F811
    secret = await acreate("alice", "--budget", "0.000001/month")
    other = await acreate("bob", "--budget", "1000/day")
    url, _ = await start(proxy_factory)
    status, _, _ = await post(url, secret)
    assert status == 200  # nothing spent yet: admitted (the overspend: this request, in flight)

    async def refused():
        status, headers, body = await post(url, secret)
        return status == 429 and (headers, body)

    headers, body = await until(refused, "the budget to be spent")
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    _, end = period_bounds("month", datetime.now(UTC))
    msg = body["error"]["message"]
    assert msg.startswith("key 'alice' has spent $0.00 of $0.00 this month; it resets on ") and \
        msg.endswith(end.date().isoformat()), msg
    assert headers["x-should-retry"] == "false" and "retry-after" not in headers
    async with anthropic.AsyncAnthropic(base_url=url, api_key=secret) as c:  # the SDK does not retry it
        with pytest.raises(anthropic.RateLimitError, match="has spent"):
            await c.messages.create(**hello())
    assert (await post(url, other))[0] == 200  # another key's budget is its own

    async def shown_spend():  # keys show: the ledger's spend (every instance's, once flushed: about a second)
        data = json.loads((await akeys("show", "alice", "--json"))[1])
        return data["spent_usd"] > 0 and data

    shown = await until(shown_spend, "keys show to see the spend")
    assert shown["remaining_usd"] == 0 and shown["resets_at"].startswith(end.date().isoformat())
    assert (await post(url, ADMIN))[0] == 200
    # a bigger budget applies at once (the key cache's second)
    assert (await akeys("update", "alice", "--budget", "1000/month"))[0] == 0

    async def admitted():
        return (await post(url, secret))[0] == 200

    await until(admitted, "the raised budget")



def test_workers_share_one_rpm(backend, home):  # noqa: F811 - the fixture imported above
    """``serve --workers 3`` (one SQLite file, or one PostgreSQL database): the workers admit the key's --rpm
    between them, not each (per process, as before, each worker would admit up to the limit). The simulator
    answers at its catalog pace (~0.5 s), so concurrent requests spread over the workers."""
    import os
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import free_port
    from tests.test_keys import create

    port, rpm = free_port(), 12
    (home / "config.toml").write_text(f'[server]\nsimulator_speed = 1\n[auth]\napi_keys = ["{ADMIN}"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--port", str(port), "--workers", "3",
                             "--simulate"], env={**os.environ, "LLMPROXY_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def send(key: str) -> int:
        return post_status(port, key, hello())

    def served(name: str) -> list[dict]:  # the lines written whole so far (a worker may be writing the last one)
        recs, path = [], home / "logs" / "requests.jsonl"
        for line in path.read_text().splitlines() if path.exists() else ():
            try:
                recs.append(json.loads(line))
            except ValueError:
                continue
        return [r for r in recs if r.get("status") == 200 and (r.get("key") or {}).get("name") == name]

    try:
        deadline = time.monotonic() + 30
        while send(ADMIN) != 200:
            assert time.monotonic() < deadline and proc.poll() is None, "the daemon did not start"
            time.sleep(0.1)
        for attempt in range(5):  # a busy machine may hand every connection to one worker: then again
            name = f"walt{attempt}"
            secret = create(name, "--rpm", str(rpm))
            with ThreadPoolExecutor(4 * rpm) as pool:
                statuses = list(pool.map(lambda _, k=secret: send(k), range(4 * rpm)))
            while len(served(name)) < statuses.count(200) and time.monotonic() < deadline + 60:
                time.sleep(0.05)  # the workers' logs are written behind the answers
            workers = {r.get("worker") for r in served(name)}
            print(f"\n[{backend}] --rpm {rpm}, {4 * rpm} requests to 3 workers: {statuses.count(200)} admitted "
                  f"by workers {sorted(workers)}")
            assert set(statuses) <= {200, 429}, statuses
            assert statuses.count(200) == rpm
            if len(workers) >= 2:
                break
        assert len(workers) >= 2, workers  # else no run could tell per worker from per fleet
    finally:
        proc.terminate()
        proc.wait(20)
