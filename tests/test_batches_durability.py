"""A batch survives ``kill -9``: the daemon (a subprocess) is killed mid-batch and started again; it resumes the
batch, re-runs only the items without a stored result, and the final results are complete, each item once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import anthropic

from tests.conftest import free_port
from tests.helpers import REPO

N = 300


def start(home, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--simulate", "--port", str(port)],
                            cwd=REPO, env={**os.environ, "LLMPROXY_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the daemon did not come up")


def stored_counts(home, batch_id: str) -> dict:
    from llmproxy.store import open_store

    async def read():
        store = open_store(home)
        try:
            return (await store.get_batch(batch_id)).progress()
        finally:
            await store.close()

    return asyncio.run(read())


def test_kill_9_mid_batch_then_resume(home):
    (home / "config.toml").write_text("[server]\nsimulator_speed = 6\n[batches]\nconcurrency = 8\n")
    port = free_port()
    proc = start(home, port)
    c = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="x", max_retries=0)
    try:
        reqs = [{"custom_id": f"item-{i:04d}", "params": {"model": "claude-sonnet-4-5", "max_tokens": 40,
                                                           "messages": [{"role": "user", "content": f"q {i}"}]}}
                for i in range(N)]
        batch = c.messages.batches.create(requests=reqs)
        deadline = time.monotonic() + 60
        while c.messages.batches.retrieve(batch.id).llmproxy_progress["succeeded"] < N // 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    before = stored_counts(home, batch.id)
    assert 0 < before["succeeded"] < N and before["processing"] > 0, before

    restart = datetime.now(UTC).isoformat(timespec="milliseconds")
    port = free_port()
    proc = start(home, port)
    try:
        c = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="x", max_retries=0)
        deadline = time.monotonic() + 90
        while (b := c.messages.batches.retrieve(batch.id)).processing_status != "ended":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        results = list(c.messages.batches.results(batch.id))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    ids = [r.custom_id for r in results]
    duplicates, lost = len(ids) - len(set(ids)), N - len(set(ids))
    assert (duplicates, lost) == (0, 0)
    assert b.request_counts.succeeded == N and all(r.result.type == "succeeded" for r in results)
    logged = [json.loads(line) for line in (home / "logs" / "requests.jsonl").read_text().splitlines()]
    rerun = [r["custom_id"] for r in logged if r.get("batch_id") == batch.id and r["time"] >= restart]
    print(f"\ndurability: {before['succeeded']} done before kill -9, {len(rerun)} run after restart, "
          f"duplicates {duplicates}, lost {lost}")
    # after the restart exactly the items without a stored result ran, each once
    assert len(rerun) == len(set(rerun)) == N - before["succeeded"]
