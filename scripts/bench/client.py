"""The load client: one request (``one``: latency, TTFB, whether the answer is complete), a batch of them
at a concurrency with the proxy's CPU read around it (``batch`` into ``Stats``), and the ``Target``s of a
cell: the same request sent directly to the fake upstream and through each proxy.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

from bench import bodies
from bench.procs import Proc


@dataclass
class Target:
    party: str            # "direct", "new", "baseline", "new-w2"
    url: str
    payload: bytes
    headers: dict
    stream: bool
    proc: Proc | None     # the proxy, for CPU; None for direct


@dataclass
class Stats:
    lat: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    n: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    errors: int = 0
    first_error: str = ""


async def one(session: aiohttp.ClientSession, t: Target, marker: bytes) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    ttfb = 0.0
    tail = b""
    try:
        async with session.post(t.url, data=t.payload, headers=t.headers) as r:
            async for chunk in r.content.iter_any():
                if not ttfb:
                    ttfb = time.perf_counter() - t0
                tail = (tail + chunk)[-256:]
            total = time.perf_counter() - t0
            if r.status != 200:
                return total, ttfb, f"HTTP {r.status}: {tail[-200:].decode(errors='replace')}"
            if t.stream and marker not in tail:
                return total, ttfb, f"stream ended without {marker.decode()}: {tail[-120:]!r}"
            return total, ttfb, ""
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        return time.perf_counter() - t0, ttfb, f"{type(e).__name__}: {e}"


async def batch(session: aiohttp.ClientSession, t: Target, n: int, c: int, st: Stats, budget: float) -> None:
    marker = b"[DONE]" if (t.party == "direct" and "/chat/completions" in t.url) else b"message_stop"
    todo = iter(range(n))
    deadline = time.perf_counter() + budget
    done = 0

    async def worker() -> None:
        nonlocal done
        for _ in todo:
            if time.perf_counter() > deadline:
                return
            total, ttfb, err = await one(session, t, marker)
            done += 1
            if err:
                st.errors += 1
                st.first_error = st.first_error or err
            else:
                st.lat.append(total)
                st.ttfb.append(ttfb)

    cpu0 = t.proc.cpu() if t.proc else 0.0
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    st.wall += time.perf_counter() - t0
    await asyncio.sleep(0.05)  # let the proxy finish its bookkeeping (request log) inside this window
    if t.proc:
        st.cpu += t.proc.cpu() - cpu0
    st.n += done


ANTHROPIC_HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01",
                     "x-api-key": "sk-ant-bench-client", "user-agent": "bench-client/1.0"}
CC_HEADERS = {**ANTHROPIC_HEADERS, "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                                                     "context-management-2025-06-27,effort-2025-11-24",
              "x-claude-code-session-id": "00000000-bench-0000-0000-000000000000"}
OPENAI_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-client"}


def build_body(body: str, stream: bool) -> dict:
    return bodies.claude_code_body(stream) if body == "cc" else bodies.small_body(stream)


def targets_for(body: str, path: str, stream: bool, up: Proc, proxies: dict[str, Proc],
                slow: bool = False) -> list[Target]:
    b = build_body(body, stream)
    payload = json.dumps(b).encode()
    headers = CC_HEADERS if body == "cc" else ANTHROPIC_HEADERS
    prefix = "/slow" if slow else ""
    if path == "pass":
        direct = Target("direct", f"http://127.0.0.1:{up.port}{prefix}/v1/messages", payload, headers, stream, None)
    else:
        oa = json.dumps(bodies.to_openai(b, "bench-gpt")).encode()
        direct = Target("direct", f"http://127.0.0.1:{up.port}{prefix}/v1/chat/completions", oa, OPENAI_HEADERS,
                        stream, None)
    profile = f"bench-{'slow-' if slow else ''}{path}"
    out = [direct]
    for party, p in proxies.items():
        out.append(Target(party, f"http://127.0.0.1:{p.port}/p/{profile}/v1/messages", payload, headers, stream, p))
    return out
