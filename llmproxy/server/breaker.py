"""Circuit breaking per target (provider/model): a target that keeps failing is skipped for a cooldown
instead of costing every request a timeout.

closed --N consecutive failures--> open --cooldown over--> half-open (one probe request)
half-open --probe succeeds--> closed;  --probe fails--> open again.
A 429/529 with ``retry-after`` cools the target for that long at once. The clock is injectable, so tests
drive it without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Circuit:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False
    opened: int = 0                 # how many times it opened
    last_error: str | None = None

    def state(self, now: float) -> str:
        if self.open_until == 0.0:
            return "closed"
        return "open" if now < self.open_until else "half_open"


class Breakers:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.circuits: dict[str, Circuit] = {}

    def allow(self, key: str) -> bool:
        """May a request try this target now? In half-open, only one probe at a time."""
        c = self.circuits.get(key)
        if c is None or c.open_until == 0.0:
            return True
        if self.clock() < c.open_until or c.probing:
            return False
        c.probing = True
        return True

    def retry_in(self, key: str) -> float:
        c = self.circuits.get(key)
        return max(0.0, c.open_until - self.clock()) if c else 0.0

    def success(self, key: str) -> None:
        c = self.circuits.get(key)
        if c is not None:
            c.failures, c.open_until, c.probing = 0, 0.0, False

    def failure(self, key: str, error: str, *, threshold: int, cooldown: float,
                retry_after: float | None = None) -> None:
        c = self.circuits.setdefault(key, Circuit())
        c.failures += 1
        c.last_error = error
        was_probe, c.probing = c.probing, False
        hold = retry_after if retry_after else (cooldown if was_probe or c.failures >= threshold else 0.0)
        if hold > 0:
            c.open_until = max(c.open_until, self.clock() + hold)
            c.opened += 1

    def release(self, key: str) -> None:
        """A probe that ended without a verdict (e.g. the client went away) lets the next request probe."""
        c = self.circuits.get(key)
        if c is not None:
            c.probing = False

    def snapshot(self) -> dict[str, dict]:
        now = self.clock()
        return {k: {"state": c.state(now), "consecutive_failures": c.failures,
                    "retry_in_s": round(max(0.0, c.open_until - now), 1), "times_opened": c.opened,
                    "last_error": c.last_error}
                for k, c in sorted(self.circuits.items()) if c.failures or c.open_until}
