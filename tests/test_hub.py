"""The event hub: O(1) publish into a bounded ring, per-subscriber cursors, overrun drops, close."""

from __future__ import annotations

import asyncio

import pytest

from llmproxy.obs.hub import Closed, EventHub, Overrun


def test_publish_without_subscribers_keeps_nothing():
    hub = EventHub(size=4)
    for i in range(100):
        hub.publish("end", {"i": i})
    assert hub.seq == 0 and not hub.ring and hub.published == 0


async def test_subscribers_read_in_order_from_when_they_joined():
    hub = EventHub(size=16)
    a = hub.subscribe()
    hub.publish("start", {"i": 1})
    b = hub.subscribe()
    hub.publish("end", {"i": 2})
    got_a = await a.next_batch(timeout=1)
    got_b = await b.next_batch(timeout=1)
    assert [(e.kind, e.payload["i"]) for e in got_a] == [("start", 1), ("end", 2)]
    assert [e.payload["i"] for e in got_b] == [2]
    assert await a.next_batch(timeout=0.01) == []  # nothing new: empty after the timeout


async def test_a_waiting_subscriber_is_woken_by_publish():
    hub = EventHub()
    sub = hub.subscribe()
    task = asyncio.create_task(sub.next_batch(timeout=5))
    await asyncio.sleep(0)
    hub.publish("start", "x")
    hub.publish("end", "y")  # one wake-up for both
    batch = await asyncio.wait_for(task, 1)
    assert [e.payload for e in batch] == ["x", "y"]


async def test_the_ring_bounds_every_queue_and_a_subscriber_that_falls_behind_is_dropped():
    hub = EventHub(size=8)
    slow, fast = hub.subscribe(), hub.subscribe()
    for i in range(20):
        hub.publish("end", i)
        if i % 4 == 3:
            assert [e.payload for e in await fast.next_batch(timeout=0)][-1] == i
    assert len(hub.ring) == 8
    with pytest.raises(Overrun, match="behind"):
        await slow.next_batch(timeout=0)
    assert hub.dropped == 1
    hub.publish("end", 20)
    assert [e.payload for e in await fast.next_batch(timeout=0)] == [20]  # the one that kept up goes on


async def test_publish_is_constant_time_in_the_number_of_subscribers():
    hub = EventHub(size=64)
    subs = [hub.subscribe() for _ in range(30)]
    assert len(subs) == 30
    hub.publish("end", 1)
    # the work done per publish: one ring append and at most one scheduled wake-up, whatever the readers
    assert len(hub.ring) == 1 and hub._wake_pending is False  # nobody waits yet: no wake-up scheduled


def test_render_once_and_let_the_payload_go():
    from llmproxy.obs.hub import Event

    ev = Event(1, "end", {"big": "x" * 1000})
    calls = []
    out1 = ev.render(lambda e: calls.append(1) or b"data")
    out2 = ev.render(lambda e: calls.append(1) or b"other")
    assert out1 == out2 == b"data" and calls == [1] and ev.payload is None


async def test_limits_and_close():
    hub = EventHub(max_subscribers=2)
    a, b = hub.subscribe(), hub.subscribe()
    assert hub.subscribe() is None
    hub.unsubscribe(b)
    assert hub.subscribe() is not None
    waiting = asyncio.create_task(a.next_batch(timeout=5))
    await asyncio.sleep(0)
    hub.close()
    with pytest.raises(Closed):
        await asyncio.wait_for(waiting, 1)
    assert hub.subscribe() is None


async def test_drop_ends_a_waiting_reader():
    hub = EventHub()
    sub = hub.subscribe()
    waiting = asyncio.create_task(sub.next_batch(timeout=5))
    await asyncio.sleep(0)
    hub.drop(sub, "stalled")
    with pytest.raises(Overrun, match="stalled"):
        await asyncio.wait_for(waiting, 1)
    assert sub not in hub.subscribers and hub.dropped == 1


async def test_publish_from_another_thread_wakes_the_loop():
    hub = EventHub()
    sub = hub.subscribe()
    task = asyncio.create_task(sub.next_batch(timeout=5))
    await asyncio.sleep(0)
    await asyncio.to_thread(hub.publish, "end", "from a thread")
    batch = await asyncio.wait_for(task, 1)
    assert [e.payload for e in batch] == ["from a thread"]
