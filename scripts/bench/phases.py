"""The phases of a benchmark run, each driving the client against started parties: the sanity check (every
proxy reaches the fake upstream on every path), the matrix (interleaved, shuffled rounds of batches per
cell), the bursts of concurrent long streams on fresh proxies, and the start-up measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time

import aiohttp

from bench import bodies
from bench.client import CC_HEADERS, Stats, Target, batch, one, targets_for
from bench.parties import Variant, start_proxy
from bench.procs import Cleanup, Proc, get_json, log, post_json


async def sanity(up: Proc, proxies: dict[str, Proc]) -> list[str]:
    """One request per proxy, path, body and mode; it must succeed and reach the expected upstream route."""
    notes = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        for party, p in proxies.items():
            health = get_json(p.port, "/health")
            live = {n: i.get("live") for n, i in health.get("providers", {}).items()
                    if n in ("anthropic", "benchoai", "slowant", "slowoai")}
            if not all(live.values()) or len(live) < 4:
                raise RuntimeError(f"{party}: bench providers not live: {live}")
            for path, route in (("pass", "anthropic"), ("xlate", "openai")):
                for body in ("small", "cc"):
                    for stream in (False, True):
                        t = [x for x in targets_for(body, path, stream, up, {party: p}) if x.party == party][0]
                        before = get_json(up.port, "/stats")["counts"].get(route, 0)
                        total, _, err = await one(s, t, b"message_stop")
                        after = get_json(up.port, "/stats")["counts"].get(route, 0)
                        if err or after != before + 1:
                            raise RuntimeError(f"sanity {party} {path} {body} stream={stream}: {err or 'upstream'} "
                                               f"(upstream {route} count {before} -> {after})\n{p.tail()}")
            notes.append(f"{party}: both paths reach the fake upstream (200, complete streams)")
    bad = get_json(up.port, "/stats")["bad"]
    if bad:
        raise RuntimeError(f"the upstream saw malformed requests: {bad}")
    return notes


async def run_matrix(args, up: Proc, proxies: dict[str, Proc], w2: Proc | None, relay: Proc | None = None) -> dict:
    cells = [(b, p, m, c) for b in args.bodies for p in args.paths for m in args.modes for c in args.concurrency]
    res: dict = {cell: {} for cell in cells}
    n_for = {1: args.n1, 16: args.n16, 64: args.n64}
    tg: dict = {}
    for (b, p, m, c) in cells:
        parties = dict(proxies)
        if w2 is not None and c > 1:
            parties["new-w2"] = w2
        if relay is not None and p == "pass":
            parties["relay"] = relay
        tg[(b, p, m, c)] = targets_for(b, p, m == "stream", up, parties)
    conn = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout, auto_decompress=False) as s:
        log("warm-up")
        warmed = set()
        for cell, ts in tg.items():  # once per body, path and mode: open connections, fill caches
            for t in ts:
                if (cell[:3], t.party) not in warmed:
                    warmed.add((cell[:3], t.party))
                    await batch(s, t, 16, 8, Stats(), 30)
        t_start = time.perf_counter()
        for r in range(args.rounds):
            order = list(cells)
            random.shuffle(order)
            for cell in order:
                ts = list(tg[cell])
                random.shuffle(ts)
                for t in ts:
                    st = res[cell].setdefault(t.party, Stats())
                    await batch(s, t, n_for.get(cell[3], args.n16), cell[3], st, args.batch_seconds)
            log(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - t_start:.0f} s)")
    return res


async def stream_burst(url: str, payload: bytes, headers: dict, n: int, proc: Proc, limit_s: float) -> dict:
    """n concurrent long streams; RSS sampled every 100 ms; bounded by limit_s."""
    open_now = 0
    max_open = 0
    errors: list[str] = []
    rss_before = proc.rss()
    peak = rss_before
    conn = aiohttp.TCPConnector(limit=0, limit_per_host=0)

    async def stream_one(s: aiohttp.ClientSession) -> None:
        nonlocal open_now, max_open
        opened = False
        tail = b""
        try:
            async with s.post(url, data=payload, headers=headers) as r:
                async for chunk in r.content.iter_any():
                    if not opened:
                        opened = True
                        open_now += 1
                        max_open = max(max_open, open_now)
                    tail = (tail + chunk)[-256:]
                if r.status != 200 or b"message_stop" not in tail:
                    errors.append(f"HTTP {r.status} {tail[-100:]!r}")
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            if opened:
                open_now -= 1

    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=limit_s)) as s:
        tasks = [asyncio.create_task(stream_one(s)) for _ in range(n)]
        done_evt = asyncio.gather(*tasks, return_exceptions=True)
        while not done_evt.done() and time.perf_counter() - t0 < limit_s + 5:
            peak = max(peak, proc.rss())
            await asyncio.wait([done_evt], timeout=0.1)
        if not done_evt.done():
            for t in tasks:
                t.cancel()
            errors.append("burst did not finish in time; cancelled")
            with contextlib.suppress(asyncio.CancelledError):
                await done_evt
    dur = time.perf_counter() - t0
    return {"n": n, "errors": len(errors), "first_error": errors[0] if errors else "", "max_open": max_open,
            "rss_before": rss_before, "peak": max(peak, proc.rss()), "duration": dur, "rss_end": proc.rss()}


async def run_streams(args, cl: Cleanup, variants: list[Variant], up: Proc) -> list[dict]:
    out = []
    payload = json.dumps(bodies.claude_code_body(True)).encode()
    after_tasks = []

    async def rss_after(p: Proc, rec: dict, t_end: float) -> None:
        await asyncio.sleep(max(0.0, t_end + 30 - time.perf_counter()))
        rec["rss_30s"] = p.rss()
        cl.stop(p)

    for v in variants:
        for path in args.paths:
            p, ready, _ = start_proxy(cl, v, up.port)
            url = f"http://127.0.0.1:{p.port}/p/bench-slow-{path}/v1/messages"
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:  # warm, 1 request
                await one(s, Target(v.label, url.replace("/bench-slow-", "/bench-"), payload, CC_HEADERS, True, p),
                          b"message_stop")
            post_json(up.port, "/stats/reset")
            log(f"{args.streams} concurrent long streams: {v.label} {path}")
            rec = await stream_burst(url, payload, CC_HEADERS, args.streams, p, args.stream_seconds * 3 + 120)
            rec.update(variant=v.label, path=path, idle=p.rss(), upstream_max_open=get_json(
                up.port, "/stats")["max_open_streams"])
            out.append(rec)
            after_tasks.append(asyncio.create_task(rss_after(p, rec, time.perf_counter())))
    if after_tasks:
        log("waiting for the RSS 30 s after the last burst")
        await asyncio.gather(*after_tasks)
    return out


def measure_startups(cl: Cleanup, variants: list[Variant], up: Proc, k: int) -> dict:
    res: dict = {v.label: {"ready": [], "cpu": [], "rss": []} for v in variants}
    for _ in range(k):
        for v in random.sample(variants, len(variants)):
            p, ready, cpu = start_proxy(cl, v, up.port)
            time.sleep(1.5)
            res[v.label]["ready"].append(ready)
            res[v.label]["cpu"].append(cpu)
            res[v.label]["rss"].append(p.rss())
            cl.stop(p)
    return res
