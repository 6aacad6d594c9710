"""The live path does not depend on the database (issue 26): the app runs on a PostgreSQL store, the test
cluster's server is stopped (``pg_ctl stop -m immediate``) mid-test and started again. Meanwhile
``/v1/messages`` and ``/v1/chat/completions`` keep answering, the file and batch endpoints answer 503 in the
API's error shape naming the store (never its password), ``/health`` says the store is not ok, and a batch
that was running pauses and, once the server is back, ends with exactly one result per item."""

from __future__ import annotations

import asyncio
import os
import subprocess

import aiohttp
import anthropic
import openai
import pytest

from llmproxy.settings import DATABASE_URL_ENV

AUTH = {"x-api-key": "client-key"}


def pg_ctl(cluster, *args: str) -> None:
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    out = subprocess.run(as_user + [str(cluster.bindir / "pg_ctl"), "-D", str(cluster.root / "data"), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def stop_server(cluster) -> None:
    """A crash stop. The test cluster commits asynchronously (synchronous_commit=off), so what was committed
    is written out first: a crash must not undo the batch the test created."""
    cluster.psql("CHECKPOINT")
    pg_ctl(cluster, "-m", "immediate", "-w", "stop")


def start_server(cluster) -> None:
    opts = (f"-p {cluster.port} -k {cluster.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    pg_ctl(cluster, "-l", str(cluster.root / "server.log"), "-o", opts, "-w", "-t", "60", "start")


async def health(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url + "/health", headers=AUTH) as r:
        return await r.json()


async def until(predicate, timeout: float = 30.0, every: float = 0.05):
    for _ in range(int(timeout / every)):
        if value := await predicate():
            return value
        await asyncio.sleep(every)
    raise AssertionError("condition not reached")


async def live_requests(url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
        msg = await c.messages.create(model="claude-sonnet-4-5", max_tokens=20,
                                      messages=[{"role": "user", "content": "hello"}])
        assert msg.content
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="client-key", max_retries=0) as c:
        chat = await c.chat.completions.create(model="claude-sonnet-4-5", max_tokens=20,
                                               messages=[{"role": "user", "content": "hello"}])
        assert chat.choices[0].message.content


async def test_live_path_serves_files_answer_503_and_a_batch_resumes(proxy_factory, pg_cluster, pg_url,
                                                                      monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    url, _ = await proxy_factory(f'[server]\nsimulator_speed = 1\n[store]\nurl = "{pg_url}"\n'
                                 "heartbeat_seconds = 0.1\nledger_flush_seconds = 0.1\n"
                                 "[batches]\nconcurrency = 2\n", simulate=True)
    reqs = [{"custom_id": f"r-{i}", "params": {"model": "claude-sonnet-4-5", "max_tokens": 30,
                                               "messages": [{"role": "user", "content": f"item {i}"}]}}
            for i in range(40)]
    async with aiohttp.ClientSession() as http:
        await until(lambda: _store_ok(http, url, True))
        async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
            batch = await c.messages.batches.create(requests=reqs)
        stop_server(pg_cluster)
        try:
            await live_requests(url)
            async with http.get(url + "/v1/files", headers=AUTH) as r:
                body = await r.json()
                assert r.status == 503, body
                assert body["type"] == "error" and body["error"]["type"] == "api_error"
                assert "store" in body["error"]["message"] and "127.0.0.1" in body["error"]["message"]
                assert pg_cluster.password not in await r.text()
            async with http.get(f"{url}/v1/messages/batches/{batch.id}", headers=AUTH) as r:
                assert r.status == 503 and (await r.json())["error"]["type"] == "api_error"
            with pytest.raises(anthropic.APIStatusError) as err:
                async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
                    await c.files.upload(file=("a.txt", b"hello", "text/plain"))
            assert err.value.status_code == 503
            down = await until(lambda: _store_ok(http, url, False))
            assert down["kind"] == "postgres" and pg_cluster.password not in str(down)
            await live_requests(url)  # still serving, with the store known to be down
        finally:
            start_server(pg_cluster)
        back = await until(lambda: _store_ok(http, url, True))
        assert back["lag_s"] is not None and back["lag_s"] < 30
        async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
            async def ended():
                b = await c.messages.batches.retrieve(batch.id)
                return b if b.processing_status == "ended" else None

            done = await until(ended, timeout=60)
            assert done.request_counts.succeeded == len(reqs), done.request_counts
            results = [r.custom_id async for r in await c.messages.batches.results(batch.id)]
            assert sorted(results) == sorted(r["custom_id"] for r in reqs)  # each once: none lost, none twice
            assert (await c.files.list()).data == []  # the file endpoints answer again


async def _store_ok(http: aiohttp.ClientSession, url: str, ok: bool) -> dict | None:
    store = (await health(http, url)).get("store") or {}
    return store if store.get("ok") is ok else None
