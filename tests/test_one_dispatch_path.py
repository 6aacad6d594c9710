"""One dispatch path for every caller (``server/request/exchange.py``): the same fault, driven through ``/v1/messages``
(anthropic SDK), ``/v1/chat/completions`` (openai SDK) and a batch item (the Message Batches API), gets the
same same-target retries, the same fallback and the same record — attempts, target, mode — from each.

The route is ``faulty,m1`` (an Anthropic-kind or an OpenAI-kind upstream on 127.0.0.1) then ``backup,m2``
(Anthropic-kind). ``retry``: the faulty upstream answers 500 once, then succeeds (one retry, served by it);
``fallback``: it answers 500 every time (tried twice, then the backup serves). The mode follows one rule on
every path: ``passthrough`` when the serving provider speaks the caller's API (Chat Completions on the
OpenAI surface, the Messages API elsewhere), ``converted`` otherwise."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest

from tests.conftest import read_log
from tests.faults.conftest import BACKUP, FAULTY, KEYS, start_proxy
from tests.faults.upstream import FaultUpstream

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def upstreams():
    fault, backup = await FaultUpstream("fault").start(), await FaultUpstream("backup").start()
    yield fault, backup
    await fault.close()
    await backup.close()


async def _records(home, n: int) -> list[dict]:
    for _ in range(500):  # the log is written by a thread: wait for the record, not for a duration
        if len(recs := read_log(home)) >= n:
            return recs
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {n} records in the request log")


async def _messages(url: str) -> None:
    c = anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)
    msg = await c.messages.create(model="claude-sonnet-4-5", max_tokens=20, messages=MESSAGES)
    assert msg.content[0].text.startswith("Hello from the fault upstream")


async def _chat(url: str) -> None:
    await _chat_once(openai.AsyncOpenAI(base_url=url + "/v1", api_key="client-key", max_retries=0))


async def _batch(url: str) -> None:
    c = anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)
    b = await c.messages.batches.create(requests=[{"custom_id": "one", "params": {
        "model": "claude-sonnet-4-5", "max_tokens": 20, "messages": MESSAGES}}])
    for _ in range(500):
        if (b := await c.messages.batches.retrieve(b.id)).processing_status == "ended":
            break
        await asyncio.sleep(0.02)
    assert b.request_counts.succeeded == 1, b.request_counts
    results = [r async for r in await c.messages.batches.results(b.id)]
    assert results[0].result.message.content[0].text.startswith("Hello from the fault upstream")


SURFACES = {"messages": _messages, "chat": _chat, "batch": _batch}


def _expected_mode(surface: str, serving_kind: str) -> str:
    return "passthrough" if (surface == "chat") == (serving_kind == "openai") else "converted"


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize("case", ["retry", "fallback"])
async def test_same_fault_same_retries_fallback_and_record(home, monkeypatch, upstreams, kind, case):
    fault, backup = upstreams
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    srv, url, state = await start_proxy(home, fault.url, backup.url, kind)
    seen: dict[str, dict] = {}
    try:
        for n, (surface, drive) in enumerate(SURFACES.items(), 1):
            state.breakers.circuits.clear()  # each surface meets the same, closed circuits
            fault.hits, backup.hits = 0, 0
            fault.mode, fault.script = ("500", []) if case == "fallback" else ("ok", ["500"])
            await drive(url)
            seen[surface] = rec = (await _records(home, n))[n - 1]
            assert (fault.hits, backup.hits) == ((2, 1) if case == "fallback" else (2, 0)), surface
            assert rec["status"] == 200, (surface, rec)
    finally:
        await srv.close()
    assert "batch_id" in seen["batch"] and seen["chat"]["endpoint"] == "chat_completions"
    serving = (BACKUP, "anthropic") if case == "fallback" else (FAULTY, kind)
    for surface, rec in seen.items():
        attempts = [(a["target"], a["status"], a.get("retried", False)) for a in rec["attempts"]]
        want = [(FAULTY, 500, True)] + ([(FAULTY, 500, False)] if case == "fallback" else [])
        assert attempts == want, (surface, rec["attempts"])
        assert rec["target"] == serving[0], (surface, rec)
        assert rec.get("mode") == _expected_mode(surface, serving[1]), (surface, rec)
    # the very same failures were recorded, word for word, whichever caller met them
    assert seen["messages"]["attempts"][0]["error"] == seen["chat"]["attempts"][0]["error"] \
        == seen["batch"]["attempts"][0]["error"]


async def test_chat_passthrough_takes_the_send_window_and_leaves_it_once_sent(home, monkeypatch, upstreams):
    """The OpenAI surface's passthrough (``chat()``) takes a place in the provider's send window like every
    attempt, and gives it back once its body is on the connection, not when the answer comes: with a window
    of 1 and answers that take a second, all four requests reach the upstream before any is answered."""
    fault, backup = upstreams
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    srv, url, state = await start_proxy(home, fault.url, backup.url, "openai", False, server={"send_window": 1},
                                        ttfb_timeout=5.0)
    fault.mode = "slow_json"
    answered = 0
    c = openai.AsyncOpenAI(base_url=url + "/v1", api_key="client-key", max_retries=0)

    async def one() -> None:
        nonlocal answered
        await _chat_once(c)
        answered += 1

    try:
        tasks = [asyncio.create_task(one()) for _ in range(4)]
        for _ in range(500):
            if fault.hits == 4:
                break
            await asyncio.sleep(0.01)
        assert (fault.hits, answered) == (4, 0), "the window held its place until an answer came"
        await asyncio.gather(*tasks)
        assert state.send_windows is not None and not state.send_windows.waiting("faulty")
    finally:
        await srv.close()


async def _chat_once(c: openai.AsyncOpenAI) -> None:
    done = await c.chat.completions.create(model="gpt-4o", max_tokens=20, messages=MESSAGES)
    assert done.choices[0].message.content.startswith("Hello from the fault upstream")
