"""A store key's own usage (issue 27): ``GET /api/keys/me`` answers any store key about itself (its budget's
spend, what is left, when it resets), not admins' config keys; the status line shows the remaining budget of
the key in ``LLMPROXY_KEY``, asked of the proxy ``ANTHROPIC_BASE_URL`` names — on both stores."""

from __future__ import annotations

import asyncio
import io
import json
import time
from datetime import UTC, datetime

import aiohttp

from llmproxy.cli import statusline
from llmproxy.server.request.keylimits import period_bounds
from tests.store.conftest import pg_cluster, pg_url  # noqa: F401 - the PostgreSQL fixtures, reused
from tests.test_cli_statusline import SESSION, record, write_log
from tests.test_keys import ADMIN, acreate, backend, hello, post, start  # noqa: F401 - fixtures and helpers


async def me(url: str, key: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.get(url + "/api/keys/me", headers={"x-api-key": key}) as r:
        return r.status, await r.json()


async def test_own_key_usage_and_the_status_line(backend, home, proxy_factory, tmp_path):  # noqa: F811
    secret = await acreate("erin", "--budget", "10/month", "--rpm", "50")
    plain = await acreate("finn")
    url, _ = await start(proxy_factory)
    assert (await post(url, "/v1/messages", secret, hello()))[0] == 200
    status, data = await me(url, secret)
    assert status == 200 and data["name"] == "erin" and data["budget_usd"] == 10 and data["rpm"] == 50
    assert 0 < data["spent_usd"] < 10 and data["remaining_usd"] == round(10 - data["spent_usd"], 6)
    _, end = period_bounds("month", datetime.now(UTC))
    assert data["resets_at"].startswith(end.date().isoformat())
    assert secret not in json.dumps(data)
    status, data = await me(url, plain)  # no budget: the key, no spend figures
    assert status == 200 and data["name"] == "finn" and "remaining_usd" not in data
    status, data = await me(url, ADMIN)
    assert status == 404 and "not a store key" in data["error"]["message"]
    async with aiohttp.ClientSession() as s, s.get(url + "/api/keys", headers={"x-api-key": secret}) as r:
        assert r.status == 403  # the other /api/ routes stay the admins'

    now = time.time()
    log = tmp_path / "requests.jsonl"
    write_log(log, [record(1, now - 5)])
    environ = {"LLMPROXY_KEY": secret, "ANTHROPIC_BASE_URL": url + "/p/test", "COLUMNS": "200"}

    def line(env: dict) -> str:
        out = io.StringIO()
        statusline.main(io.StringIO(json.dumps(SESSION)), out, env, log=log, now=now, tty="/nonexistent")
        return out.getvalue()

    shown = await asyncio.to_thread(line, environ)  # the proxy answers on this loop meanwhile
    left = (await me(url, secret))[1]["remaining_usd"]
    assert f" · ${left:.2f} left of $10/month · " in shown and shown.startswith("llmproxy "), shown
    assert "left of" not in await asyncio.to_thread(line, {**environ, "LLMPROXY_KEY": plain})
    assert "left of" not in await asyncio.to_thread(line, {**environ, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})
