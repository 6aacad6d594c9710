"""The store's side of budgets and fleet-wide limits (issue 27), one suite on both backends (SQLite under a
temp home, PostgreSQL in the throwaway cluster): the ledger's key dimension and a key's spend over a range
of minutes; the per-key window counters summed across several store connections (instances) adding at once;
migration 0010 keeps the ledger's rows (under no key)."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest

from llmproxy.store import Usage, open_store, pg_schema, schema


@pytest.fixture
async def stores(store_settings):
    """Three stores on one database: three instances' connections."""
    opened = [open_store(*store_settings) for _ in range(3)]
    yield opened
    for s in opened:
        await s.close()


def row(minute: str, key_id: str, cost: float, n: int = 1) -> Usage:
    return Usage(minute, "p", "default", "anthropic", "claude", key_id, requests=n, cost_usd=cost)


async def test_key_spend_sums_a_key_over_a_range_of_minutes(stores):
    one, two, _ = stores
    await one.add_usage([row("2026-12-05T10:00Z", "key_a", 1.0), row("2026-12-05T10:00Z", "key_b", 5.0),
                         row("2026-12-05T10:01Z", "key_a", 0.25), row("2026-12-05T10:00Z", "", 7.0)])
    await two.add_usage([row("2026-12-05T10:00Z", "key_a", 2.0), row("2026-12-05T10:02Z", "key_a", 4.0)])
    assert await one.key_spend("key_a", "2026-12-05T10:00Z", "2026-12-05T10:02Z") == pytest.approx(3.25)
    assert await two.key_spend("key_a", "2026-12-05T10:01Z", "2026-12-06T00:00Z") == pytest.approx(4.25)
    assert await two.key_spend("key_b", "2026-12-05T00:00Z", "2026-12-06T00:00Z") == pytest.approx(5.0)
    assert await one.key_spend("key_c", "2026-12-05T00:00Z", "2026-12-06T00:00Z") == 0
    rows = await one.usage("2026-12-05T10:00Z")
    same = [r for r in rows if (r.minute, r.key_id) == ("2026-12-05T10:00Z", "key_a")]
    assert len(same) == 1 and same[0].requests == 2  # two instances' adds in one row per key


async def test_window_counters_sum_every_instance(stores):
    """Three instances adding to the same key's window at once, many times: every delta counted once."""
    async def instance(s, k: int) -> None:
        for _ in range(20):
            await s.sync_key_windows([("key_a", 100, 1, 10 * k, 0.5), ("key_b", 100, 2, 0, 0.0)], ["key_a"], 99)

    await asyncio.gather(*(instance(s, k) for k, s in enumerate(stores, start=1)))
    got = await stores[0].sync_key_windows([], ["key_a", "key_b", "key_c"], 99)
    assert sorted(got) == [("key_a", 100, 60, 1200, pytest.approx(30.0)), ("key_b", 100, 120, 0, 0.0)]
    back = await stores[1].sync_key_windows([("key_a", 101, 1, 0, 0.0)], ["key_a"], 100)
    assert sorted(back) == [("key_a", 100, 60, 1200, pytest.approx(30.0)), ("key_a", 101, 1, 0, 0.0)]
    await stores[2].sync_key_windows([("key_a", 105, 1, 0, 0.0)], [], 105)  # windows before 103 removed
    assert sorted(await stores[0].sync_key_windows([], ["key_a"], 0)) == [("key_a", 105, 1, 0, 0.0)]


async def test_claims_never_grant_past_the_cap(stores):
    """Three instances claiming a key's requests at once, many times: the grants add up to the cap exactly,
    and the window's count is what was granted."""
    grants = []

    async def instance(s) -> None:
        for _ in range(15):
            got = await s.claim_key_requests([("key_a", 100, 3, 40), ("key_b", 100, 1, 1000)])
            grants.extend(got)

    await asyncio.gather(*(instance(s) for s in stores))
    assert sum(n for k, _, n in grants if k == "key_a") == 40
    assert sum(n for k, _, n in grants if k == "key_b") == 45
    assert all(0 <= n <= 3 for _, _, n in grants)
    rows = sorted(await stores[0].sync_key_windows([], ["key_a", "key_b"], 100))
    assert [(k, r) for k, _, r, _, _ in rows] == [("key_a", 40), ("key_b", 45)]
    assert await stores[1].claim_key_requests([("key_a", 100, 5, 45)]) == [("key_a", 100, 5)]  # a higher cap


async def test_migration_0010_keeps_the_ledger(store_settings):
    """A store made before migration 0010 with ledger rows: after it, the rows are there under no key."""
    home, cfg = store_settings
    old = [m for m in (pg_schema.MIGRATIONS if cfg.url else schema.MIGRATIONS) if m[0] < "0010"]
    values = ("2026-12-05T10:00Z", "p", "default", "anthropic", "claude", 3, 0, 1, 2, 0, 0, 1.5, 0)
    cols = "minute, profile, scenario, provider, model, requests, errors, input_tokens, output_tokens, " \
           "cache_read_tokens, cache_write_tokens, cost_usd, cost_unknown"
    if cfg.url:
        conn = await asyncpg.connect(cfg.url)
        await conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for name, sql in old:
            for stmt in pg_schema.statements(sql):
                await conn.execute(stmt)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, 'then')", name)
        await conn.execute(f"INSERT INTO usage_ledger ({cols}) VALUES ({', '.join(f'${i}' for i in range(1, 14))})",
                           *values)
        await conn.close()
    else:
        home.mkdir(exist_ok=True)
        conn = sqlite3.connect(home / "llmproxy.db")
        conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for name, sql in old:
            for stmt in filter(str.strip, sql.split(";")):
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (name,))
        conn.execute(f"INSERT INTO usage_ledger ({cols}) VALUES ({', '.join('?' * 13)})", values)
        conn.commit()
        conn.close()
    store = open_store(home, cfg)
    try:
        await store.add_usage([row("2026-12-05T10:00Z", "key_a", 2.0)])
        rows = sorted(await store.usage("2026-12-05T00:00Z"), key=lambda r: r.key_id)
        assert [(r.key_id, r.requests, r.input_tokens, r.cost_usd) for r in rows] == [("", 3, 1, 1.5),
                                                                                      ("key_a", 1, 0, 2.0)]
        assert await store.key_spend("key_a", "2026-12-05T00:00Z", "2026-12-06T00:00Z") == 2.0
    finally:
        await store.close()
