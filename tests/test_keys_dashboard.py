"""The dashboard's per-key view (issue 27): ``GET /api/keys/usage`` through the real app on both stores — every
live key with its limits, its spend this budget period, what is left and when it resets; admins only; never a
secret or its keyed hash; one store read shared by concurrent dashboards — and the Keys panel in Debian's
Chromium (as tests/test_ui_browser.py) showing a key's spend against its budget after a request."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import aiohttp
import pytest

from llmproxy.server.request.keylimits import period_bounds
from llmproxy.store.keys import key_hash, load_server_secret
from tests.store.conftest import pg_cluster, pg_url  # noqa: F401 - the PostgreSQL fixtures, reused
from tests.test_keys import ADMIN, acreate, akeys, backend, get, hello, post, start  # noqa: F401 - backend: fixture
from tests.test_ui_browser import browser, expect  # noqa: F401 - browser is a fixture

USAGE = "/api/keys/usage"


async def usage(url: str) -> dict:
    status, text = await get(url, USAGE, ADMIN)
    assert status == 200, text
    return json.loads(text)


async def spent_after(url: str, name: str) -> dict:
    """The key's row once its spend shows (the answer is cached for a few seconds): bounded by a deadline."""
    deadline = time.monotonic() + 30
    while True:
        row = next(k for k in (await usage(url))["data"] if k["name"] == name)
        if row["spent_usd"]:
            return row
        assert time.monotonic() < deadline, f"the spend of {name!r} never showed: {row}"
        await asyncio.sleep(0.5)


async def test_usage_lists_live_keys_with_spend_budget_and_reset(backend, home, proxy_factory):  # noqa: F811
    url, _ = await start(proxy_factory)
    alice = await acreate("alice", "--profiles", "test", "--budget", "5/month", "--rpm", "60", "--tpm", "100000")
    await acreate("bob")
    await acreate("carol", "--expires", "2020-01-01")
    await acreate("gone")
    assert (await akeys("revoke", "gone"))[0] == 0
    assert (await post(url, "/v1/messages", alice, hello()))[0] == 200

    row = await spent_after(url, "alice")
    body = await usage(url)
    rows = {k["name"]: k for k in body["data"]}
    assert list(rows) == ["alice", "bob", "carol"]  # the revoked key is not listed; oldest first
    _, end = period_bounds("month", datetime.now(UTC))
    assert (row["profiles"], row["rpm"], row["tpm"], row["budget_usd"], row["budget_period"], row["state"]) == \
        (["test"], 60, 100000, 5.0, "month", "active")
    assert 0 < row["spent_usd"] < 5 and row["remaining_usd"] == pytest.approx(5 - row["spent_usd"])
    assert row["resets_at"] == end.isoformat().replace("+00:00", "Z")
    assert {"id", "name", "created_at", "expires_at"} <= set(row) and "revoked_at" not in row
    assert (rows["bob"]["spent_usd"], rows["bob"]["remaining_usd"], rows["bob"]["resets_at"]) == (None, None, None)
    assert rows["carol"]["state"] == "expired" and rows["bob"]["profiles"] == []


async def test_usage_is_for_admins_and_never_holds_a_secret_or_its_hash(home, proxy_factory, monkeypatch):
    monkeypatch.delenv("LLMPROXY_DATABASE_URL", raising=False)
    url, _ = await start(proxy_factory)
    alice = await acreate("alice", "--budget", "5/day")
    status, text = await get(url, USAGE, alice)
    assert status == 403 and "is for admin keys" in text and alice not in text
    assert (await post(url, "/v1/messages", alice, hello()))[0] == 200
    await spent_after(url, "alice")
    _, text = await get(url, USAGE, ADMIN)
    digest = key_hash(load_server_secret(home), alice)
    assert alice not in text and digest not in text and "llmp_" not in text
    assert "hash" not in text and "secret" not in text


async def test_concurrent_dashboards_share_one_store_read(home, proxy_factory, monkeypatch):
    """Twenty callers at once get one answer, read once: the same ``as_of`` (microseconds) in every one."""
    monkeypatch.delenv("LLMPROXY_DATABASE_URL", raising=False)
    url, _ = await start(proxy_factory)
    await acreate("alice", "--budget", "5/week")
    async with aiohttp.ClientSession() as s:
        async def one() -> dict:
            async with s.get(url + USAGE, headers={"x-api-key": ADMIN}) as r:
                assert r.status == 200
                return await r.json()
        answers = await asyncio.gather(*(one() for _ in range(20)))
    assert len({a["as_of"] for a in answers}) == 1 and answers[0]["as_of"] is not None
    assert [k["name"] for k in answers[0]["data"]] == ["alice"]


@pytest.mark.browser
async def test_the_keys_panel_shows_a_key_s_spend_against_its_budget(home, proxy_factory, browser,  # noqa: F811
                                                                     monkeypatch):
    monkeypatch.delenv("LLMPROXY_DATABASE_URL", raising=False)
    url, _ = await start(proxy_factory, "[server]\nsimulator_speed = 20\n")
    alice = await acreate("alice", "--profiles", "test", "--budget", "5/month", "--rpm", "60")
    page = await browser(url + "/ui")
    await page.wait_for_selector("#auth", state="visible")
    await page.fill("#auth-key", ADMIN)
    await page.click("#auth-form button")
    panel = page.locator("#keys-panel")
    await expect(panel).to_be_visible()
    cells = page.locator('#keys tr[data-key="alice"] td')
    await expect(cells.nth(3)).to_have_text("$0.00 / $5.00 a month")

    assert (await post(url, "/v1/messages", alice, hello()))[0] == 200
    row = await spent_after(url, "alice")  # now in the daemon's cached answer: a reload shows it
    await page.reload()
    spent = row["spent_usd"]
    shown = f"${spent:.4f}" if spent < 0.01 else f"${spent:.2f}"
    await expect(cells.nth(3)).to_have_text(f"{shown} / $5.00 a month")
    assert await cells.nth(0).inner_text() == "alice" and await cells.nth(2).inner_text() == "test"
    assert await cells.nth(5).inner_text() == row["resets_at"][:10] and await cells.nth(6).inner_text() == "60"
    width = await page.locator('#keys tr[data-key="alice"] .keybar .fill').evaluate("e => e.style.width")
    assert width == f"{100 * spent / 5}%"
    assert alice not in await page.content()


async def test_the_store_unreachable_is_a_503_naming_it_without_its_password(home, proxy_factory, monkeypatch,
                                                                            pg_cluster, pg_url):  # noqa: F811
    """PostgreSQL refusing the daemon's connections: the answer, once the cached one is old, is a 503 in the
    API's shape with ``retry-after`` (the dashboard keeps its last rows), never a 500 or the password."""
    monkeypatch.setenv("LLMPROXY_DATABASE_URL", pg_url)
    url, _ = await start(proxy_factory)
    await acreate("alice", "--budget", "5/month")
    assert [k["name"] for k in (await usage(url))["data"]] == ["alice"]
    db = pg_url.rsplit("/", 1)[1]
    pg_cluster.psql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS false; "
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'")
    try:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as s:
            while True:
                async with s.get(url + USAGE, headers={"x-api-key": ADMIN}) as r:
                    status, retry, text = r.status, r.headers.get("retry-after"), await r.text()
                if status != 200:
                    break
                assert time.monotonic() < deadline, "the answer never noticed the store was gone"
                await asyncio.sleep(0.5)
        assert (status, retry) == (503, "1"), text
        body = json.loads(text)
        assert body["type"] == "error" and "store" in body["error"]["message"]
        assert pg_cluster.password not in text
    finally:
        pg_cluster.psql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
