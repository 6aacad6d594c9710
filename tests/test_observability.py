"""The request log, metrics, logs and stats through the real server and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmproxy.cli.logs import compute, pct
from llmproxy.obs.log import RequestLog, RotatingWriter
from tests.conftest import UPSTREAM_KEY, free_port, wait_log
from tests.helpers import REPO, cli

MSG = {"model": "claude-opus-4-8", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


async def test_log_records_stream_nonstream_and_fallback(proxy, fake_anthropic, home):
    url, _ = proxy
    headers = {"x-claude-code-session-id": "sess-1", "x-claude-code-agent-id": "agent-9", "user-agent": "claude-cli/2.1"}
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json=MSG, headers=headers) as r:
            await r.read()
        async with s.post(url + "/v1/messages", json={**MSG, "stream": True}) as r:
            await r.read()
        fake_anthropic.script.append({"status": 529, "error_type": "overloaded_error", "message": "Overloaded"})
        async with s.post(url + "/v1/messages", json=MSG) as r:
            await r.read()
    recs = await wait_log(home, 3)
    plain, streamed, fell_back = recs[-3:]
    for rec in recs[-3:]:
        for key in ("time", "request_id", "client", "endpoint", "profile", "decision", "target", "status", "stream",
                    "duration_ms", "usage", "cost_usd", "stop_reason", "bytes_in", "bytes_out", "attempts"):
            assert key in rec, key
    assert plain["client"] == {"address": "127.0.0.1", "user_agent": "claude-cli/2.1", "session_id": "sess-1",
                               "agent_id": "agent-9"}
    assert plain["decision"]["scenario"] == "subagent"  # the agent id header marks a subagent
    assert plain["usage"] == {"input_tokens": 11, "output_tokens": 7, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 3}
    # sonnet: 11 in x $3 + 7 out x $15 + 3 cache-read x $0.30 per Mtok
    assert plain["cost_usd"] == pytest.approx((11 * 3 + 7 * 15 + 3 * 0.3) / 1e6)
    assert streamed["stream"] is True and streamed["usage"]["output_tokens"] == 7 and streamed["ttft_ms"] > 0
    assert streamed["stop_reason"] == "end_turn" and streamed["bytes_out"] > 500
    assert fell_back["target"] == "backup/claude-sonnet-4-5"
    assert fell_back["attempts"] == [{"target": "anthropic/claude-sonnet-4-5", "status": 529,
                                      "error": "anthropic: Overloaded", "ms": fell_back["attempts"][0]["ms"]}]
    assert fell_back["cost_usd"] is None  # the backup's catalog entry has no prices: unknown, not zero


async def test_bodies_recorded_and_truncated(proxy_factory, fake_anthropic, home):
    url, _ = await proxy_factory("[log]\nbodies = true\nbody_max_bytes = 400\n")
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json={**MSG, "stream": True}) as r:
            await r.read()
        async with s.post(url + "/v1/messages", json={**MSG, "system": "x" * 2000}) as r:
            await r.read()
    small, big = (await wait_log(home, 2))[-2:]
    assert small["response_body"]["content"] == [{"type": "text", "text": "Hello from the fake upstream."}]
    assert small["request_body"]["messages"] == MSG["messages"]
    assert big["request_body"]["_truncated"] is True and big["request_body"]["bytes"] > 2000
    assert len(big["request_body"]["head"]) <= 400


async def test_secrets_never_reach_log_or_errors(proxy_factory, fake_openai, home):
    url, _ = await proxy_factory("[log]\nbodies = true\n")
    fake_openai.script.append({"status": 401, "message": "Incorrect API key provided: sk-fakeoai-secret-13579"})
    fake_openai.script.append({"status": 401, "message": "Incorrect API key provided: sk-fakeoai-secret-13579"})
    body = {**MSG, "messages": [{"role": "user", "content": "my key is sk-proj-CLIENTSECRET99 and "
                                                            "https://x.io/a?key=URLSECRET42"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/oai/v1/messages", json=body,
                          headers={"x-api-key": "sk-ant-clientkey-777777777", "authorization": "Bearer tok-abcdef123"}) as r:
            text = await r.text()
    assert "sk-fakeoai-secret-13579" not in text
    await wait_log(home, 1)
    log = (home / "logs" / "requests.jsonl").read_text()
    for secret in ("sk-fakeoai-secret-13579", "CLIENTSECRET99", "URLSECRET42", "sk-ant-clientkey-777777777",
                   "tok-abcdef123", UPSTREAM_KEY):
        assert secret not in log, secret
    assert "[REDACTED]" in log


def test_vv_console_output_is_redacted(home):
    port = free_port()
    env = {**os.environ, "LLMPROXY_HOME": str(home), "COLUMNS": "200", "ANTHROPIC_API_KEY": "sk-ant-daemonkey-55555555"}
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--simulate", "-vv", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    try:
        for _ in range(200):
            if cli("status", home=home).returncode == 0:
                break
            time.sleep(0.05)
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{port}/p/fast/v1/messages", data=json.dumps(
            {**MSG, "messages": [{"role": "user", "content": "token sk-ant-api03-LEAKME123456 and ?api_key=QWERTY99"}]}
        ).encode(), headers={"content-type": "application/json", "x-api-key": "sk-ant-headerkey-424242"})
        urllib.request.urlopen(req, timeout=10).read()
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=15)[0].decode()
    assert "request_body" in out and "response_body" in out  # -vv shows bodies
    for secret in ("LEAKME123456", "QWERTY99", "sk-ant-headerkey-424242", "sk-ant-daemonkey-55555555"):
        assert secret not in out, secret


async def test_rotation_under_concurrent_writes_loses_nothing(tmp_path):
    path = tmp_path / "requests.jsonl"
    log = RequestLog(path, max_bytes=4000, keep=1000)
    log.start()

    async def writer(k: int) -> None:
        for i in range(25):
            log.record({"request_id": f"req_{k}_{i}", "payload": "x" * (i * 7)})
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(k) for k in range(40)))
    await log.close()
    files = sorted(tmp_path.glob("requests.jsonl*"))
    assert len(files) > 5  # it really rotated
    ids = []
    for f in files:
        for line in f.read_text().splitlines():
            ids.append(json.loads(line)["request_id"])  # every line is whole JSON
    assert sorted(ids) == sorted(f"req_{k}_{i}" for k in range(40) for i in range(25))


def test_logs_follow_survives_rotation(home):
    logdir = home / "logs"
    logdir.mkdir()
    path = logdir / "requests.jsonl"
    w = RotatingWriter(path, max_bytes=10_000_000, keep=3)

    def rec(i: int) -> bytes:
        return json.dumps({"request_id": f"req_{i}", "time": "2026-11-26T10:00:00+00:00", "status": 200,
                           "profile": "fast"}).encode() + b"\n"

    w.write_lines([rec(0)])
    env = {**os.environ, "LLMPROXY_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "logs", "-f", "--json", "-n", "5"],
                            stdout=subprocess.PIPE, env=env, cwd=REPO, bufsize=0)  # unbuffered: select() tells the truth

    def next_id() -> str:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "logs -f printed nothing for 10 s"
        return json.loads(proc.stdout.readline())["request_id"]

    try:
        seen = [next_id()]
        time.sleep(0.5)
        w.write_lines([rec(1), rec(2)])
        w.rotate()
        w.write_lines([rec(3)])
        w.rotate()
        w.write_lines([rec(4), rec(5)])
        while len(seen) < 6:
            seen.append(next_id())
    finally:
        proc.terminate()
        proc.wait(5)
        w.close()
    assert seen == [f"req_{i}" for i in range(6)]


async def test_metrics_after_known_traffic(proxy, fake_anthropic):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.post(url + "/p/fast/v1/messages", json=MSG) as r:
                await r.read()
        fake_anthropic.script.append({"status": 500})
        async with s.post(url + "/v1/messages", json=MSG) as r:
            await r.read()
        async with s.post(url + "/p/nope/v1/messages", json=MSG) as r:
            await r.read()
        async with s.get(url + "/metrics") as r:
            text = await r.text()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    reqs = {tuple(sorted(s.labels.items())): s.value for s in fams["llmproxy_requests"].samples
            if s.name == "llmproxy_requests_total"}
    fast = dict(endpoint="messages", profile="fast", scenario="default", provider="anthropic",
                model="claude-sonnet-4-5", status="200")
    assert reqs[tuple(sorted(fast.items()))] == 2
    assert any(dict(k)["status"] == "400" and dict(k)["profile"] == "unknown" for k in reqs)
    fb = [s for s in fams["llmproxy_fallbacks"].samples if s.name == "llmproxy_fallbacks_total"]
    assert fb and fb[0].labels == {"provider": "anthropic", "reason": "5xx"} and fb[0].value == 1
    out_tokens = [s for s in fams["llmproxy_tokens"].samples
                  if s.name == "llmproxy_tokens_total" and s.labels["direction"] == "output"]
    assert sum(s.value for s in out_tokens) == 21
    assert any(s.name == "llmproxy_request_duration_seconds_count" for s in fams["llmproxy_request_duration_seconds"].samples)
    for fam in fams.values():  # bounded labels: no request ids or free text
        for s in fam.samples:
            assert not any(v.startswith("req_") for v in s.labels.values())


FIXTURE = [
    {"request_id": "r1", "time": "2026-11-26T10:00:00+00:00", "endpoint": "messages", "profile": "fast",
     "target": "anthropic/claude-sonnet-4-5", "status": 200, "duration_ms": 100, "ttft_ms": 40,
     "usage": {"input_tokens": 10, "output_tokens": 5}, "cost_usd": 0.001, "decision": {"scenario": "default"}},
    {"request_id": "r2", "time": "2026-11-26T10:00:01+00:00", "endpoint": "messages", "profile": "fast",
     "target": "anthropic/claude-sonnet-4-5", "status": 200, "duration_ms": 300, "ttft_ms": 60,
     "usage": {"input_tokens": 20, "output_tokens": 5, "cache_read_input_tokens": 100}, "cost_usd": 0.002,
     "decision": {"scenario": "background"}},
    {"request_id": "r3", "time": "2026-11-26T10:00:02+00:00", "endpoint": "messages", "profile": "fast",
     "target": "backup/x", "status": 529, "duration_ms": 50, "cost_usd": None, "decision": {"scenario": "default"}},
    {"request_id": "r4", "time": "2026-11-26T10:00:03+00:00", "endpoint": "messages", "profile": "cheap",
     "target": "ollama/q", "status": 200, "duration_ms": 1000, "stream_error": "boom",
     "usage": {"input_tokens": 1, "output_tokens": 1}, "cost_usd": 0.0, "decision": {"scenario": "default"}},
    {"request_id": "r5", "time": "2026-11-26T10:00:04+00:00", "endpoint": "count_tokens", "profile": "fast",
     "status": 200, "duration_ms": 5},
]


def test_stats_numbers_against_fixture(home):
    data = compute(FIXTURE)
    fast = data["by_profile"]["fast"]
    assert fast["requests"] == 3 and fast["errors"] == 1  # count_tokens is not a model request
    assert fast["p50_ms"] == 100 and fast["p95_ms"] == 300
    assert fast["p50_ttft_ms"] == 40 and fast["p95_ttft_ms"] == 60
    assert fast["input_tokens"] == 130 and fast["output_tokens"] == 10
    assert fast["cost_usd"] == pytest.approx(0.003) and fast["cost_unknown"] == 1
    assert fast["scenarios"] == {"default": pytest.approx(2 / 3, abs=1e-3), "background": pytest.approx(1 / 3, abs=1e-3)}
    assert data["by_profile"]["cheap"]["errors"] == 1  # a stream that broke counts as an error
    assert data["by_model"]["anthropic/claude-sonnet-4-5"]["requests"] == 2
    assert pct([1, 2, 3, 4], 50) == 2 and pct([], 50) is None
    (home / "logs").mkdir()
    (home / "logs" / "requests.jsonl").write_text("\n".join(json.dumps(r) for r in FIXTURE) + "\n")
    r = cli("stats", "--json", home=home)
    assert r.returncode == 0 and json.loads(r.stdout)["by_profile"]["fast"]["requests"] == 3
    r = cli("logs", "--status", "error", "--json", home=home)
    assert [json.loads(line)["request_id"] for line in r.stdout.splitlines()] == ["r3", "r4"]
    r = cli("logs", "--profile", "cheap", "--provider", "ollama", home=home, env={"COLUMNS": "200"})
    assert "cheap" in r.stdout and "fast" not in r.stdout
    assert cli("logs", "--since", "soon", home=home).returncode == 2
