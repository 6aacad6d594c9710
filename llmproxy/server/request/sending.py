"""The send window: how many request bodies are being handed to one provider's connections at once.

A burst of requests (a thousand Claude Code turns, each ~90 KB) would otherwise build every upstream body at
once and hold it beside the client's while its connection is set up. Within the window a request builds its
body and sends it; beyond it, it waits holding only the client's bytes (its parsed body is let go and parsed
again when its turn comes). A slot is given back as soon as the body has been handed to the connection, not
when the answer comes, so the window bounds bodies in the making, never requests waiting for a slow model.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from llmproxy.errors import UpstreamTimeout


class Slot:
    """One place in a window; ``release`` may be called any number of times (the body written, the attempt
    ended), the place is given back once."""

    __slots__ = ("_sem",)

    def __init__(self, sem: asyncio.Semaphore | None) -> None:
        self._sem = sem

    def release(self) -> None:
        if self._sem is not None:
            sem, self._sem = self._sem, None
            sem.release()


class SendWindows:
    """One window per provider, ``size`` bodies each (``server.send_window``)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._sems: dict[str, asyncio.Semaphore] = {}

    def waiting(self, provider: str) -> bool:
        sem = self._sems.get(provider)
        return sem is not None and sem.locked()

    @contextlib.asynccontextmanager
    async def slot(self, provider: str, limit: float, before_wait: Callable[[], None], *, sends: bool = True
                   ) -> AsyncIterator[Slot]:
        """A place in ``provider``'s window for one attempt. When it must wait, ``before_wait`` runs first
        (to let go of what the wait need not hold); waiting longer than ``limit`` seconds is a timeout. A
        provider that ``sends`` nothing (the simulator) takes no place."""
        if not sends:
            yield Slot(None)
            return
        sem = self._sems.get(provider)
        if sem is None:
            sem = self._sems[provider] = asyncio.Semaphore(self.size)
        if sem.locked():
            before_wait()
            try:
                async with asyncio.timeout(limit):
                    await sem.acquire()
            except TimeoutError:
                raise UpstreamTimeout(f"{provider}: no room to send the request within {limit:g} s "
                                      f"({self.size} requests are being sent to it; server.send_window)") from None
        else:
            await sem.acquire()
        slot = Slot(sem)
        try:
            yield slot
        finally:
            slot.release()
