"""Throughput of the batch executor on the simulator at speed 0 (a 10,000-item batch at the default
concurrency) and the daemon's RSS meanwhile. A measurement, not a check: run it with
``pytest -m e2e -s tests/test_batches_throughput.py``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import anthropic
import pytest

from tests.conftest import free_port
from tests.test_batches_durability import start

N = int(os.environ.get("LLMPROXY_BENCH_ITEMS", "10000"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.e2e
def test_throughput_10k_items_at_speed_0(home):
    (home / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
    port = free_port()
    proc = start(home, port)
    try:
        c = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="x", max_retries=0, timeout=120)
        idle = rss_mib(proc.pid)
        reqs = [{"custom_id": f"i{i}", "params": {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
            {"role": "user", "content": f"Summarise item {i} of the quarterly inventory in one sentence."}]}}
            for i in range(N)]
        t0 = time.monotonic()
        batch = c.messages.batches.create(requests=reqs)
        created = time.monotonic() - t0
        peak = 0.0
        while (b := c.messages.batches.retrieve(batch.id)).processing_status != "ended":
            peak = max(peak, rss_mib(proc.pid))
            time.sleep(0.1)
        took = time.monotonic() - t0 - created
        n_results = sum(1 for _ in c.messages.batches.results(batch.id))
        print(f"\n{N} items: create {created:.2f} s, run {took:.1f} s = {N / took:.0f} items/s; "
              f"RSS idle {idle:.0f} MiB, peak during the batch {peak:.0f} MiB; {n_results} results, "
              f"{b.request_counts.succeeded} succeeded")
        assert n_results == N and b.request_counts.succeeded == N
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
