"""Batches and files belong to the key that created them (a leftover of issue 27), on both stores (SQLite under
LLMPROXY_HOME, PostgreSQL in the throwaway cluster of tests/store/conftest.py), through the app on loopback
with the official anthropic SDK and raw HTTP:

* a store key sees only its own batches and files: another key's id answers on every route exactly as an id
  that does not exist (404 ``not_found_error``; the lists leave it out, a cursor naming it is unknown), and a
  delete or cancel by another key changes nothing; the owner and an admin (a config key) see it;
* a message (and count_tokens) referencing another key's ``file_id`` is refused exactly as an unknown file,
  and nothing of the file reaches the upstream; a batch item likewise ends errored;
* a batch's items are charged to the key that created it: their records carry the key, the usage ledger
  holds them under its id, the key's budget counts their cost and its --tpm their tokens; a key whose budget
  is spent cannot create a batch;
* a store made before owners were kept opens under a daemon, its batches and files the admin's."""

from __future__ import annotations

import asyncio
import json
import os
import re

import aiohttp
import anthropic
import pytest
from typer.testing import CliRunner

from llmproxy.cli.app import app
from llmproxy.settings import DATABASE_URL_ENV, StoreConfig
from llmproxy.store import open_store
from tests.conftest import wait_log
from tests.store.conftest import pg_cluster, pg_url  # noqa: F401 - the PostgreSQL fixtures, reused
from tests.store.test_owner_keys import make_old_store

ADMIN = "admin-key-scoping-0123456789abcdef"
#: ids of the proxy's shapes, for comparing an answer about one id with the answer about another
IDS = re.compile(r"(msgbatch|file)_[A-Za-z0-9]{1,40}")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, home, monkeypatch) -> str:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    if request.param == "postgres":
        monkeypatch.setenv(DATABASE_URL_ENV, request.getfixturevalue("pg_url"))
    return request.param


def keys_cli(*args: str) -> str:
    r = CliRunner().invoke(app, ["keys", *args])
    assert r.exit_code == 0, r.stderr
    return r.stdout.strip()


async def create_key(name: str, *opts: str) -> tuple[str, str]:
    """(secret, id) of a new store key, made by the CLI (off the event loop: it runs its own)."""
    secret = await asyncio.to_thread(keys_cli, "create", "--name", name, *opts)
    shown = json.loads(await asyncio.to_thread(keys_cli, "show", name, "--json"))
    return secret, shown["id"]


async def start(proxy_factory) -> str:
    url, _ = await proxy_factory(f'[auth]\napi_keys = ["{ADMIN}"]\n[store]\nledger_flush_seconds = 0.1\n')
    return url


def sdk(url: str, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0)


def req(cid: str, content: object = "hello") -> dict:
    return {"custom_id": cid, "params": {"model": "claude-sonnet-4-5", "max_tokens": 16,
                                         "messages": [{"role": "user", "content": content}]}}


def with_file(file_id: str) -> list[dict]:
    return [{"type": "document", "source": {"type": "file", "file_id": file_id}},
            {"type": "text", "text": "summarise the document"}]


async def wait_ended(c: anthropic.AsyncAnthropic, bid: str) -> None:
    for _ in range(400):
        if (await c.messages.batches.retrieve(bid)).processing_status == "ended":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"batch {bid} did not end")


async def answer(url: str, method: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    """(status, error or body) of one raw request, ids and the request id taken out so that answers about two
    different ids can be compared."""
    h = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as s, s.request(method, url + path, headers=h, json=body) as r:
        data = await r.json(content_type=None)
    data.pop("request_id", None)
    return r.status, json.loads(IDS.sub("<id>", json.dumps(data)))


async def test_another_keys_batch_and_file_are_not_found_on_every_route(backend, home, proxy_factory):
    alice, _ = await create_key("alice")
    bob, _ = await create_key("bob")
    url = await start(proxy_factory)
    async with sdk(url, alice) as a, sdk(url, bob) as b, sdk(url, ADMIN) as admin:
        f = await a.files.upload(file=("plans.txt", b"alice's plans", "text/plain"))
        batch = await a.messages.batches.create(requests=[req("one")])
        bobs_file = await b.files.upload(file=("b.txt", b"bob's", "text/plain"))
        bobs = await b.messages.batches.create(requests=[req("two")])
        await wait_ended(a, batch.id)
        await wait_ended(b, bobs.id)

        routes = [("GET", "/v1/messages/batches/{b}", 404), ("GET", "/v1/messages/batches/{b}/results", 404),
                  ("POST", "/v1/messages/batches/{b}/cancel", 404), ("DELETE", "/v1/messages/batches/{b}", 404),
                  ("GET", "/p/test/v1/messages/batches/{b}", 404), ("GET", "/v1/files/{f}", 404),
                  ("GET", "/v1/files/{f}/content", 404), ("DELETE", "/v1/files/{f}", 404),
                  ("GET", "/v1/messages/batches?after_id={b}", 400),  # an unknown cursor
                  ("GET", "/v1/files?before_id={f}", 400), ("GET", "/v1/files?ids={f}", 200)]  # an empty page
        for method, path, status in routes:
            theirs = await answer(url, method, path.format(b=batch.id, f=f.id), bob)
            absent = await answer(url, method, path.format(b="msgbatch_" + "N" * 24, f="file_" + "N" * 24), bob)
            assert theirs == absent, (method, path, theirs, absent)
            assert theirs[0] == status, (method, path, theirs)
            assert status != 404 or theirs[1]["error"]["type"] == "not_found_error"
            assert "alice" not in json.dumps(theirs) and "plans" not in json.dumps(theirs)
        assert (await answer(url, "GET", f"/v1/files?ids={f.id}", bob))[1]["data"] == []
        with pytest.raises(anthropic.NotFoundError):
            await b.messages.batches.retrieve(batch.id)
        with pytest.raises(anthropic.NotFoundError):
            await b.files.retrieve_metadata(f.id)

        # each key lists its own; the admin lists everyone's
        assert [x.id async for x in a.messages.batches.list()] == [batch.id]
        assert [x.id async for x in b.messages.batches.list()] == [bobs.id]
        assert {x.id async for x in admin.messages.batches.list()} == {batch.id, bobs.id}
        assert [x.id async for x in a.files.list()] == [f.id]
        assert [x.id async for x in b.files.list()] == [bobs_file.id]
        assert {x.id async for x in admin.files.list()} == {f.id, bobs_file.id}
        # bob's delete and cancel changed nothing; the owner and the admin still read both
        for c in (a, admin):
            assert (await c.messages.batches.retrieve(batch.id)).id == batch.id
            assert [r.custom_id async for r in await c.messages.batches.results(batch.id)] == ["one"]
            assert (await c.files.retrieve_metadata(f.id)).filename == "plans.txt"
        assert (await a.files.delete(f.id)).id == f.id
        assert (await admin.messages.batches.delete(bobs.id)).id == bobs.id  # an admin may delete any


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_a_message_cannot_reference_another_keys_file(backend, home, proxy_factory, fake_anthropic, path):
    alice, _ = await create_key("alice")
    bob, _ = await create_key("bob")
    url = await start(proxy_factory)
    async with sdk(url, alice) as a:
        f = await a.files.upload(file=("plans.txt", b"alice's secret plans", "text/plain"))
    body = req("x", with_file(f.id))["params"]
    assert (await answer(url, "POST", path, alice, body))[0] == 200
    assert (await answer(url, "POST", path, ADMIN, body))[0] == 200
    seen = len(fake_anthropic.requests)
    theirs = await answer(url, "POST", path, bob, body)
    absent = await answer(url, "POST", path, bob, req("x", with_file("file_" + "N" * 24))["params"])
    assert theirs == absent and theirs[0] == 400, theirs
    assert "not found" in theirs[1]["error"]["message"] and "plans" not in json.dumps(theirs)
    assert len(fake_anthropic.requests) == seen  # nothing of it went upstream


async def test_a_batch_is_charged_to_the_key_that_created_it(backend, home, proxy_factory, fake_anthropic):
    alice, alice_id = await create_key("alice", "--budget", "100/month")
    bob, _ = await create_key("bob")
    url = await start(proxy_factory)
    async with sdk(url, alice) as a, sdk(url, bob) as b:
        mine = await a.files.upload(file=("mine.txt", b"my notes", "text/plain"))
        theirs = await b.files.upload(file=("theirs.txt", b"bob's notes", "text/plain"))
        batch = await a.messages.batches.create(requests=[req("plain"), req("mine", with_file(mine.id)),
                                                          req("theirs", with_file(theirs.id))])
        await wait_ended(a, batch.id)
        results = {r.custom_id: r.result async for r in await a.messages.batches.results(batch.id)}
    assert (results["plain"].type, results["mine"].type, results["theirs"].type) == \
        ("succeeded", "succeeded", "errored")
    assert "not found" in results["theirs"].error.error.message
    assert not any(b"bob's notes" in r["raw"] for r in fake_anthropic.requests)

    recs = [r for r in await wait_log(home, 3) if r.get("batch_id") == batch.id]
    assert len(recs) == 3 and all(r["key"] == {"id": alice_id, "name": "alice"} for r in recs), recs
    succeeded = [r for r in recs if r["status"] == 200]
    assert len(succeeded) == 2 and all(r["cost_usd"] > 0 for r in succeeded)

    store = open_store(home, StoreConfig(url=os.environ.get(DATABASE_URL_ENV, "")))
    try:
        for _ in range(200):  # the fleet task writes the ledger every 0.1 s here
            rows = [u for u in await store.usage("2000-01-01T00:00Z") if u.key_id == alice_id]
            if sum(u.requests for u in rows) >= 3:
                break
            await asyncio.sleep(0.05)
        assert sum(u.requests for u in rows) == 3 and sum(u.errors for u in rows) == 1
        assert sum(u.cost_usd for u in rows) == pytest.approx(sum(r["cost_usd"] for r in succeeded))
    finally:
        await store.close()
    status, me = await answer(url, "GET", "/api/keys/me", alice)
    assert status == 200 and me["spent_usd"] == pytest.approx(sum(r["cost_usd"] for r in succeeded), abs=1e-6)


async def test_a_batchs_tokens_count_against_the_keys_tpm(backend, home, proxy_factory):
    """Items run by the executor (this key has made no live request here) count in the fleet's token
    window: after a batch of 2 x 18 tokens, a key with --tpm 30 is over it."""
    alice, _ = await create_key("alice", "--tpm", "30")
    url = await start(proxy_factory)
    async with sdk(url, alice) as a:
        batch = await a.messages.batches.create(requests=[req("one"), req("two")])
        await wait_ended(a, batch.id)
    status, body = await answer(url, "POST", "/v1/messages", alice, req("x")["params"])
    assert status == 429 and "key 'alice' has used its 30 tokens per minute" in body["error"]["message"], body


async def test_a_key_whose_budget_is_spent_cannot_create_a_batch(backend, home, proxy_factory):
    broke, _ = await create_key("broke", "--budget", "0/month")
    url = await start(proxy_factory)
    status, body = await answer(url, "POST", "/v1/messages/batches", broke, {"requests": [req("a")]})
    assert status == 429 and "key 'broke' has spent $0.00 of $0.00 this month" in body["error"]["message"]
    async with sdk(url, ADMIN) as admin:
        assert [x.id async for x in admin.messages.batches.list()] == []


async def test_an_old_stores_batches_and_files_are_the_admins(backend, home, proxy_factory):
    await make_old_store(home, StoreConfig(url=os.environ.get(DATABASE_URL_ENV, "")))
    alice, _ = await create_key("alice")  # the CLI opens (and migrates) the old store
    url = await start(proxy_factory)
    for path in ("/v1/messages/batches/msgbatch_old", "/v1/messages/batches/msgbatch_old/results",
                 "/v1/files/file_old"):
        assert (await answer(url, "GET", path, alice))[0] == 404, path
        assert (await answer(url, "GET", path, ADMIN))[0] == 200, path
    async with sdk(url, alice) as a, sdk(url, ADMIN) as admin:
        assert [x.id async for x in a.messages.batches.list()] == []
        assert [x.id async for x in admin.messages.batches.list()] == ["msgbatch_old"]
        assert [x.id async for x in admin.files.list()] == ["file_old"]
