"""What open dashboards cost the proxy: the same traffic through two identical daemons, one followed by three
dashboards (/api/events readers), one by none.

A fake Anthropic upstream and the two proxies run as subprocesses on 127.0.0.1; the three dashboards run in
a fourth process (so reading the feed costs the load generator nothing). Interleaved rounds of streamed
/v1/messages requests at a fixed concurrency, the order shuffled each round. Reported: median latency
direct / through each proxy, the proxy overhead (median through the proxy - median direct) with and without
dashboards and their ratio, throughput, and proxy CPU per request (utime + stime from /proc/PID/stat).

Usage: python scripts/bench_dashboard.py [--rounds 5] [--requests 400] [--concurrency 16] [--dashboards 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
FAKE = """
import sys
from aiohttp import web
sys.path.insert(0, {repo!r})
from tests.fakes.anthropic import FakeAnthropic
web.run_app(FakeAnthropic().app(), host="127.0.0.1", port={port}, print=None, access_log=None)
"""
DASHBOARDS = """
import asyncio, signal, sys, aiohttp
async def follow(url, counts, i):
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/api/events", timeout=aiohttp.ClientTimeout(total=None)) as r:
            async for line in r.content:
                if line.startswith(b"event: "):
                    counts[i] += 1
async def main():
    counts = [0] * {n}
    tasks = [asyncio.create_task(follow({url!r}, counts, i)) for i in range({n})]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(counts, flush=True)
asyncio.run(main())
"""
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
        "system": [{"type": "text", "text": "You are a helpful assistant. " * 40}],
        "messages": [{"role": "user", "content": "Tell me about proxies. " * 30}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_proxy(upstream: int) -> tuple[subprocess.Popen, int]:
    home = Path(tempfile.mkdtemp(prefix="llmproxy-bench-ui-"))
    port = free_port()
    (home / "config.toml").write_text(f'[server]\ndefault_profile = "fast"\n'
                                      f'[providers.anthropic]\nbase_url = "http://127.0.0.1:{upstream}"\n')
    env = {**os.environ, "LLMPROXY_HOME": str(home), "ANTHROPIC_API_KEY": "sk-ant-bench-0000000000"}
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    wait_port(port)
    return proc, port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_round(session: aiohttp.ClientSession, url: str, n: int, concurrency: int) -> tuple[list[float], float]:
    payload = json.dumps(BODY).encode()
    lat: list[float] = []
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            t0 = time.perf_counter()
            async with session.post(url + "/v1/messages", data=payload,
                                    headers={"content-type": "application/json"}) as r:
                await r.read()
                assert r.status == 200, r.status
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, time.perf_counter() - t0


async def bench(targets: dict[str, tuple[str, int | None]], rounds: int, n: int, c: int) -> dict[str, dict]:
    res = {k: {"lat": [], "wall": 0.0, "n": 0, "cpu": 0.0} for k in targets}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c * 2)) as s:
        for url, _ in targets.values():  # warm-up
            await run_round(s, url, c * 2, c)
        for _ in range(rounds):
            order = list(targets)
            random.shuffle(order)
            for name in order:
                url, pid = targets[name]
                cpu0 = cpu_seconds(pid) if pid else 0.0
                lat, wall = await run_round(s, url, n, c)
                res[name]["cpu"] += (cpu_seconds(pid) - cpu0) if pid else 0.0
                res[name]["lat"] += lat
                res[name]["wall"] += wall
                res[name]["n"] += n
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--dashboards", type=int, default=3)
    args = ap.parse_args()
    up_port = free_port()
    procs = [subprocess.Popen([sys.executable, "-c", FAKE.format(repo=str(REPO), port=up_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_port(up_port)
        with_ui, port_a = start_proxy(up_port)
        without, port_b = start_proxy(up_port)
        procs += [with_ui, without]
        dash = subprocess.Popen([sys.executable, "-c", DASHBOARDS.format(url=f"http://127.0.0.1:{port_a}",
                                                                         n=args.dashboards)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(dash)
        time.sleep(1.0)  # the dashboards connect
        targets = {"direct": (f"http://127.0.0.1:{up_port}", None),
                   f"proxy+{args.dashboards}ui": (f"http://127.0.0.1:{port_a}", with_ui.pid),
                   "proxy": (f"http://127.0.0.1:{port_b}", without.pid)}
        res = asyncio.run(bench(targets, args.rounds, args.requests, args.concurrency))
        dash.terminate()
        counts = dash.communicate(timeout=10)[0].strip()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    med = {k: statistics.median(v["lat"]) * 1000 for k, v in res.items()}
    ui = f"proxy+{args.dashboards}ui"
    print(f"{args.rounds} interleaved rounds x {args.requests} streamed requests at concurrency {args.concurrency}")
    for k, v in res.items():
        cpu = f"  proxy CPU {v['cpu'] / v['n'] * 1000:.3f} ms/request" if k != "direct" else ""
        print(f"  {k:<12} median {med[k]:7.2f} ms  {v['n'] / v['wall']:7.0f} req/s{cpu}")
    over_ui, over = med[ui] - med["direct"], med["proxy"] - med["direct"]
    tput = (res[ui]["n"] / res[ui]["wall"]) / (res["proxy"]["n"] / res["proxy"]["wall"])
    cpu_ratio = (res[ui]["cpu"] / res[ui]["n"]) / (res["proxy"]["cpu"] / res["proxy"]["n"])
    print(f"  events each dashboard received: {counts}")
    print(f"  proxy overhead: {over:.2f} ms without dashboards, {over_ui:.2f} ms with {args.dashboards} "
          f"-> ratio {over_ui / over:.3f}")
    print(f"  throughput ratio {tput:.3f}; proxy CPU per request ratio {cpu_ratio:.3f}")


if __name__ == "__main__":
    main()
