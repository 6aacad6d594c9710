"""Client keys end to end (issue 27), on both stores (SQLite under LLMPROXY_HOME, PostgreSQL in the throwaway
cluster of tests/store/conftest.py): the ``llmproxy keys`` CLI against the store (no daemon); the daemon
accepting a store key or a config key, refusing revoked and expired ones (saying why, never with the secret),
seeing a revocation within its cache's TTL, holding a key to its profiles whichever way a profile is chosen,
keeping the admin routes to admin keys, and writing the key's name and id (never its secret) in the record."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from llmproxy.cli.app import app
from llmproxy.settings import DATABASE_URL_ENV
from tests.helpers import post_status
from tests.store.conftest import pg_cluster, pg_url  # noqa: F401 - the PostgreSQL fixtures, reused

SECRET_RE = re.compile(r"llmp_[A-Za-z0-9_-]{32}")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, home, monkeypatch) -> str:
    """Which store the CLI and the daemon use: SQLite under ``home``, or a fresh PostgreSQL database named
    by $LLMPROXY_DATABASE_URL."""
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    if request.param == "postgres":
        monkeypatch.setenv(DATABASE_URL_ENV, request.getfixturevalue("pg_url"))
    return request.param


def keys(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["keys", *args])
    return r.exit_code, r.stdout, r.stderr


def create(name: str, *opts: str) -> str:
    code, out, err = keys("create", "--name", name, *opts)
    assert code == 0, err
    assert SECRET_RE.fullmatch(out.strip()), out
    return out.strip()


# ------------------------------------------------------------------------------------------------ the CLI

def test_cli_create_list_show_update_revoke_rotate(backend, home):
    secret = create("alice", "--profiles", "intelligent,cheap", "--budget", "50/month", "--rpm", "60",
                    "--tpm", "100000", "--expires", "2027-01-01")
    code, out, _ = keys("show", "alice", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["profiles"] == ["intelligent", "cheap"] and shown["budget_usd"] == 50.0
    assert (shown["budget_period"], shown["rpm"], shown["tpm"]) == ("month", 60, 100000)
    assert shown["expires_at"] == "2027-01-01T00:00:00Z" and shown["state"] == "active"
    code, out, _ = keys("update", "alice", "--rpm", "none", "--profiles", "")
    assert code == 0 and re.search(r"rpm\s+-", out) and re.search(r"profiles\s+all", out)
    code, out, err = keys("rotate", "alice", "--json")
    rotated = json.loads(out)
    assert code == 0 and rotated["secret"] != secret and rotated["key"]["rotated_from"] == shown["id"]
    assert "shown once" in err
    code, out, _ = keys("revoke", "alice")
    assert code == 0 and "revoked key 'alice'" in out
    code, out, _ = keys("list")
    assert "no keys" in out
    code, out, _ = keys("list", "--all", "--json")
    assert [k["state"] for k in json.loads(out)] == ["revoked", "revoked"]
    assert secret not in out and rotated["secret"] not in out


@pytest.mark.parametrize(("args", "code", "says"), [
    (["create", "--name", "bad name"], 2, "name: 'bad name'"),
    (["create", "--name", "x", "--budget", "50"], 2, "budget: '50' is not AMOUNT/PERIOD"),
    (["create", "--name", "x", "--rpm", "-3"], 2, "rpm: '-3' must be a whole number"),
    (["create", "--name", "x", "--expires", "soon"], 2, "expires: 'soon'"),
    (["create", "--name", "x", "--profiles", "nope"], 2, "valid profiles:"),
    (["show", "ghost"], 1, "no key named 'ghost'"),
    (["revoke", "ghost"], 1, "no key named 'ghost'"),
    (["rotate", "ghost"], 1, "no key named 'ghost'"),
    (["update", "ghost", "--rpm", "5"], 1, "no key named 'ghost'"),
    (["update", "ghost"], 2, "nothing to update"),
])
def test_cli_refusals_name_the_problem(home, monkeypatch, args, code, says):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    got, _, err = keys(*args)
    assert got == code and says in err, err


def test_cli_name_taken(backend, home):
    create("bob")
    code, _, err = keys("create", "--name", "bob")
    assert code == 1 and "a live key named 'bob' exists" in err


# ------------------------------------------------------------------------------------------------ the daemon

ADMIN = "admin-key-0123456789abcdef"


async def acreate(name: str, *opts: str) -> str:
    """``create`` off the event loop (the CLI runs its own)."""
    import asyncio

    return await asyncio.to_thread(create, name, *opts)


async def akeys(*args: str) -> tuple[int, str, str]:
    import asyncio

    return await asyncio.to_thread(keys, *args)


async def start(proxy_factory, extra: str = "", **kw):
    return await proxy_factory(f'[auth]\napi_keys = ["{ADMIN}"]\n' + extra, **kw)


def hello(model: str = "claude-sonnet-4-5") -> dict:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}


async def post(url: str, path: str, key: str | None, body: dict, headers: dict | None = None):
    import aiohttp

    h = {"anthropic-version": "2023-06-01", **(headers or {})}
    if key is not None:
        h["x-api-key"] = key
    async with aiohttp.ClientSession() as s, s.post(url + path, json=body, headers=h) as r:
        return r.status, await r.json()


async def get(url: str, path: str, key: str):
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(url + path, headers={"authorization": f"Bearer {key}"}) as r:
        return r.status, await r.text()


def everything_written(home, fakes) -> str:
    """Every byte the proxy wrote under its home (logs, store, secret file excepted) and every header and body
    the upstreams received."""
    parts = [p.read_bytes().decode("latin-1") for p in home.rglob("*") if p.is_file() and p.name != "keys.secret"]
    parts += [repr(r["headers"]) + r["raw"].decode("latin-1") for f in fakes for r in f.requests]
    return "\n".join(parts)


async def test_store_key_and_config_key_both_work_and_the_secret_stays_out(backend, home, proxy_factory,
                                                                          fake_anthropic, fake_backup):
    import anthropic

    from tests.conftest import wait_log

    secret = await acreate("alice")
    url, _ = await start(proxy_factory)
    for kw in ({"api_key": secret}, {"auth_token": secret}, {"api_key": ADMIN}):
        async with anthropic.AsyncAnthropic(base_url=url, max_retries=0, **kw) as c:
            msg = await c.messages.create(**hello())
            assert msg.content
    wrong = "llmp_" + "A" * 32
    status, body = await post(url, "/v1/messages", wrong, hello())
    assert status == 401 and "invalid proxy API key" in body["error"]["message"]
    recs = await wait_log(home, 4)
    assert [r.get("key", {}).get("name") for r in recs if r.get("endpoint") == "messages"][:3] == \
        ["alice", "alice", None]
    assert recs[0]["key"]["id"].startswith("key_") and set(recs[0]["key"]) == {"id", "name"}
    assert secret not in everything_written(home, [fake_anthropic, fake_backup])


async def test_a_store_key_is_never_forwarded_upstream(backend, home, proxy_factory, fake_anthropic):
    """A provider that forwards the client's key gets none when the key was ours (here, a store key)."""
    secret = await acreate("alice")
    url, _ = await proxy_factory("[providers.anthropic]\nforward_client_key = true\n", env_key=False)
    status, _ = await post(url, "/v1/messages", secret, hello())
    assert fake_anthropic.requests, status
    assert secret not in everything_written(home, [fake_anthropic])
    status, body = await post(url, "/v1/messages", None, hello())  # a key exists: the proxy is closed
    assert status == 401 and "requires an API key" in body["error"]["message"]


async def test_revoked_and_expired_keys_are_refused_saying_why(backend, home, proxy_factory):
    alice, old = await acreate("alice"), await acreate("old", "--expires", "2020-01-01")
    assert (await akeys("revoke", "alice"))[0] == 0
    url, _ = await start(proxy_factory)
    status, body = await post(url, "/v1/messages", alice, hello())
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert "proxy key 'alice' was revoked at" in body["error"]["message"]
    status, body = await post(url, "/v1/chat/completions", old, hello())
    assert status == 401 and "proxy key 'old' expired at 2020-01-01T00:00:00Z" in body["error"]["message"]
    assert alice not in str(body) and old not in str(body)
    assert alice not in everything_written(home, []) and old not in everything_written(home, [])


async def test_revocation_is_seen_by_every_instance_without_a_restart(backend, home, proxy_factory):
    """Two apps on one store (two instances, or two workers): a revocation by the CLI reaches both (within the
    cache's TTL: the deadline here is generous, the bound itself is test_cache_ttl_bounds_revocation)."""
    import asyncio

    secret = await acreate("alice")
    one, _ = await start(proxy_factory)
    two, _ = await start(proxy_factory)
    for url in (one, two):
        assert (await post(url, "/v1/messages", secret, hello()))[0] == 200
    assert (await akeys("revoke", "alice"))[0] == 0
    for url in (one, two):
        for _ in range(200):
            status, body = await post(url, "/v1/messages", secret, hello())
            if status == 401:
                break
            await asyncio.sleep(0.05)
        assert status == 401 and "revoked" in body["error"]["message"]


async def test_cache_ttl_bounds_revocation(backend, home, tmp_path):
    """The key cache trusts an answer for its TTL and no longer (a clock the test moves)."""
    from llmproxy.server.request.keyauth import KeyCache
    from llmproxy.settings import StoreConfig
    from llmproxy.store import open_store

    secret = await acreate("alice")
    import os

    store = open_store(home, StoreConfig(url=os.environ.get(DATABASE_URL_ENV, "")))
    now = [100.0]
    cache = KeyCache(home, ttl=1.0, clock=lambda: now[0])
    try:
        assert (await cache.lookup(store, secret)).state() == "active"
        assert (await cache.lookup(store, "llmp_" + "B" * 32)) is None
        await store.revoke_key("alice")
        now[0] += 0.9
        assert (await cache.lookup(store, secret)).state() == "active"  # within the TTL: the cached answer
        now[0] += 0.2
        assert (await cache.lookup(store, secret)).state() == "revoked"  # past it: asked again
        assert await cache.keys_exist(store)
    finally:
        await store.close()


@pytest.mark.parametrize(("path", "headers", "model", "allowed"), [
    ("/v1/messages", {}, "claude-sonnet-4-5", False),                          # the default profile (test)
    ("/p/test/v1/messages", {}, "claude-sonnet-4-5", False),                   # by URL
    ("/v1/messages", {"x-llmproxy-profile": "test"}, "claude-sonnet-4-5", False),  # by header
    ("/p/oai/v1/messages", {}, "profile:test", False),                         # by model
    ("/p/oai/v1/messages", {}, "anthropic,claude-sonnet-4-5", False),          # a target named directly
    ("/p/test/v1/messages/count_tokens", {}, "claude-sonnet-4-5", False),
    ("/p/test/v1/chat/completions", {}, "claude-sonnet-4-5", False),           # the OpenAI surface
    ("/p/oai/v1/messages", {}, "claude-sonnet-4-5", True),
    ("/v1/messages", {"x-llmproxy-profile": "oai"}, "claude-sonnet-4-5", True),
    ("/v1/messages", {}, "profile:oai", True),
    ("/p/oai/v1/chat/completions", {}, "claude-sonnet-4-5", True),
])
async def test_profile_restrictions_every_way_of_choosing(home, proxy_factory, monkeypatch, path, headers, model,
                                                          allowed):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    url, _ = await start(proxy_factory)  # the config first: the CLI checks the profiles against it
    secret = await acreate("intern", "--profiles", "oai")
    status, body = await post(url, path, secret, hello(model), headers)
    if allowed:
        assert status == 200, body
        return
    assert status == 403, body
    err = body["error"]
    assert (err.get("type") or err.get("code")) in ("permission_error", "permission_denied", None)
    assert "key 'intern' may not" in err["message"] and "oai" in err["message"]
    assert secret not in str(body)


async def test_profile_restrictions_hold_for_batches(backend, home, proxy_factory):
    url, _ = await start(proxy_factory)  # the config first: the CLI checks the profiles against it
    secret = await acreate("intern", "--profiles", "oai")
    item = {"custom_id": "a", "params": hello()}
    status, body = await post(url, "/p/test/v1/messages/batches", secret, {"requests": [item]})
    assert status == 403 and "may not use profile 'test'" in body["error"]["message"]
    item = {"custom_id": "a", "params": hello("profile:test")}
    status, body = await post(url, "/p/oai/v1/messages/batches", secret, {"requests": [item]})
    assert status == 403 and "may not use profile 'test'" in body["error"]["message"]


@pytest.mark.parametrize("path", ["/api/stats", "/api/providers", "/api/kg", "/api/keys", "/metrics"])
async def test_admin_routes_are_for_admin_keys(home, proxy_factory, monkeypatch, path):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    secret = await acreate("alice")
    url, _ = await start(proxy_factory)
    status, text = await get(url, path, secret)
    assert status == 403 and "is for admin keys" in text and secret not in text
    assert (await get(url, path, ADMIN))[0] == 200
    status, body = await post(url, "/p/test/api/reload", secret, {})
    assert status == 403 and "is for admin keys" in body["error"]["message"]


async def test_config_keys_alone_work_as_before(home, proxy_factory, monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    url, _ = await start(proxy_factory)
    assert (await post(url, "/v1/messages", ADMIN, hello()))[0] == 200
    assert (await post(url, "/v1/messages", "llmp_" + "C" * 32, hello()))[0] == 401
    assert (await get(url, "/api/stats", ADMIN))[0] == 200


async def test_a_first_key_closes_an_open_proxy_without_the_live_path_waiting(backend, home):
    """``keys_exist``: the first answer is waited for; afterwards a no is refreshed in the background after
    the TTL (the request goes on with the last answer), and a yes is kept."""
    import asyncio
    import os

    from llmproxy.server.request.keyauth import KeyCache
    from llmproxy.settings import StoreConfig
    from llmproxy.store import open_store

    store = open_store(home, StoreConfig(url=os.environ.get(DATABASE_URL_ENV, "")))
    now = [0.0]
    cache = KeyCache(home, ttl=1.0, clock=lambda: now[0])
    try:
        assert await cache.keys_exist(store) is False
        await asyncio.to_thread(create, "alice")
        assert await cache.keys_exist(store) is False  # within the TTL
        now[0] += 1.5
        assert await cache.keys_exist(store) is False  # the last answer, while a fresh one is asked for
        for _ in range(500):
            if cache.keys_known():
                break
            await asyncio.sleep(0.01)
        assert await cache.keys_exist(store) is True
    finally:
        await store.close()


@pytest.mark.parametrize(("times", "limit", "want"), [
    ([0, 1, 2], 3, [None, None, None]),
    ([0, 1, 2, 3], 3, [None, None, None, 57.0]),        # the 4th waits until the 1st leaves the window
    ([0, 1, 2, 60, 61], 3, [None, None, None, None, None]),  # at 60 and 61 the 1st and 2nd have left
    ([0, 0, 30, 59.5, 60.5], 2, [None, None, 30.0, 0.5, None]),
])
def test_request_windows(times, limit, want):
    from llmproxy.server.request.keyauth import RequestWindows

    now = [0.0]
    w = RequestWindows(clock=lambda: now[0])
    got = []
    for t in times:
        now[0] = float(t)
        got.append(w.admit("k", limit))
    assert got == want


async def test_rpm_per_key_answers_429_with_retry_after(backend, home, proxy_factory):
    import aiohttp

    url, _ = await start(proxy_factory)
    slow, other = await acreate("slow", "--rpm", "2"), await acreate("other")
    for _ in range(2):
        assert (await post(url, "/v1/messages", slow, hello()))[0] == 200
    assert (await post(url, "/v1/messages/count_tokens", slow, hello()))[0] == 200  # not a model call
    async with aiohttp.ClientSession() as s, s.post(url + "/p/test/v1/messages", json=hello(),
                                                    headers={"x-api-key": slow}) as r:
        body = await r.json()
        assert r.status == 429 and body["error"]["type"] == "rate_limit_error"
        assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "key 'slow' is over its limit of 2 requests per minute" in body["error"]["message"]
    assert slow not in str(body)
    status, body = await post(url, "/v1/chat/completions", slow, hello())
    assert status == 429 and "over its limit" in body["error"]["message"], body  # the OpenAI surface too
    assert (await post(url, "/v1/messages", other, hello()))[0] == 200
    assert (await post(url, "/v1/messages", ADMIN, hello()))[0] == 200


def test_revocation_reaches_every_worker(backend, home):
    """``serve --workers 2`` as users run it: a key revoked by the CLI is refused by both workers (each has its
    own cache; the log's rejection records say which worker refused). Prints the revocation latency seen:
    the last request a worker still served after the revocation."""
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import free_port, read_log

    port = free_port()
    (home / "config.toml").write_text(f'[server]\nsimulator_speed = 0\n[auth]\napi_keys = ["{ADMIN}"]\n')
    secret = create("alice")
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--port", str(port), "--workers", "2",
                             "--simulate"], env={**os.environ, "LLMPROXY_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def send() -> int:
        return post_status(port, secret, hello())

    try:
        deadline = time.monotonic() + 30
        while send() != 200:
            assert time.monotonic() < deadline and proc.poll() is None, "the daemon did not start"
            time.sleep(0.1)
        assert keys("revoke", "alice")[0] == 0
        revoked = time.time()
        refused_by: set = set()
        while refused_by != {1, 2} and time.monotonic() < deadline:
            send()
            refused_by = {r.get("worker") for r in read_log(home) if "revoked" in (r.get("error") or "")}
        assert refused_by == {1, 2}, refused_by
        from datetime import datetime

        served = [datetime.fromisoformat(r["time"]).timestamp() - revoked for r in read_log(home)
                  if r.get("status") == 200 and r.get("endpoint") == "messages"]
        print(f"\n[{backend}] last request served after the revocation: {max(served):+.3f} s")
    finally:
        proc.terminate()
        proc.wait(20)


def test_cli_with_the_store_unreachable_names_it_without_its_password(home, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv(DATABASE_URL_ENV, f"postgresql://llmproxy:sekret-pw-123@127.0.0.1:{free_port()}/db")
    code, out, err = keys("create", "--name", "alice")
    assert code == 1 and "postgresql://llmproxy:***@127.0.0.1" in err, err
    assert "sekret-pw-123" not in out + err and "Traceback" not in out + err
    assert not SECRET_RE.search(out + err)  # no secret shown for a key that was not stored


async def test_api_keys_lists_the_keys_for_admins_without_secrets(backend, home, proxy_factory):
    url, _ = await start(proxy_factory)
    alice = await acreate("alice", "--rpm", "5")
    assert (await akeys("rotate", "alice"))[0] == 0
    status, text = await get(url, "/api/keys", ADMIN)
    data = json.loads(text)["data"]
    assert status == 200 and [(k["name"], k["state"], k["rpm"]) for k in data] == \
        [("alice", "revoked", 5), ("alice", "active", 5)]
    assert data[1]["rotated_from"] == data[0]["id"] and alice not in text and "secret" not in text


@pytest.mark.parametrize(("events", "limit", "want"), [
    # (time, tokens added, or None: ask) -> the answers to the asks
    ([(0, None)], 10, [None]),
    ([(0, 6), (1, 3), (2, None)], 10, [None]),               # 9 < 10
    ([(0, 6), (1, 5), (2, None)], 10, [58.0]),               # 11: under once the first (at 0) leaves, at 60
    ([(0, 6), (1, 5), (2, 5), (3, None)], 10, [58.0]),        # 16: 10 once the first leaves, 5 at 61: 61 - 3
    ([(0, 6), (1, 5), (60, None)], 10, [None]),               # at 60 the first has left: 5
    ([(0, 0), (1, None)], 1, [None]),                        # nothing counted for no tokens
])
def test_token_windows(events, limit, want):
    from llmproxy.server.request.keyauth import TokenWindows

    now = [0.0]
    w, got = TokenWindows(clock=lambda: now[0]), []
    for t, n in events:
        now[0] = float(t)
        if n is None:
            got.append(w.wait("k", limit))
        else:
            w.add("k", n)
    assert got == want


def test_usage_tokens_counts_input_cache_writes_and_output():
    from llmproxy.server.request.keyauth import usage_tokens

    assert usage_tokens({"input_tokens": 11, "output_tokens": 7, "cache_creation_input_tokens": 5,
                         "cache_read_input_tokens": 100_000}) == 23
    assert usage_tokens(None) == 0 and usage_tokens({"input_tokens": "x", "output_tokens": -3}) == 0


async def test_tpm_per_key_answers_429_once_the_minute_s_tokens_are_used(backend, home, proxy_factory):
    url, _ = await start(proxy_factory)
    tight = await acreate("tight", "--tpm", "30")   # the fake upstream answers 11 + 7 = 18 tokens a request
    assert (await post(url, "/v1/messages", tight, hello()))[0] == 200
    assert (await post(url, "/v1/messages/count_tokens", tight, hello()))[0] == 200  # counts nothing
    assert (await post(url, "/v1/messages", tight, hello()))[0] == 200               # 18 < 30
    status, body = await post(url, "/v1/messages", tight, hello())                   # 36: over
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert "key 'tight' has used its 30 tokens per minute; retry in" in body["error"]["message"]
    assert (await post(url, "/v1/messages", ADMIN, hello()))[0] == 200


async def test_stats_by_key(home, proxy_factory, monkeypatch):
    import asyncio

    from tests.conftest import wait_log

    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    url, _ = await start(proxy_factory)
    alice, bob = await acreate("alice"), await acreate("bob")
    for key in (alice, alice, bob, ADMIN):
        assert (await post(url, "/v1/messages", key, hello()))[0] == 200
    await wait_log(home, 4)

    def stats(*args: str):
        return CliRunner().invoke(app, ["stats", *args])

    r = await asyncio.to_thread(stats, "--by", "key", "--json")
    by_key = json.loads(r.stdout)["by_key"]
    assert r.exit_code == 0 and {k: v["requests"] for k, v in by_key.items()} == \
        {"alice": 2, "bob": 1, "(no key)": 1}
    assert by_key["alice"]["output_tokens"] == 2 * by_key["bob"]["output_tokens"] > 0
    r = await asyncio.to_thread(stats, "--by", "profile,key")
    assert r.exit_code == 0 and "by profile" in r.stdout and "by key" in r.stdout and "alice" in r.stdout
    r = await asyncio.to_thread(stats, "--by", "person")
    assert r.exit_code == 2 and "--by: unknown 'person'; choose from profile, model, key" in r.stderr


async def test_metrics_per_key_by_name_never_the_secret(backend, home, proxy_factory):
    url, _ = await start(proxy_factory)
    alice = await acreate("alice")
    for key in (alice, alice, ADMIN):
        assert (await post(url, "/v1/messages", key, hello()))[0] == 200
    status, text = await get(url, "/metrics", ADMIN)
    assert status == 200 and 'llmproxy_key_requests_total{key="alice",status="200"} 2.0' in text
    assert 'llmproxy_key_tokens_total{direction="output",key="alice"}' in text
    assert alice not in text and "key_" not in text.replace("llmproxy_key_", "")  # names, not ids or secrets


def test_env_hands_claude_code_your_client_key(home, monkeypatch):
    """``LLMPROXY_KEY`` (a key from ``llmproxy keys create``) is what ``llmproxy env`` gives Claude Code as
    ANTHROPIC_AUTH_TOKEN; without it, the config's first key as before."""
    (home / "config.toml").write_text(f'[auth]\napi_keys = ["{ADMIN}"]\n')
    monkeypatch.setenv("LLMPROXY_KEY", "llmp_" + "D" * 32)
    r = CliRunner().invoke(app, ["env"])
    assert r.exit_code == 0 and "export ANTHROPIC_AUTH_TOKEN=llmp_DDDD" in r.stdout and ADMIN not in r.stdout
    monkeypatch.delenv("LLMPROXY_KEY")
    r = CliRunner().invoke(app, ["env"])
    assert f"export ANTHROPIC_AUTH_TOKEN={ADMIN}" in r.stdout
