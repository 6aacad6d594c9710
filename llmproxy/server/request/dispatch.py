"""Dispatch: open a reply from the first target of a Decision's chain that answers.

Before anything reaches the client, a failure may be retried on the same target (408/409/429/5xx/529 and
connection failures: capped exponential backoff with jitter, honouring ``retry-after`` within the
provider's ``retry_budget``), then falls back to the next target. A target whose circuit is open is skipped
only while the route has another target to try; when every target's is open, the one that recovers first is
tried anyway (panic mode, ``server/request/breaker.py``): the client hears what the upstream says, never a cooldown
the proxy made up. Every failed try is recorded; once a reply is open, the caller (``server/request/exchange.py``)
records who answered and writes it, and nothing here runs again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from llmproxy.config import ProviderConfig, Target
from llmproxy.errors import ProxyError, UpstreamError, UpstreamTimeout
from llmproxy.providers import Provider, Reply
from llmproxy.routing import Decision
from llmproxy.server.request.breaker import COOLING_STATUSES, Breakers, Policy, health_failure
from llmproxy.server.request.record import RequestRecord
from llmproxy.server.request.sending import SendWindows
from llmproxy.server.state import State

#: upstream statuses worth retrying on the same target (before the first byte only)
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
BACKOFF_BASE, BACKOFF_CAP = 0.5, 8.0


@dataclass
class Opened:
    reply: Reply
    target: Target
    provider: Provider


Attempt = Callable[[int, Target, Provider], Awaitable[Reply]]


def send_windows(state: State) -> SendWindows:
    """The per-provider send windows, sized by ``server.send_window`` (new ones after a reload resized it)."""
    size = state.runtime.cfg.server.send_window
    if state.send_windows is None or state.send_windows.size != size:
        state.send_windows = SendWindows(size)
    return state.send_windows


def same_target_retry(exc: ProxyError) -> bool:
    """Whether a failure is worth another try on the same target: a retryable status, or the connection
    failing (not a timeout: a hung target has already cost its time-to-first-byte budget)."""
    if not exc.retryable or exc.should_retry is False or isinstance(exc, UpstreamTimeout):
        return False
    return exc.upstream_status in RETRY_STATUSES if exc.upstream_status is not None else type(exc) is UpstreamError


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from these APIs; fall back to our own backoff


def backoff(n: int, retry_after: float | None) -> float:
    """Seconds before retry ``n`` (0-based): the upstream's retry-after, else capped exponential with jitter."""
    if retry_after is not None:
        return retry_after
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** n) * random.uniform(0.5, 1.0)


async def open_chain(state: State, decision: Decision, rec: RequestRecord, attempt: Attempt) -> Opened:
    """Try each target of the chain in order until one answers; see the module docstring for the rules."""
    rec.attempts = []
    breakers = state.breakers
    targets = [(i, t, p) for i, t in enumerate(decision.chain)
               if (p := state.runtime.providers.get(t.provider)) is not None]
    order, panic = breakers.route([str(t) for _, t, _ in targets])
    skipped = [str(t) for _, t, _ in targets if str(t) not in order]
    if panic:  # every target's circuit is open: the one recovering first is tried all the same
        rec.extra["breaker_panic"] = order[0]
    last: ProxyError | None = None
    budget = [0.0]  # seconds waited between same-target retries, across the chain
    try:
        for i, target, provider in targets:
            key = str(target)
            if key not in order:
                continue
            if last is not None and not breakers.available(key):  # opened meanwhile; something was tried
                skipped.append(key)
                continue
            try:
                reply = await _try_target(breakers, key, rec, budget, partial(attempt, i, target, provider),
                                          provider.config)
            except ProxyError as exc:
                if not exc.retryable:
                    raise
                last = exc
                continue
            return Opened(reply, target, provider)
    finally:
        if skipped:
            rec.extra["circuit_open"] = skipped
    raise last or UpstreamError("no provider in the chain is configured")


async def _try_target(breakers: Breakers, key: str, rec: RequestRecord, budget: list[float],
                      call: Callable[[], Awaitable[Reply]], cfg: ProviderConfig) -> Reply:
    """One target: retried while the failure is worth it and the budget allows, every try recorded; the
    outcome told to its circuit (a request-specific answer does not count, a 429's retry-after cools it)."""
    probe, policy, tries = breakers.begin(key), Policy.of(cfg), 0
    while True:
        t0 = time.monotonic()
        try:
            reply = await call()
        except ProxyError as exc:
            after = _seconds(exc.retry_after)
            entry = {"target": key, "status": exc.status, "error": exc.message,
                     "ms": round((time.monotonic() - t0) * 1000, 1)}
            rec.attempts.append(entry)
            delay = backoff(tries, after)
            if same_target_retry(exc) and tries < cfg.max_retries and budget[0] + delay <= cfg.retry_budget:
                entry["retried"] = True
                tries += 1
                budget[0] += delay
                await asyncio.sleep(delay)
                continue
            if not exc.retryable:
                breakers.answered(key, policy, probe)
            else:
                cooling = exc.upstream_status in COOLING_STATUSES
                breakers.failure(key, exc.message, policy, health=health_failure(exc), probe=probe,
                                 retry_after=after if cooling else None, status=exc.upstream_status)
            raise
        except BaseException:
            breakers.release(key, probe)
            raise
        breakers.success(key, policy)
        return reply


def stream_failed(state: State, opened: Opened, exc: ProxyError) -> None:
    """An upstream that fails in the middle of a stream (hangs, cuts off, sends garbage) counts against its
    circuit like one that fails at once: a target that always breaks after the first text is skipped too."""
    if exc.retryable:
        state.breakers.failure(str(opened.target), exc.message, Policy.of(opened.provider.config),
                               health=health_failure(exc))
