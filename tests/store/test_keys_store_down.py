"""A limited store key while the PostgreSQL store is down (issue 27): ``[auth] on_store_down``. The test
cluster's server is stopped (as tests/store/test_db_down.py does) once the key was used; with ``closed`` (the
default) the key's requests get a 503 naming the store, with ``open`` they go on (the key as last found, its
budget and rpm from the last counts and this process's own); once the server is back, both serve."""

from __future__ import annotations

import asyncio

import pytest

from llmproxy.server.request.keylimits import FLEET
from llmproxy.settings import DATABASE_URL_ENV
from tests.store.test_db_down import start_server, stop_server, until
from tests.test_keys import ADMIN, acreate, hello, post


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_on_store_down_decides(mode, proxy_factory, pg_cluster, pg_url, monkeypatch):
    monkeypatch.setenv(DATABASE_URL_ENV, pg_url)
    secret = await acreate("dora", "--rpm", "1000", "--budget", "1000/day")
    url, _ = await proxy_factory(f'[auth]\napi_keys = ["{ADMIN}"]\non_store_down = "{mode}"\n'
                                 "[store]\nheartbeat_seconds = 0.2\nledger_flush_seconds = 0.2\n")
    assert (await post(url, "/v1/messages", secret, hello()))[0] == 200
    stop_server(pg_cluster)
    try:
        async def stale() -> bool:
            return FLEET.stale()

        await until(stale)  # the fleet's counts are too old to trust
        await asyncio.sleep(1.1)  # and the key cache's entry has passed its second
        status, body = await post(url, "/v1/messages", secret, hello())
        if mode == "closed":
            assert status == 503 and "cannot check the" in body["error"]["message"], body
            assert "unreachable" in body["error"]["message"]
        else:
            assert status == 200, body
        assert (await post(url, "/v1/messages", ADMIN, hello()))[0] == 200  # config keys never need the store
    finally:
        start_server(pg_cluster)

    async def served() -> bool:
        return (await post(url, "/v1/messages", secret, hello()))[0] == 200

    await until(served)
