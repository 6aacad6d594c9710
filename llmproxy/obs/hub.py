"""The event hub behind the dashboard's live feed: requests publish, browsers subscribe.

Publishing is O(1) whatever the number of subscribers: one append to a ring of the newest ``size`` events
and, at most once per ``flush_interval`` (50 ms), a wake-up scheduled for the readers, so a busy proxy
writes to each browser in batches rather than once per request. With nobody subscribed it does nothing
at all. The payload is stored as it is — a JSON-shaped dict the publisher made for the event and never
changes again (``start``: ``RequestRecord.start_json``, ``end``: ``to_json``); turning it into bytes is the
subscriber side's work (``Event.wire``, done once per event and shared by every subscriber).

Each subscriber reads the ring from its own cursor, so its queue is the part of the ring it has not read
yet, bounded by the ring's size. One that falls further behind than that (a stalled browser, a slow
network) is dropped: it finds ``Overrun`` on its next read and its stream is closed. Nothing a subscriber
does can make ``publish`` wait.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: events kept for subscribers that have not read them yet (the bound of every subscriber's queue)
RING_SIZE = 2048
#: seconds between a publish and the wake-up of the readers (events published meanwhile go out together)
FLUSH_INTERVAL = 0.05
#: subscribers at once; more are refused (each one is an open HTTP response)
MAX_SUBSCRIBERS = 32


class Overrun(Exception):
    """The subscriber fell more than the ring's size behind: events it never saw are gone."""


class Closed(Exception):
    """The hub is shutting down."""


@dataclass(slots=True)
class Event:
    seq: int
    kind: str            # "start" | "end"
    payload: Any         # what the publisher passed; dropped once rendered
    wire: bytes | None = None

    def render(self, fn: Callable[[Event], bytes]) -> bytes:
        """The event's bytes, made by the first subscriber that needs them; the payload is then let go
        (a record may hold request and response bodies)."""
        if self.wire is None:
            self.wire = fn(self)
            self.payload = None
        return self.wire


@dataclass(eq=False)
class Subscriber:
    hub: EventHub
    cursor: int                    # the seq of the last event read
    dropped: str | None = None     # why the hub let go of it
    delivered: int = 0
    _id: int = field(default_factory=itertools.count().__next__)

    async def next_batch(self, timeout: float | None = None) -> list[Event]:
        """The events published since the last call, oldest first (empty after ``timeout`` seconds without
        any). Raises ``Overrun`` when some were lost, ``Closed`` when the hub closed."""
        hub = self.hub
        if hub.seq == self.cursor and not hub.closed:
            waiter = hub.waiter()
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except TimeoutError:
                return []
        if self.dropped:
            raise Overrun(self.dropped)
        if hub.closed:
            raise Closed("the event hub closed")
        ring = hub.ring
        oldest = ring[0].seq if ring else hub.seq + 1
        if self.cursor + 1 < oldest:
            self.dropped = (f"fell {hub.seq - self.cursor} events behind (the hub keeps {hub.size}); "
                            f"reconnect to continue")
            hub.dropped += 1
            raise Overrun(self.dropped)
        # the ring is ordered by seq with no gaps: the unread tail starts at a known offset
        start = self.cursor + 1 - oldest
        batch = list(itertools.islice(ring, start, None))
        if batch:
            self.cursor = batch[-1].seq
            self.delivered += len(batch)
        return batch


class EventHub:
    """A bounded fan-out of request events (see the module docstring)."""

    def __init__(self, size: int = RING_SIZE, max_subscribers: int = MAX_SUBSCRIBERS,
                 flush_interval: float = FLUSH_INTERVAL):
        self.size = size
        self.flush_interval = flush_interval
        self.max_subscribers = max_subscribers
        self.ring: deque[Event] = deque(maxlen=size)
        self.seq = 0
        self.subscribers: set[Subscriber] = set()
        self.published = 0
        self.dropped = 0
        self.closed = False
        self._waiter: asyncio.Future | None = None
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: with several workers, passes each event on to the workers whose dashboards want it
        self.relay: Callable[[str, Any], None] | None = None

    # ------------------------------------------------------------------------------------------ publish

    @property
    def listening(self) -> bool:
        """Whether a published event can reach anyone (a subscriber here, or another worker's): a publisher
        need not build a payload otherwise."""
        return bool(self.subscribers) or self.relay is not None

    def publish(self, kind: str, payload: Any) -> None:
        """O(1) and never waits; a no-op while nobody listens (here, or in another worker: ``relay``)."""
        if self.relay is not None:
            self.relay(kind, payload)
        self.publish_here(kind, payload)

    def publish_here(self, kind: str, payload: Any) -> None:
        """Publish to this process's subscribers only (an event another worker relayed)."""
        if not self.subscribers:
            return
        self.seq += 1
        self.published += 1
        self.ring.append(Event(self.seq, kind, payload))
        if not self._wake_pending and self._waiter is not None:
            self._wake_pending = True
            loop = self._loop
            assert loop is not None
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._wake_later()
            else:  # a publisher on another thread (a batch worker)
                loop.call_soon_threadsafe(self._wake_later)

    def _wake_later(self) -> None:
        assert self._loop is not None
        if self.flush_interval > 0:
            self._loop.call_later(self.flush_interval, self._wake)
        else:
            self._loop.call_soon(self._wake)

    def _wake(self) -> None:
        self._wake_pending = False
        w, self._waiter = self._waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    def waiter(self) -> asyncio.Future:
        """A future resolved at the next publish (one shared by every waiting subscriber)."""
        if self._waiter is None or self._waiter.done():
            self._loop = asyncio.get_running_loop()
            self._waiter = self._loop.create_future()
        return self._waiter

    # ------------------------------------------------------------------------------------- subscribers

    def subscribe(self) -> Subscriber | None:
        """A new subscriber reading from now on, or None when ``max_subscribers`` are already reading."""
        if self.closed or len(self.subscribers) >= self.max_subscribers:
            return None
        self._loop = asyncio.get_running_loop()
        sub = Subscriber(self, self.seq)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        if not self.subscribers:
            self.ring.clear()  # nobody will read them: let the payloads go

    def drop(self, sub: Subscriber, why: str) -> None:
        """Let go of a subscriber that cannot keep up (its next read raises ``Overrun``)."""
        if sub.dropped is None:
            sub.dropped = why
            self.dropped += 1
        self.unsubscribe(sub)
        self._wake_soon()

    def close(self) -> None:
        """Every subscriber's next read raises ``Closed`` (the server is shutting down)."""
        self.closed = True
        self._wake_soon()

    def _wake_soon(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.get_loop().call_soon(self._wake)

    def info(self) -> dict:
        return {"subscribers": len(self.subscribers), "published": self.published, "dropped": self.dropped,
                "ring": self.size}
