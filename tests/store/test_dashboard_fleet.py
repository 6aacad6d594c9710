"""The dashboard's fleet totals (issue 26): ``GET /api/stats`` carries ``fleet``, the usage ledger's totals over
the same range, read from the store every instance writes to. Two apps on one store (one PostgreSQL
database; one SQLite file), requests through each: the stats answer of one shows both instances' requests.
Many dashboards asking at once cost the store one read; a store that does not answer leaves the block out
with a note, and the page is still answered."""

from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import pytest

from llmproxy import paths
from llmproxy.server.dashboard import ui_api
from llmproxy.settings import DATABASE_URL_ENV, StoreConfig
from llmproxy.store import open_store
from tests.conftest import wait_log
from tests.test_ui_browser import browser, expect  # noqa: F401 - browser is a fixture

AUTH = {"x-api-key": "client-key"}


async def ask(url: str, n: int) -> None:
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
        for _ in range(n):
            await c.messages.create(model="claude-sonnet-4-5", max_tokens=20,
                                    messages=[{"role": "user", "content": "hello"}])


async def stats(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url + "/api/stats?since=1h", headers=AUTH) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def ledger_holds(settings: StoreConfig, requests: int, instances: int) -> None:
    """Wait until both instances flushed their ledger and beat their heartbeat (read as another reader)."""
    reader = open_store(paths.home(), settings)
    try:
        for _ in range(400):
            rows, seen = await reader.usage("2000"), await reader.instances()
            if sum(r.requests for r in rows) >= requests and len(seen) >= instances:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the ledger did not reach {requests} requests from {instances} instances")
    finally:
        await reader.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_stats_answer_of_one_instance_totals_the_fleet(proxy_factory, backend, request, monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    pg_url = request.getfixturevalue("pg_url") if backend == "postgres" else ""
    settings = StoreConfig(url=pg_url)
    table = ("[store]\n" + (f'url = "{pg_url}"\n' if pg_url else "")
             + "heartbeat_seconds = 0.1\nledger_flush_seconds = 0.1\n")
    (url1, one), (url2, _two) = [await proxy_factory(table, simulate=True) for _ in range(2)]
    await ask(url1, 2)
    await ask(url2, 3)
    await ledger_holds(settings, 5, 2)
    async with aiohttp.ClientSession() as http:
        # twenty dashboards at once: one read of the store for them all
        answers = await asyncio.gather(*(stats(http, url1) for _ in range(20)))
    fleet = answers[0]["fleet"]
    assert all(a["fleet"] == fleet for a in answers)
    assert fleet["requests"] == 5 and fleet["errors"] == 0  # 2 through this instance, 3 through the other
    assert fleet["instances"] == 2 and fleet["store"] == ("postgres" if pg_url else "sqlite")
    assert fleet["tokens_out"] > 0 and fleet["tokens_in"] > 0 and fleet["cost"] >= 0
    assert fleet["from_minute"] == ui_api.minute_of(answers[0]["since"]) and "fleet_note" not in answers[0]
    assert ui_api._FLEET_TOTALS[one.fleet].reads == 1


async def test_a_store_that_does_not_answer_leaves_the_block_out_with_a_note(proxy_factory, pg_cluster,
                                                                             monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    db = pg_cluster.new_database()
    url, state = await proxy_factory(f'[store]\nurl = "{pg_cluster.url(db)}"\nheartbeat_seconds = 0.1\n',
                                     simulate=True)
    await ask(url, 1)
    await wait_log(paths.home(), 1)
    # the database goes away under the running app: its connections cut, new ones refused
    pg_cluster.psql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
    pg_cluster.psql(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}'")
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(*(stats(http, url) for _ in range(5)))
    for data in answers:
        assert "fleet" not in data and "did not answer" in data["fleet_note"]
        assert pg_cluster.password not in str(data) and data["records"]  # this instance's own records are there
    assert ui_api._FLEET_TOTALS[state.fleet].reads == 1  # the failure is cached too: the store is not hammered


@pytest.mark.browser
async def test_the_dashboard_shows_the_fleet_line(proxy_factory, pg_url, browser, monkeypatch):  # noqa: F811
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    table = f'[store]\nurl = "{pg_url}"\nheartbeat_seconds = 0.1\nledger_flush_seconds = 0.1\n'
    (url1, _one), (url2, _two) = [await proxy_factory(table, simulate=True) for _ in range(2)]
    await ask(url1, 1)
    await ask(url2, 2)
    await ledger_holds(StoreConfig(url=pg_url), 3, 2)
    page = await browser(url1 + "/ui")
    line = page.locator("#fleet-line")
    await expect(line).to_be_visible()
    text = await line.inner_text()
    assert "Fleet" in text and "postgres store" in text and "2 live instances" in text, text
    assert await line.locator(".cell", has_text="requests").locator("b").inner_text() == "3"
    assert await line.locator("script, img").count() == 0
