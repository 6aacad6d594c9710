"""Circuit breaking per target (provider/model). A breaker exists to move traffic to something better:
it skips a target only while the route has another target it may try; with nothing better it never stands
in the way (panic mode, as Envoy's panic threshold: the target that recovers first is tried anyway, and the
client hears what that upstream says).

closed --≥ ``failures`` health failures that are ≥ 50 % of the last ``window`` outcomes--> open
open --``breaker_cooldown`` over--> half-open: one request probes, the others go to another target if
the route has one, else through. A success (probe or not) closes; a failed probe reopens for twice the last
hold, up to ``breaker_cooldown``. A 429/503/529 with ``retry-after`` cools the target for that long at once.

Only what says something about the target's health counts (``health_failure``): no connection, timeouts,
5xx and 529, malformed streams, a rejected key, a redirect. A request-specific answer (400, 404, 413, 422)
counts as an answer; a 429 only cools (with ``retry-after``). The clock is injectable: tests drive it
without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llmproxy.errors import ProxyError

#: statuses whose ``retry-after`` cools the target for that long
COOLING_STATUSES = frozenset({429, 503, 529})


@dataclass(frozen=True)
class Policy:
    """A provider's breaker options (``ProviderConfig.breaker_*``)."""

    failures: int = 5          # health failures in the window that may open the circuit
    window: int = 20           # the last N outcomes looked at; at least half of them must be failures
    cooldown: float = 30.0     # how long a circuit opened by failures stays open; the most a reopening holds

    @classmethod
    def of(cls, cfg) -> Policy:
        return cls(cfg.breaker_failures, cfg.breaker_window, cfg.breaker_cooldown)


def health_failure(exc: ProxyError) -> bool:
    """Whether a failure says something about the target rather than about this request: no upstream
    status (connection, timeout, malformed answer), a 5xx or 529, 408, a rejected key (401), a redirect."""
    status = exc.upstream_status
    if status is None or status >= 500 or status < 400:
        return True
    return status in (401, 408)


@dataclass
class Circuit:
    outcomes: deque = field(default_factory=deque)   # True = a health failure, newest last
    consecutive: int = 0            # health failures in a row
    open_until: float = 0.0
    hold: float = 0.0               # length of the last opening (a failed probe doubles it)
    probing: bool = False
    opened: int = 0                 # how many times it opened
    cooled_by: int | None = None    # the upstream status whose retry-after cools it, if that is why
    last_error: str | None = None

    def state(self, now: float) -> str:
        if self.open_until == 0.0:
            return "closed"
        return "open" if now < self.open_until else "half_open"

    def failures(self) -> int:
        return sum(self.outcomes)


class Breakers:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.circuits: dict[str, Circuit] = {}

    # ------------------------------------------------------------------------------- choosing targets
    def available(self, key: str) -> bool:
        """May a request go to this target without the panic rule: closed, or half-open with no probe out."""
        c = self.circuits.get(key)
        if c is None or c.open_until == 0.0:
            return True
        return self.clock() >= c.open_until and not c.probing

    def retry_in(self, key: str) -> float:
        c = self.circuits.get(key)
        return max(0.0, c.open_until - self.clock()) if c else 0.0

    def route(self, keys: Sequence[str]) -> tuple[list[str], bool]:
        """The targets a request tries, in chain order, and whether in panic mode: the available ones; when
        none is, the one that recovers first (a half-open target whose probe is out recovers "now")."""
        order = [k for k in keys if self.available(k)]
        if order or not keys:
            return order, False
        return [min(keys, key=self.retry_in)], True

    def begin(self, key: str) -> bool:
        """A request is about to try this target; True when it is the half-open probe."""
        c = self.circuits.get(key)
        if c is None or c.open_until == 0.0 or c.probing or self.clock() < c.open_until:
            return False
        c.probing = True
        return True

    # ------------------------------------------------------------------------------------- outcomes
    def success(self, key: str, policy: Policy) -> None:
        """The target answered well: an open or half-open circuit closes, whoever asked (the probe, or a
        request let through by the panic rule); a closed one with no failure left in its window is dropped."""
        c = self.circuits.get(key)
        if c is None:
            return
        if c.open_until:
            c.outcomes.clear()
            c.consecutive, c.open_until, c.hold, c.probing, c.cooled_by = 0, 0.0, 0.0, False, None
        else:
            self._note(c, False, policy)
        if not c.open_until and not c.failures():
            del self.circuits[key]

    def answered(self, key: str, policy: Policy, probe: bool = False) -> None:
        """A request-specific answer (400, 404, 413 …): the target is there; a probe's slot is given back."""
        c = self.circuits.get(key)
        if c is None:
            return
        self._note(c, False, policy)
        if probe:
            c.probing = False
        if not c.open_until and not c.failures():
            del self.circuits[key]

    def failure(self, key: str, error: str, policy: Policy, *, health: bool = True,
                retry_after: float | None = None, status: int | None = None, probe: bool = False) -> None:
        """A failed try. ``health``: it counts towards opening (``health_failure``); ``retry_after`` (from a
        429/503/529 with that ``status``) cools the target that long in any case."""
        if not health and not retry_after:
            self.answered(key, policy, probe)
            return
        c = self.circuits.setdefault(key, Circuit())
        now = self.clock()
        c.last_error = error
        self._note(c, health, policy)
        if probe:
            c.probing = False
        if retry_after and self._open(c, now, retry_after):
            c.cooled_by = status
        if not health:
            return
        if c.open_until and now >= c.open_until:  # the verdict of a half-open try: reopen, growing
            self._open(c, now, min(policy.cooldown, c.hold * 2) if c.hold else policy.cooldown)
        elif not c.open_until and c.failures() >= policy.failures and 2 * c.failures() >= len(c.outcomes):
            self._open(c, now, policy.cooldown)
            c.outcomes.clear()

    def release(self, key: str, probe: bool) -> None:
        """A try that ended without a verdict (e.g. the client went away): the next request may probe."""
        c = self.circuits.get(key)
        if c is not None and probe:
            c.probing = False

    @staticmethod
    def _note(c: Circuit, failed: bool, policy: Policy) -> None:
        c.outcomes.append(failed)
        while len(c.outcomes) > policy.window:
            c.outcomes.popleft()
        c.consecutive = c.consecutive + 1 if failed else 0

    @staticmethod
    def _open(c: Circuit, now: float, hold: float) -> bool:
        """Open (or keep open) until ``now + hold``; False when it is already open longer."""
        if now + hold <= c.open_until:
            return False
        if c.state(now) != "open":
            c.opened += 1
        c.open_until, c.hold, c.cooled_by = now + hold, hold, None
        return True

    def snapshot(self) -> dict[str, dict]:
        now = self.clock()
        return {k: {"state": c.state(now), "consecutive_failures": c.consecutive,
                    "recent_failures": c.failures(), "recent_requests": len(c.outcomes),
                    "retry_in_s": round(max(0.0, c.open_until - now), 1), "times_opened": c.opened,
                    "cooled_by": c.cooled_by, "last_error": c.last_error}
                for k, c in sorted(self.circuits.items()) if c.consecutive or c.failures() or c.open_until}
