"""The send window (server/request/sending.py): it bounds the request bodies being handed to one provider at once,
never the requests waiting for an answer, and every way an attempt ends gives its place back."""

from __future__ import annotations

import asyncio
import time

import aiohttp

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]}


async def _post(url: str, n: int, stream: bool = False) -> list[int]:
    async with aiohttp.ClientSession() as s:
        async def one() -> int:
            async with s.post(url + "/v1/messages", json={**BODY, "stream": stream}) as r:
                await r.read()
                return r.status
        return await asyncio.gather(*(one() for _ in range(n)))


async def test_a_place_is_given_back_once_the_body_is_sent_not_when_the_answer_comes(fault_proxy, fault_upstream):
    url, state = await fault_proxy("anthropic", False, server={"send_window": 1}, ttfb_timeout=5.0)
    fault_upstream.mode = "slow_json"  # every answer takes 1 s
    t0 = time.monotonic()
    assert await _post(url, 4) == [200] * 4
    elapsed = time.monotonic() - t0
    assert elapsed < 2.5, f"{elapsed:.2f} s: the window held its place until the answer (4 x 1 s)"
    assert fault_upstream.hits == 4
    assert not state.send_windows.waiting("faulty")


async def test_failed_attempts_give_their_place_back(fault_proxy, fault_upstream):
    url, state = await fault_proxy("anthropic", False, server={"send_window": 1}, refuse=True)
    for _ in range(3):  # refused connections: each attempt and its retry end without a body written
        # (502, then 529 once the target's circuit has opened)
        assert set(await _post(url, 2, stream=True)) <= {502, 529}
    assert not state.send_windows.waiting("faulty")
    url, state = await fault_proxy("anthropic", False, server={"send_window": 1})
    fault_upstream.script = ["500", "500"]  # upstream errors, then a good answer for the next request
    assert await _post(url, 1) == [500]
    assert await _post(url, 3, stream=True) == [200] * 3
    assert not state.send_windows.waiting("faulty")
