"""Circuit breaking and same-target retries: the state machine driven by a fake clock, then through the
proxy with short settings (cooldown 0.3 s) against the fault upstream."""

from __future__ import annotations

import time
from collections.abc import Mapping

import aiohttp
import pytest

from llmproxy.server.request import dispatch
from llmproxy.server.request.breaker import Breakers, Policy
from tests.conftest import wait_log
from tests.faults.conftest import BACKUP, FAULTY

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------------- the state machine

POLICY = Policy(failures=3, window=10, cooldown=30.0)


def fail(b: Breakers, n: int = 1, *, probe: bool = False, **kw) -> None:
    for _ in range(n):
        b.failure("p/m", "boom", kw.get("policy", POLICY), retry_after=kw.get("retry_after"),
                  health=kw.get("health", True), status=kw.get("status"), probe=probe)


def test_opens_on_enough_failures_in_the_window_and_skips_while_open():
    clock = Clock()
    b = Breakers(clock)
    fail(b, 2)
    assert b.available("p/m") and b.snapshot()["p/m"]["state"] == "closed"
    fail(b)
    assert not b.available("p/m")
    snap = b.snapshot()["p/m"]
    assert snap["state"] == "open" and snap["consecutive_failures"] == 3 and snap["times_opened"] == 1
    assert b.retry_in("p/m") == pytest.approx(30.0)
    clock.now += 29.9
    assert not b.available("p/m")


def test_failures_must_be_half_of_the_window():
    b = Breakers(Clock())
    fail(b, 2)
    for _ in range(3):
        b.success("p/m", POLICY)
    fail(b)                          # 3 failures, but of 6 outcomes: half, so it opens
    assert not b.available("p/m")
    b = Breakers(Clock())
    fail(b, 2)
    for _ in range(4):
        b.success("p/m", POLICY)
    fail(b)                          # 3 of 7: below half, still closed
    assert b.available("p/m") and b.snapshot()["p/m"]["recent_failures"] == 3


def test_request_specific_answers_do_not_count():
    b = Breakers(Clock())
    fail(b, 10, health=False, status=404)
    assert b.available("p/m") and b.snapshot() == {}


def test_half_open_probes_once_others_are_not_available_and_a_success_closes():
    clock = Clock()
    b = Breakers(clock)
    fail(b, 3)
    clock.now += 30.0
    assert b.snapshot()["p/m"]["state"] == "half_open"
    assert b.available("p/m") and b.begin("p/m")      # the probe
    assert not b.available("p/m") and not b.begin("p/m")
    b.success("p/m", POLICY)
    assert b.available("p/m") and not b.begin("p/m")
    assert b.snapshot() == {}      # closed and clean: not listed


def test_a_failed_probe_reopens_growing_up_to_the_cooldown():
    clock = Clock()
    b = Breakers(clock)
    fail(b, retry_after=1.0, health=False, status=429)   # cooled 1 s by the upstream
    holds = []
    for _ in range(7):
        clock.now += b.retry_in("p/m")
        assert b.begin("p/m")
        fail(b, probe=True)                               # the probe failed (a health failure)
        holds.append(b.retry_in("p/m"))
    assert holds == pytest.approx([2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0])
    assert b.snapshot()["p/m"]["times_opened"] == 8


def test_a_probe_without_verdict_lets_the_next_request_probe():
    clock = Clock()
    b = Breakers(clock)
    fail(b, 3)
    clock.now += 30.0
    assert b.begin("p/m")
    b.release("p/m", probe=True)    # e.g. the client went away
    assert b.begin("p/m")
    b.answered("p/m", POLICY, probe=True)   # a 404: the target is there, still half-open
    assert b.begin("p/m")


def test_retry_after_cools_the_target_at_once_for_that_long():
    clock = Clock()
    b = Breakers(clock)
    fail(b, retry_after=5.0, health=False, status=429)   # a 429: cools, does not count
    assert not b.available("p/m")
    assert b.retry_in("p/m") == pytest.approx(5.0)
    assert b.snapshot()["p/m"]["cooled_by"] == 429 and b.snapshot()["p/m"]["consecutive_failures"] == 0
    clock.now += 5.0
    assert b.available("p/m")


def test_route_skips_only_with_an_alternative_else_panics_on_the_first_to_recover():
    clock = Clock()
    b = Breakers(clock)
    b.failure("a/m", "x", POLICY, retry_after=9.0, health=False, status=429)
    assert b.route(["a/m", "b/m"]) == (["b/m"], False)
    assert b.route(["a/m"]) == (["a/m"], True)
    b.failure("b/m", "x", POLICY, retry_after=3.0, health=False, status=429)
    assert b.route(["a/m", "b/m"]) == (["b/m"], True)
    clock.now += 3.0
    assert b.begin("b/m")                                   # b half-open, its probe out
    assert b.route(["a/m", "b/m"]) == (["b/m"], True)       # through, not "retry in 0 s"
    assert b.route([]) == ([], False)


def test_backoff_schedule():
    assert dispatch.backoff(0, 2.5) == 2.5                       # retry-after wins
    for n, hi in ((0, 0.5), (1, 1.0), (2, 2.0), (10, 8.0)):        # capped exponential, jitter in [hi/2, hi]
        for _ in range(20):
            assert hi / 2 <= dispatch.backoff(n, None) <= hi


# ------------------------------------------------------------------------------------ through the proxy

async def post(url: str, stream: bool = False, **body) -> tuple[int, Mapping[str, str], bytes, float]:
    """BODY asks for 4 tokens: a non-streaming request's first-byte budget grows with max_tokens (0.2 s here)."""
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json={**BODY, "stream": stream, **body}) as r:
            return r.status, r.headers.copy(), await r.read(), time.monotonic() - t0


async def health(url: str) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/health") as r:
            return await r.json()


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_circuit_opens_skips_probes_and_closes(fault_proxy, fault_upstream, backup_upstream, home, kind):
    url, _ = await fault_proxy(kind, True, max_retries=0, breaker_failures=2, breaker_cooldown=0.3)
    fault_upstream.mode = "500"
    for n in (1, 2):
        status, headers, _, _ = await post(url)
        assert status == 200 and BACKUP in headers["x-llmproxy-route"]
        assert fault_upstream.hits == n
    circuit = (await health(url))["circuits"][FAULTY]
    assert circuit["state"] == "open" and circuit["consecutive_failures"] == 2 and circuit["times_opened"] == 1
    assert "fault 500" in circuit["last_error"]

    status, headers, _, elapsed = await post(url, stream=True)   # skipped while open: no try, no wait
    assert status == 200 and BACKUP in headers["x-llmproxy-route"]
    assert fault_upstream.hits == 2 and elapsed < 0.3
    rec = (await wait_log(home, 3))[-1]
    assert rec["circuit_open"] == [FAULTY] and rec["attempts"] == [] and rec["target"] == BACKUP

    await _sleep(0.35)
    assert (await health(url))["circuits"][FAULTY]["state"] == "half_open"
    fault_upstream.mode = "ok"
    status, headers, _, _ = await post(url)                       # the probe succeeds: closed again
    assert status == 200 and FAULTY in headers["x-llmproxy-route"] and fault_upstream.hits == 3
    assert FAULTY not in (await health(url))["circuits"]


async def test_failed_probe_reopens(fault_proxy, fault_upstream, home):
    url, _ = await fault_proxy("anthropic", True, max_retries=0, breaker_failures=1, breaker_cooldown=0.3)
    fault_upstream.mode = "hang"
    t0 = time.monotonic()
    await post(url)                                                # costs one ttfb timeout (0.5 s)
    await post(url)                                                # skipped: costs nothing
    assert fault_upstream.hits == 1 and time.monotonic() - t0 < 1.2
    await _sleep(0.35)
    await post(url)                                                # the probe hangs: open again
    assert fault_upstream.hits == 2
    c = (await health(url))["circuits"][FAULTY]
    assert c["state"] == "open" and c["times_opened"] == 2


async def test_every_target_open_tries_the_first_to_recover(fault_proxy, fault_upstream, home):
    """Panic mode: with nothing better to go to, the open circuit does not stand in the way; the client
    hears what the upstream says, and the record and /metrics say the breaker was overridden."""
    url, _ = await fault_proxy("anthropic", False, max_retries=0, breaker_failures=1, breaker_cooldown=5)
    fault_upstream.mode = "500"
    status, headers, _, _ = await post(url)
    assert status == 500
    assert (await health(url))["circuits"][FAULTY]["state"] == "open"
    status, headers, body, _ = await post(url)
    assert status == 500 and b"fault 500" in body and fault_upstream.hits == 2   # the upstream's answer
    rec = (await wait_log(home, 2))[-1]
    assert rec["breaker_panic"] == FAULTY and rec["status"] == 500 and len(rec["attempts"]) == 1
    fault_upstream.mode = "ok"
    status, headers, _, _ = await post(url)                          # still open, tried, and it closes
    assert status == 200 and FAULTY in headers["x-llmproxy-route"]
    assert FAULTY not in (await health(url))["circuits"]
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/metrics") as r:
            metrics = await r.text()
    assert 'llmproxy_breaker_panic_total{provider="faulty"} 2.0' in metrics


@pytest.mark.parametrize("header", [{"retry-after": "0.6"}, {"retry-after-ms": "600"}])
async def test_429_retry_after_cools_the_target(fault_proxy, fault_upstream, home, header):
    url, _ = await fault_proxy("anthropic", True, max_retries=0, breaker_failures=5)
    fault_upstream.mode, fault_upstream.retry_after = "429", header
    status, headers, _, _ = await post(url)
    assert status == 200 and BACKUP in headers["x-llmproxy-route"]
    c = (await health(url))["circuits"][FAULTY]
    assert c["state"] == "open" and 0 < c["retry_in_s"] <= 0.6
    await post(url)
    assert fault_upstream.hits == 1                                 # cooled: not asked again
    await _sleep(0.65)
    fault_upstream.mode = "ok"
    status, headers, _, _ = await post(url)
    assert FAULTY in headers["x-llmproxy-route"] and fault_upstream.hits == 2


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_same_target_retry_count(fault_proxy, fault_upstream, home, kind):
    url, _ = await fault_proxy(kind, False, max_retries=3, retry_budget=5, breaker_failures=10)
    fault_upstream.mode = "503"
    status, headers, _, _ = await post(url)
    assert status == 529 and fault_upstream.hits == 4
    rec = (await wait_log(home, 1))[-1]
    assert [a.get("retried", False) for a in rec["attempts"]] == [True, True, True, False]
    assert (await health(url))["circuits"][FAULTY]["consecutive_failures"] == 1  # one request, one failure


@pytest.mark.parametrize("header", [{"retry-after": "0.4"}, {"retry-after-ms": "400"}])
async def test_retry_after_is_honoured_within_the_budget(fault_proxy, fault_upstream, home, header):
    url, _ = await fault_proxy("anthropic", False, max_retries=2, retry_budget=1)
    fault_upstream.script, fault_upstream.retry_after = ["429"], header
    status, headers, _, elapsed = await post(url, stream=True)
    assert status == 200 and FAULTY in headers["x-llmproxy-route"] and fault_upstream.hits == 2
    assert 0.4 <= elapsed < 1.5
    rec = (await wait_log(home, 1))[-1]
    assert rec["attempts"][0]["retried"] is True and rec["attempts"][0]["status"] == 429


@pytest.mark.parametrize("fallback", [True, False])
async def test_retry_after_beyond_the_budget_is_not_waited(fault_proxy, fault_upstream, home, fallback):
    url, _ = await fault_proxy("anthropic", fallback, max_retries=2, retry_budget=1)
    fault_upstream.mode, fault_upstream.retry_after = "429", {"retry-after": "30"}
    status, headers, _, elapsed = await post(url)
    assert elapsed < 0.5 and fault_upstream.hits == 1
    if fallback:
        assert status == 200 and BACKUP in headers["x-llmproxy-route"]
    else:  # the client is told how long to wait
        assert status == 429 and headers["retry-after"] == "30" and headers["x-should-retry"] == "true"
    c = (await health(url))["circuits"][FAULTY]
    assert c["state"] == "open" and c["retry_in_s"] > 25


async def test_the_budget_bounds_the_sum_of_waits(fault_proxy, fault_upstream, home):
    url, _ = await fault_proxy("anthropic", False, max_retries=5, retry_budget=0.5)
    fault_upstream.mode, fault_upstream.retry_after = "529", {"retry-after": "0.2"}
    status, _, _, elapsed = await post(url)
    assert status == 529 and fault_upstream.hits == 3               # 0.2 + 0.2 fit in 0.5; a third does not
    assert 0.4 <= elapsed < 1.0


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)
