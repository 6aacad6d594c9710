"""The circuit breaker never manufactures an outage (issue 22): on a route with one target, whatever the
upstream did before, the client (the official ``anthropic`` SDK, no retries of its own) only ever hears a
status the upstream sent; an open circuit is tried anyway (panic mode). Non-streaming answers whose upstream
sends headers or part of the body and falls silent fall back within ``idle_timeout``. The breaker's clock is
driven by hand (its injectable clock), so no test waits for a cooldown. A property test runs random outcome
sequences through ``Breakers`` and the dispatcher's choice of targets, as pure code."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.server.request.breaker import Breakers, Policy
from tests.conftest import wait_log
from tests.faults.conftest import BACKUP, FAULTY
from tests.faults.test_breaker_retry import Clock, post

MESSAGES = [{"role": "user", "content": "hello"}]


async def single_target(fault_proxy, **overrides):
    """A proxy whose route has one target (``faulty``), the default breaker thresholds, no same-target
    retries, and a breaker clock the test moves."""
    url, state = await fault_proxy("anthropic", False, max_retries=0, breaker_failures=5, breaker_cooldown=30,
                                   **overrides)
    clock = Clock()
    state.breakers.clock = clock
    client = anthropic.AsyncAnthropic(base_url=url, api_key="sk-client-test", max_retries=0)
    return client, clock, state


async def ask(client: anthropic.AsyncAnthropic) -> tuple[int, str | None]:
    """(status, error type) of one non-streaming request as the SDK sees it."""
    try:
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES)
    except anthropic.APIStatusError as exc:
        return exc.status_code, exc.body["error"]["type"] if isinstance(exc.body, dict) else None
    return 200, None


async def ask_many(client: anthropic.AsyncAnthropic, n: int) -> list[tuple[int, str | None]]:
    return list(await asyncio.gather(*(ask(client) for _ in range(n))))


async def test_one_429_does_not_block_eight_concurrent_healthy_requests(fault_proxy, fault_upstream, home):
    client, _, state = await single_target(fault_proxy)
    fault_upstream.script, fault_upstream.retry_after = ["429"], {"retry-after": "1"}
    assert await ask(client) == (429, "rate_limit_error")          # the upstream's own answer
    assert state.breakers.snapshot()[FAULTY]["cooled_by"] == 429   # cooling: fallbacks would be preferred
    assert await ask_many(client, 8) == [(200, None)] * 8
    assert fault_upstream.hits == 9
    records = await wait_log(home, 9)
    assert sorted(r["status"] for r in records) == [200] * 8 + [429]
    assert any(r.get("breaker_panic") == FAULTY for r in records)   # until the first success closed it


async def test_a_404_probe_after_a_429_does_not_reopen_for_the_cooldown(fault_proxy, fault_upstream, home):
    client, clock, state = await single_target(fault_proxy)
    fault_upstream.script, fault_upstream.retry_after = ["429", "404"], {"retry-after": "1"}
    assert await ask(client) == (429, "rate_limit_error")
    clock.now += 1.1                                               # half-open: the next request probes
    assert await ask(client) == (404, "not_found_error")           # request-specific: not a health failure
    assert state.breakers.snapshot()[FAULTY]["state"] == "half_open"
    assert await ask_many(client, 8) == [(200, None)] * 8
    assert FAULTY not in state.breakers.snapshot() and fault_upstream.hits == 10


async def test_five_500s_then_healthy(fault_proxy, fault_upstream, home):
    client, _, state = await single_target(fault_proxy)
    fault_upstream.mode = "500"
    assert [await ask(client) for _ in range(5)] == [(500, "api_error")] * 5
    assert state.breakers.snapshot()[FAULTY]["state"] == "open"
    fault_upstream.mode = "ok"
    assert await ask(client) == (200, None)                        # tried although open, and it closes
    assert FAULTY not in state.breakers.snapshot()
    assert await ask_many(client, 8) == [(200, None)] * 8
    rec = (await wait_log(home, 6))[5]
    assert rec["status"] == 200 and rec["breaker_panic"] == FAULTY and rec["attempts"] == []


async def test_half_open_admits_eight_concurrent(fault_proxy, fault_upstream, home):
    client, clock, state = await single_target(fault_proxy)
    fault_upstream.mode = "500"
    for _ in range(5):
        await ask(client)
    clock.now += 30.0                                              # half-open
    fault_upstream.mode = "slow_json"                              # the probe is out for a second
    assert await ask_many(client, 8) == [(200, None)] * 8          # never 529 "retry in 0 s"
    assert fault_upstream.hits == 13 and FAULTY not in state.breakers.snapshot()


async def test_with_a_fallback_the_open_target_is_still_skipped(fault_proxy, fault_upstream, backup_upstream, home):
    url, state = await fault_proxy("anthropic", True, max_retries=0, breaker_failures=5, breaker_cooldown=30)
    state.breakers.clock = clock = Clock()
    client = anthropic.AsyncAnthropic(base_url=url, api_key="sk-client-test", max_retries=0)
    fault_upstream.mode = "500"
    assert [await ask(client) for _ in range(5)] == [(200, None)] * 5    # each fell back
    assert await ask_many(client, 8) == [(200, None)] * 8                # open: skipped, not tried
    assert fault_upstream.hits == 5 and backup_upstream.hits == 13
    clock.now += 30.0
    fault_upstream.mode = "slow_json"
    assert await ask_many(client, 4) == [(200, None)] * 4                # one probe; the rest to the backup
    assert fault_upstream.hits == 6 and backup_upstream.hits == 16
    records = await wait_log(home, 17)
    assert not any(r.get("breaker_panic") for r in records)


async def test_batch_items_meeting_an_open_circuit_are_tried(fault_proxy, fault_upstream, home):
    client, _, state = await single_target(fault_proxy)
    fault_upstream.mode = "500"
    for _ in range(5):
        await ask(client)
    assert state.breakers.snapshot()[FAULTY]["state"] == "open"
    fault_upstream.mode = "ok"
    params = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": MESSAGES}
    batch = await client.messages.batches.create(requests=[{"custom_id": f"r{i}", "params": params}
                                                           for i in range(3)])
    for _ in range(400):
        batch = await client.messages.batches.retrieve(batch.id)
        if batch.processing_status == "ended":
            break
        await asyncio.sleep(0.05)
    assert batch.processing_status == "ended"
    results = [r.result.type async for r in await client.messages.batches.results(batch.id)]
    assert results == ["succeeded"] * 3 and fault_upstream.hits == 8


# ------------------------------------------------------------------- non-streaming: bounded after headers

@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize("mode", ["headers_hang", "hang_mid"], ids=["headers-then-silence", "part-body-then-silence"])
async def test_a_silent_non_streaming_answer_falls_back_within_the_idle_timeout(fault_proxy, fault_upstream, home,
                                                                               kind, mode):
    """max_tokens 8192 at the slowest accepted 20 tokens/s is a 410 s budget for the whole answer; once the
    headers are in, 0.3 s of silence is enough to give up on it and ask the fallback."""
    url, _ = await fault_proxy(kind, True, ttfb_timeout=0.5, idle_timeout=0.3, total_timeout=600)
    fault_upstream.mode = mode
    status, headers, _, elapsed = await asyncio.wait_for(post(url, max_tokens=8192), 20)
    assert status == 200 and BACKUP in headers["x-llmproxy-route"]
    assert elapsed < 5
    rec = (await wait_log(home, 1))[-1]
    assert rec["attempts"][0]["status"] == 504 and rec["attempts"][0]["target"] == FAULTY


# --------------------------------------------------------------------------- the property, as pure code

POLICY = Policy(failures=2, window=4, cooldown=8.0)
#: what one try may meet: (health failure, retry-after, status); None = success
OUTCOMES = st.sampled_from([None, (True, None, 500), (True, None, None), (True, 2.0, 529), (False, 1.0, 429),
                            (False, None, 404), (False, None, 400), "release"])
STEPS = st.lists(st.one_of(st.tuples(st.just("start")), st.tuples(st.just("advance"), st.floats(0, 10)),
                           st.tuples(st.just("settle"), OUTCOMES)), max_size=60)


def settle(b: Breakers, key: str, probe: bool, outcome) -> bool:
    """Tell the circuit how a try ended, as the dispatcher does; True when the request fails over."""
    if outcome is None:
        b.success(key, POLICY)
        return False
    if outcome == "release":
        b.release(key, probe)
        return False
    health, after, status = outcome
    if status == 400:                       # not retryable: answered as it is
        b.answered(key, POLICY, probe)
        return False
    b.failure(key, "x", POLICY, health=health, retry_after=after, status=status, probe=probe)
    return True


@settings(max_examples=300, deadline=None)
@given(n=st.sampled_from([1, 2]), steps=STEPS)
def test_a_target_is_always_tried_when_one_could_be(n, steps):
    """Requests start, settle (possibly failing over to the next chosen target) and the clock moves, in any
    order: every request tries at least one target (no proxy-made 529), a non-panic choice holds only
    available targets, and a panic choice is the target that recovers first."""
    clock = Clock()
    b = Breakers(clock)
    keys = [f"p{i}/m" for i in range(n)]
    out: list[tuple[list[str], str, bool]] = []   # in flight: (the rest of its order, key, probe)
    for step in steps:
        if step[0] == "advance":
            clock.now += step[1]
        elif step[0] == "start":
            order, panic = b.route(keys)
            assert order, "a request that could try a target was refused"
            if panic:
                assert order == [min(keys, key=b.retry_in)] and not any(b.available(k) for k in keys)
            else:
                assert all(b.available(k) for k in order)
                assert [k for k in keys if b.available(k)] == order
            out.append((order[1:], order[0], b.begin(order[0])))
        elif out:
            rest, key, probe = out.pop(0)
            if settle(b, key, probe, step[1]):
                rest = [k for k in rest if b.available(k)]
                if rest:
                    out.append((rest[1:], rest[0], b.begin(rest[0])))
        for k, c in b.circuits.items():
            assert b.retry_in(k) <= max(POLICY.cooldown, 2.0) + 1e-9   # never longer than a cooldown or retry-after
            assert c.probing is False or any(key == k and probe for _, key, probe in out)
