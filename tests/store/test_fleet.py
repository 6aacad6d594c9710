"""Instances know each other and share a usage ledger (issue 26), on both backends: the registry's heartbeat
rows (written again, forgotten), the ledger's upsert that sums (also from several stores at once, in any
order, without deadlock), the in-memory ledger's labels, bound and drop count (pure logic, table-driven),
and the app end to end: its heartbeat and its requests' aggregates land in the store in the background,
``/health`` reports the store, ``llmproxy status --fleet`` and ``stats --fleet`` read them."""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp
import anthropic
import pytest
from typer.testing import CliRunner

from llmproxy import __version__, paths
from llmproxy.cli.app import app as cli
from llmproxy.config import Config
from llmproxy.obs.ledger import Ledger, key_of
from llmproxy.settings import DATABASE_URL_ENV, StoreConfig
from llmproxy.store import Instance, Usage, open_store


def inst(i: int, circuits: dict | None = None) -> Instance:
    return Instance(id=f"host-{i}", host="host", port=4000 + i, version="1.0", pid=100 + i,
                    started_at="2026-12-05T10:00:00.000Z", circuits=circuits or {})


async def test_heartbeats_register_refresh_and_forget(store):
    await store.heartbeat(inst(1))
    await store.heartbeat(inst(2))
    await store.heartbeat(inst(1, {"anthropic/claude": {"state": "open"}}))  # refreshed, not duplicated
    got = await store.instances()
    assert [i.id for i in got] == ["host-1", "host-2"]  # most recently seen first
    assert got[0].circuits == {"anthropic/claude": {"state": "open"}} and got[0].port == 4001
    assert all(0 <= i.seen_ago_s < 60 for i in got)
    await store.forget_instance("host-1")
    assert [i.id for i in await store.instances()] == ["host-2"]


async def test_a_heartbeat_forgets_instances_silent_for_a_day(store):
    await store.heartbeat(inst(1))
    await store.heartbeat(inst(2))
    if store.kind == "postgres":  # host-2 was killed two days ago (and host-1 is silent for an hour)
        db = await store._db()
        await db.execute("UPDATE instances SET last_seen = clock_timestamp() - interval '2 days' WHERE id = 'host-2'")
        await db.execute("UPDATE instances SET last_seen = clock_timestamp() - interval '1 hour' WHERE id = 'host-1'")
    else:
        await store._run(lambda c: c.execute("UPDATE instances SET last_seen = last_seen - 172800 WHERE id = 'host-2'"))
        await store._run(lambda c: c.execute("UPDATE instances SET last_seen = last_seen - 3600 WHERE id = 'host-1'"))
    await store.heartbeat(inst(3))
    got = {i.id: i.seen_ago_s for i in await store.instances()}
    assert set(got) == {"host-1", "host-3"} and 3500 < got["host-1"] < 3700


def usage(minute: str, profile: str = "p", n: int = 1, cost: float = 0.5) -> Usage:
    return Usage(minute, profile, "default", "anthropic", "claude", requests=n, errors=1, input_tokens=10 * n,
                 output_tokens=2 * n, cache_read_tokens=3, cache_write_tokens=4, cost_usd=cost, cost_unknown=0)


async def test_usage_upserts_sum_and_read_from_a_minute(store):
    await store.add_usage([usage("2026-12-05T10:01Z"), usage("2026-12-05T10:00Z", "q")])
    await store.add_usage([usage("2026-12-05T10:01Z", n=2, cost=0.25)])
    rows = await store.usage("2026-12-05T10:00Z")
    assert [(r.minute, r.profile) for r in rows] == [("2026-12-05T10:00Z", "q"), ("2026-12-05T10:01Z", "p")]
    summed = rows[1]
    assert (summed.requests, summed.errors, summed.input_tokens, summed.output_tokens) == (3, 2, 30, 6)
    assert (summed.cache_read_tokens, summed.cache_write_tokens, summed.cost_usd) == (6, 8, 0.75)
    assert [r.minute for r in await store.usage("2026-12-05T10:01Z")] == ["2026-12-05T10:01Z"]


async def test_concurrent_ledger_writers_lose_nothing(store_settings):
    """Four stores (four instances on PostgreSQL, four connections on one SQLite file) add to the same 30
    keys at once, each in its own order, 10 times: every count arrives, no writer deadlocks."""
    stores = [open_store(*store_settings) for _ in range(4)]
    minutes = [f"2026-12-05T10:{m:02d}Z" for m in range(30)]

    async def writer(s, seed: int) -> None:
        for _ in range(10):
            rows = [usage(m) for m in minutes]
            random.Random(seed).shuffle(rows)
            await s.add_usage(rows)

    try:
        await asyncio.gather(*(writer(s, i) for i, s in enumerate(stores)))
        rows = await stores[0].usage("2026")
        assert len(rows) == 30 and {r.requests for r in rows} == {40}
    finally:
        for s in stores:
            await s.close()


# ------------------------------------------------------------------------------------------ the ledger

@pytest.fixture
async def runtime_cfg(proxy_factory) -> Config:
    """The test configuration as the app compiled it (profile ``test``, provider ``anthropic``)."""
    _, state = await proxy_factory()
    return state.runtime.cfg


REC = {"time": "2026-12-05T10:37:12.345+00:00", "endpoint": "messages", "profile": "test",
       "decision": {"scenario": "default"}, "target": "anthropic/claude-sonnet-4-5", "status": 200,
       "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 5,
                 "cache_creation_input_tokens": 7}, "cost_usd": 0.01}


@pytest.mark.parametrize("change, key", [
    ({}, ("2026-12-05T10:37Z", "test", "default", "anthropic", "claude-sonnet-4-5", "")),
    ({"profile": "made-up"}, ("2026-12-05T10:37Z", "unknown", "default", "anthropic", "claude-sonnet-4-5", "")),
    ({"target": "evil/x"}, ("2026-12-05T10:37Z", "test", "default", "none", "other", "")),
    ({"target": "anthropic/not-in-catalog"}, ("2026-12-05T10:37Z", "test", "default", "anthropic", "other", "")),
    ({"target": None, "decision": None}, ("2026-12-05T10:37Z", "test", "none", "none", "none", "")),
    ({"key": {"id": "key_1", "name": "alice"}},
     ("2026-12-05T10:37Z", "test", "default", "anthropic", "claude-sonnet-4-5", "key_1")),
    ({"endpoint": "count_tokens"}, None),
    ({"time": None}, None),
])
async def test_ledger_keys_are_bounded_by_the_config(runtime_cfg, change, key):
    assert key_of({**REC, **change}, runtime_cfg) == key


async def test_ledger_aggregates_and_counts_what_it_drops(runtime_cfg):
    dropped = []
    led = Ledger(lambda: runtime_cfg, max_keys=2, on_drop=dropped.append)
    led.add(REC)
    led.add({**REC, "status": 529, "cost_usd": None, "usage": {}})
    led.add({**REC, "time": "2026-12-05T10:38:00+00:00"})
    led.add({**REC, "time": "2026-12-05T10:39:00+00:00"})  # a third key: over the bound
    assert led.dropped == 1 and dropped == [1]
    rows = {r.minute: r for r in led.take()}
    first = rows["2026-12-05T10:37Z"]
    assert (first.requests, first.errors, first.input_tokens, first.output_tokens) == (2, 1, 100, 20)
    assert (first.cache_read_tokens, first.cache_write_tokens, first.cost_usd, first.cost_unknown) == (5, 7, 0.01, 1)
    assert led.buffered() == 0
    led.add({**REC, "time": "2026-12-05T10:40:00+00:00"})
    led.give_back(list(rows.values()))  # a failed write: merged back to the bound, the rest counted
    assert led.buffered() == 2 and led.dropped == 1 + 1


# ------------------------------------------------------------------------------------------ the app

async def test_the_app_registers_itself_and_fills_the_ledger(proxy_factory, store_settings, monkeypatch):
    _, settings = store_settings
    table = f'url = "{settings.url}"\n' if settings.url else ""
    url, state = await proxy_factory("[store]\n" + table + "heartbeat_seconds = 0.1\nledger_flush_seconds = 0.1\n",
                                     simulate=True)
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
        for _ in range(3):
            await c.messages.create(model="claude-sonnet-4-5", max_tokens=20,
                                    messages=[{"role": "user", "content": "hello"}])
    async with aiohttp.ClientSession() as http, http.get(url + "/health", headers={"x-api-key": "client-key"}) as r:
        store_health = (await r.json())["store"]
    assert store_health["kind"] == ("postgres" if settings.url else "sqlite")
    reader = open_store(paths.home(), settings)  # the app's store, as any other instance or the CLI sees it
    try:
        for _ in range(200):
            rows = await reader.usage("2000")
            if sum(r.requests for r in rows) >= 3:
                break
            await asyncio.sleep(0.05)
        assert sum(r.requests for r in rows) == 3 and sum(r.output_tokens for r in rows) > 0
        assert {r.profile for r in rows} == {"test"}
        assert [i.pid for i in await reader.instances()] == [state.fleet.instance.pid]
    finally:
        await reader.close()
    # the CLI reads the same store (the configuration names it), in a thread: it runs its own event loop
    status = await asyncio.to_thread(CliRunner().invoke, cli, ["status", "--fleet", "--json"])
    assert status.exit_code == 0, status.output
    [me] = json.loads(status.stdout)["instances"]
    assert me["live"] and me["id"] == state.fleet.instance.id and me["version"] == __version__
    stats = await asyncio.to_thread(CliRunner().invoke, cli, ["stats", "--fleet", "--json"])
    assert stats.exit_code == 0, stats.output
    data = json.loads(stats.stdout)
    assert data["total"]["requests"] == 3 and list(data["by_profile"]) == ["test"]
    human = await asyncio.to_thread(CliRunner().invoke, cli, ["status", "--fleet"])
    assert human.exit_code == 0 and "1 live of 1 registered" in human.stdout
    human = await asyncio.to_thread(CliRunner().invoke, cli, ["stats", "--fleet", "--since", "1h"])
    assert human.exit_code == 0 and "fleet usage" in human.stdout and "test" in human.stdout


async def test_two_instances_on_one_database_see_each_other_and_sum_their_usage(proxy_factory, pg_url,
                                                                                 monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    table = f'[store]\nurl = "{pg_url}"\nheartbeat_seconds = 0.1\nledger_flush_seconds = 0.1\n'
    (url1, one), (url2, two) = [await proxy_factory(table, simulate=True) for _ in range(2)]
    for url, n in ((url1, 2), (url2, 3)):
        async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
            for _ in range(n):
                await c.messages.create(model="claude-sonnet-4-5", max_tokens=20,
                                        messages=[{"role": "user", "content": "hello"}])
    reader = open_store(paths.home(), StoreConfig(url=pg_url))
    try:
        for _ in range(200):
            rows, seen = await reader.usage("2000"), await reader.instances()
            if sum(r.requests for r in rows) >= 5 and len(seen) == 2:
                break
            await asyncio.sleep(0.05)
        assert {i.id for i in seen} == {one.fleet.instance.id, two.fleet.instance.id}
        assert sum(r.requests for r in rows) == 5  # both instances' requests, added into the same rows
        assert len(rows) == len({r.key() for r in rows})
    finally:
        await reader.close()
