"""Proxy overhead and the cost of request logging, at 64 concurrent requests, measured side by side.

Starts a fake Anthropic upstream and two llmproxy daemons (default logging; logging off) as subprocesses on
127.0.0.1, then drives interleaved rounds of streamed /v1/messages requests against: the upstream directly,
proxy A (log on) and proxy B (log off). Reports per-request latency, throughput and:
  proxy overhead = median latency through a proxy - median latency direct
  logging cost   = (overhead with log - overhead without) / overhead without      (target <= 5 %)

Usage: python scripts/bench_proxy.py [--rounds 6] [--requests 640] [--concurrency 64]
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
fake = FakeAnthropic()
web.run_app(fake.app(), host="127.0.0.1", port={port}, print=None, access_log=None)
"""


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


def start_proxy(upstream: int, log_enabled: bool) -> tuple[subprocess.Popen, int, Path]:
    home = Path(tempfile.mkdtemp(prefix="llmproxy-bench-"))
    port = free_port()
    (home / "config.toml").write_text(f"""
[server]
default_profile = "fast"
[log]
enabled = {str(log_enabled).lower()}
[providers.anthropic]
base_url = "http://127.0.0.1:{upstream}"
""")
    env = {**os.environ, "LLMPROXY_HOME": str(home), "ANTHROPIC_API_KEY": "sk-ant-bench-0000000000"}
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    wait_port(port)
    return proc, port, home


BODY = {"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
        "system": [{"type": "text", "text": "You are a helpful assistant. " * 40}],
        "messages": [{"role": "user", "content": "Tell me about proxies. " * 30}]}


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


async def bench(targets: dict[str, str], rounds: int, n: int, concurrency: int) -> dict[str, dict]:
    conn = aiohttp.TCPConnector(limit=concurrency * 2)
    res: dict[str, dict] = {k: {"lat": [], "wall": 0.0, "n": 0} for k in targets}
    async with aiohttp.ClientSession(connector=conn) as s:
        for url in targets.values():  # warm-up
            await run_round(s, url, concurrency, concurrency)
        for _ in range(rounds):
            order = list(targets)
            random.shuffle(order)
            for name in order:
                lat, wall = await run_round(s, targets[name], n, concurrency)
                res[name]["lat"] += lat
                res[name]["wall"] += wall
                res[name]["n"] += n
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=640)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    up_port = free_port()
    upstream = subprocess.Popen([sys.executable, "-c", FAKE.format(repo=str(REPO), port=up_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [upstream]
    try:
        wait_port(up_port)
        pa, port_a, home_a = start_proxy(up_port, True)
        pb, port_b, _ = start_proxy(up_port, False)
        procs += [pa, pb]
        targets = {"direct": f"http://127.0.0.1:{up_port}", "proxy+log": f"http://127.0.0.1:{port_a}",
                   "proxy-nolog": f"http://127.0.0.1:{port_b}"}
        res = asyncio.run(bench(targets, args.rounds, args.requests, args.concurrency))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    med = {k: statistics.median(v["lat"]) * 1000 for k, v in res.items()}
    print(f"{args.rounds} interleaved rounds x {args.requests} streamed requests at concurrency {args.concurrency}")
    for k, v in res.items():
        lat = sorted(v["lat"])
        print(f"  {k:<12} median {med[k]:7.2f} ms  p95 {lat[int(len(lat) * 0.95)] * 1000:7.2f} ms  "
              f"{v['n'] / v['wall']:7.0f} req/s")
    over_log = med["proxy+log"] - med["direct"]
    over_nolog = med["proxy-nolog"] - med["direct"]
    lines = sum(1 for _ in open(home_a / "logs" / "requests.jsonl"))
    print(f"  proxy overhead: {over_nolog:.2f} ms without the log, {over_log:.2f} ms with it "
          f"({lines} log lines written)")
    print(f"  logging cost: {(over_log - over_nolog) / over_nolog:+.1%} of proxy overhead (target <= +5 %); "
          f"throughput ratio log/nolog {res['proxy+log']['n'] / res['proxy+log']['wall'] / (res['proxy-nolog']['n'] / res['proxy-nolog']['wall']):.3f}")


if __name__ == "__main__":
    main()
