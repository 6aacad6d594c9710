"""Dashboard events across the workers of ``serve --workers N``: a browser's feed is served by whichever
worker it reached, so every worker passes its events on to the others.

Each worker has a datagram socket in the Linux abstract namespace (``llmproxy-<supervisor pid>-<i>``: no
file to clean up). A worker whose feed has readers tells its peers so once a second; a worker relays only
while some peer said so in the last few seconds, so with no dashboard open anywhere relaying costs one
comparison per request. An event travels as the JSON the feed would show (``start``: the start view;
``end``: the record without bodies — a click still reads those from the shared log); sending never waits,
and a datagram the peer cannot take is dropped, like a stalled browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from llmproxy.obs.hub import EventHub
from llmproxy.server.state import STATE, this_worker

WANT = b"want"
WANT_EVERY, WANT_FOR = 1.0, 3.5   # seconds between interest notes; how long one counts
MAX_DATAGRAM = 60_000
_BODY_KEYS = ("request_body", "response_body")


def address(supervisor: int, index: int) -> str:
    return f"\0llmproxy-{supervisor}-{index}"


class Relay(asyncio.DatagramProtocol):
    def __init__(self, hub: EventHub, index: int, count: int, supervisor: int):
        self.hub, self.index = hub, index
        self.peers = [address(supervisor, j) for j in range(1, count + 1) if j != index]
        self.wanted_until = 0.0
        self.sock: socket.socket | None = None

    # ------------------------------------------------------------------------------------------ outgoing
    def __call__(self, kind: str, payload: Any) -> None:
        """The hub's relay hook: pass the event on while a peer's dashboard wants it."""
        if self.sock is None or time.monotonic() > self.wanted_until:
            return
        try:
            view = {k: v for k, v in payload.items() if k not in _BODY_KEYS} | (
                {"bodies": True} if any(k in payload for k in _BODY_KEYS) else {})
            data = orjson.dumps({"kind": kind, "payload": view}, default=str)
        except Exception:  # noqa: BLE001 - an event that cannot travel is not shown elsewhere, nothing more
            return
        if len(data) <= MAX_DATAGRAM:
            self._send(data)

    def _send(self, data: bytes) -> None:
        for peer in self.peers:
            with contextlib.suppress(OSError):  # a peer restarting, or its queue full: dropped
                self.sock.sendto(data, peer)

    # ------------------------------------------------------------------------------------------ incoming
    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data == WANT:
            self.wanted_until = time.monotonic() + WANT_FOR
            return
        with contextlib.suppress(ValueError, TypeError, KeyError):
            msg = orjson.loads(data)
            if msg["kind"] in ("start", "end") and isinstance(msg["payload"], dict):
                self.hub.publish_here(msg["kind"], msg["payload"])

    async def announce(self) -> None:
        """While this worker's feed has readers, tell the peers once a second."""
        while True:
            if self.hub.subscribers and self.sock is not None:
                self._send(WANT)
            await asyncio.sleep(WANT_EVERY)


async def relay_context(app: web.Application) -> AsyncIterator[None]:
    """In a worker of a multi-worker daemon (on Linux), the relay for the app's lifetime."""
    worker = this_worker()
    if worker is None or not sys.platform.startswith("linux"):
        yield
        return
    hub = app[STATE].events
    relay = Relay(hub, worker[0], worker[1], os.getppid())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(address(os.getppid(), worker[0]))
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: relay, sock=sock)
    relay.sock = sock
    hub.relay = relay
    task = asyncio.get_running_loop().create_task(relay.announce(), name="event relay")
    yield
    hub.relay = None
    task.cancel()
    transport.close()
