"""``serve --workers 2`` as users run it (a subprocess on loopback): both workers serve, the log and the
metrics cover both, a killed worker comes back, ``reload``/``stop`` act on all of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

BODY = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 16,
                   "messages": [{"role": "user", "content": "hello"}]}).encode()


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read()


def post(port: int, path: str = "/v1/messages", body: bytes = BODY) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
        return r.status


def wait_until(pred, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (val := pred()):
                return val
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def worker_pids(supervisor: int) -> set[int]:
    kids = Path(f"/proc/{supervisor}/task/{supervisor}/children")
    return {int(p) for p in kids.read_text().split()} if kids.exists() else set()


@pytest.fixture
def daemon(home):
    port = free_port()
    env = {**os.environ, "LLMPROXY_HOME": str(home)}
    (home / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--port", str(port), "--workers", "2",
                             "--simulate"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: json.loads(get(port, "/health"))["status"] == "ok")
        yield proc, port, env
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(20)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker pids from /proc")
def test_two_workers_share_the_port_log_and_metrics(daemon, home):
    proc, port, env = daemon
    workers = wait_until(lambda: len(worker_pids(proc.pid)) == 2 and worker_pids(proc.pid))
    for _ in range(20):
        assert post(port) == 200
    seen = {json.loads(get(port, "/health"))["pid"] for _ in range(30)}
    assert seen <= workers and len(seen) >= 1
    metrics = get(port, "/metrics").decode()
    served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith("llmproxy_requests_total{") and 'endpoint="messages"' in line)
    assert served == 20  # summed across workers, whichever answered /metrics
    log = home / "logs" / "requests.jsonl"
    lines = wait_until(lambda: len(log.read_text().splitlines()) >= 20 and log.read_text().splitlines())
    assert all(json.loads(line)["status"] == 200 for line in lines)  # whole lines: none torn

    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    again = wait_until(lambda: len(worker_pids(proc.pid)) == 2 and victim not in worker_pids(proc.pid)
                       and worker_pids(proc.pid))
    assert victim not in again and post(port) == 200

    status = subprocess.run([sys.executable, "-m", "llmproxy", "stop"], env=env, capture_output=True, text=True,
                            timeout=30)
    assert status.returncode == 0, status.stderr
    assert proc.wait(20) == 0
    assert not (home / "llmproxy.pid").exists()
    log = proc.stderr.read().decode()
    assert log.count("exited with status") == 1 and "failed" not in log, log  # only the worker we killed
    for pid in again:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_batches_run_once_whichever_worker_took_them(daemon, home):
    """Every worker executes batches (claiming items under a lease); one created through any worker is run, each
    item exactly once."""
    _, port, _ = daemon
    reqs = [{"custom_id": f"c{i}", "params": json.loads(BODY)} for i in range(6)]
    ids = []
    for _ in range(3):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/messages/batches",
                                     data=json.dumps({"requests": reqs}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            ids.append(json.loads(r.read())["id"])
    for bid in ids:
        done = wait_until(lambda bid=bid: (b := json.loads(get(port, f"/v1/messages/batches/{bid}")))[
            "processing_status"] == "ended" and b)
        assert done["request_counts"]["succeeded"] == 6
        lines = get(port, f"/v1/messages/batches/{bid}/results").decode().splitlines()
        assert sorted(json.loads(line)["custom_id"] for line in lines) == [f"c{i}" for i in range(6)]


async def test_a_dashboard_feed_shows_every_workers_requests(daemon, home):
    """Whichever worker serves the browser's feed, requests served by the other worker show in it too."""
    import asyncio

    import aiohttp

    from tests.test_ui_api import open_feed

    _, port, _ = daemon
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as feed_session:
        feed = await open_feed(feed_session, url)
        await asyncio.sleep(1.5)  # the feed's worker tells the other one it wants events (once a second)
        log = home / "logs" / "requests.jsonl"
        sent: set[str] = set()
        for _ in range(60):  # new connections until both workers have served some (bounded)
            async with aiohttp.ClientSession() as s, s.post(url + "/v1/messages", data=BODY,
                                                           headers={"content-type": "application/json"}) as r:
                assert r.status == 200
                sent.add(r.headers["request-id"])
            workers = {json.loads(line).get("worker") for line in log.read_text().splitlines()} if log.exists() else set()
            if len(sent) >= 6 and workers >= {1, 2}:
                break
        assert workers >= {1, 2}, "the kernel gave every connection to one worker"
        got: set[str] = set()
        while not sent <= got:
            kind, data = await feed.next(timeout=5)
            if kind == "end":
                got.add(data["request_id"])
        feed.resp.close()


def test_bad_workers_value_is_one_clear_line(home):
    r = subprocess.run([sys.executable, "-m", "llmproxy", "serve", "--workers", "zero"], capture_output=True,
                       text=True, env={**os.environ, "LLMPROXY_HOME": str(home)}, timeout=30)
    assert r.returncode == 2 and "--workers" in r.stderr and r.stderr.count("error:") == 1
