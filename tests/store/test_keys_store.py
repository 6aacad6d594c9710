"""Client keys in the store (issue 27), one suite against both backends (SQLite under a temp home,
PostgreSQL in the throwaway cluster of tests/store/conftest.py): create, get by name, list, update, revoke,
rotate, lookup by keyed hash; a name unique among live keys (also when created concurrently); the secret
never in the database; the server secret 0600 and the same for processes making it at once; the parsers."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmproxy.store import new_id, pg_schema, schema
from llmproxy.store.keys import (
    ApiKey,
    KeyNameTaken,
    key_hash,
    load_server_secret,
    new_secret,
    parse_budget,
    parse_expires,
    parse_profiles,
)
from llmproxy.store.postgres import PostgresStore

SERVER = b"0" * 64


def a_key(name: str, **kw) -> ApiKey:
    return ApiKey(id=new_id("key_"), name=name, created_at="2026-12-05T10:00:00.000Z", **kw)


async def test_create_get_list_lookup(store):
    secret = new_secret()
    k = a_key("alice", profiles=("intelligent", "cheap"), budget_usd=50.0, budget_period="month", rpm=60,
              tpm=100_000, expires_at="2027-01-01T00:00:00Z")
    await store.create_key(k, key_hash(SERVER, secret))
    got = await store.get_key("alice")
    assert got == k
    assert got.state() == "active"
    assert await store.key_by_hash(key_hash(SERVER, secret)) == k
    assert await store.key_by_hash(key_hash(b"1" * 64, secret)) is None  # another server secret: no key
    assert await store.key_by_hash(key_hash(SERVER, new_secret())) is None
    await store.create_key(a_key("bob"), key_hash(SERVER, new_secret()))
    assert [x.name for x in await store.list_keys()] == ["alice", "bob"]
    assert await store.get_key("carol") is None
    assert await store.has_keys()


async def test_no_keys(store):
    assert not await store.has_keys()
    assert await store.list_keys() == []
    assert await store.revoke_key("nobody") is None
    assert await store.rotate_key("nobody", new_id("key_"), key_hash(SERVER, new_secret())) is None


async def test_name_unique_among_live_keys(store):
    await store.create_key(a_key("alice"), key_hash(SERVER, new_secret()))
    with pytest.raises(KeyNameTaken):
        await store.create_key(a_key("alice"), key_hash(SERVER, new_secret()))
    await store.revoke_key("alice")
    again = a_key("alice")
    await store.create_key(again, key_hash(SERVER, new_secret()))  # the name of a revoked key may be reused
    assert (await store.get_key("alice")).id == again.id  # the live one wins


async def test_concurrent_creates_of_one_name_store_one(store):
    results = await asyncio.gather(*(store.create_key(a_key("dup"), key_hash(SERVER, new_secret()))
                                     for _ in range(8)), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, KeyNameTaken) for r in results if r is not None)


async def test_update_revoke(store):
    await store.create_key(a_key("alice", rpm=10), key_hash(SERVER, new_secret()))
    k = await store.update_key("alice", profiles=("cheap",), rpm=None, tpm=5, budget_usd=1.5, budget_period="day")
    assert (k.profiles, k.rpm, k.tpm, k.budget_usd, k.budget_period) == (("cheap",), None, 5, 1.5, "day")
    with pytest.raises(ValueError, match="secret_hash"):
        await store.update_key("alice", secret_hash="x")
    r = await store.revoke_key("alice")
    assert r.revoked_at is not None and r.state() == "revoked"
    assert await store.update_key("alice", rpm=1) == r  # a revoked key is not changed


async def test_rotate(store):
    old_secret, new_secret_ = new_secret(), new_secret()
    old = a_key("alice", profiles=("cheap",), rpm=7)
    await store.create_key(old, key_hash(SERVER, old_secret))
    new = await store.rotate_key("alice", new_id("key_"), key_hash(SERVER, new_secret_))
    assert new.id != old.id and new.rotated_from == old.id and new.name == "alice"
    assert (new.profiles, new.rpm, new.state()) == (("cheap",), 7, "active")
    assert (await store.key_by_hash(key_hash(SERVER, old_secret))).state() == "revoked"
    assert (await store.key_by_hash(key_hash(SERVER, new_secret_))).id == new.id
    assert (await store.get_key("alice")).id == new.id


async def test_expired_state(store):
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await store.create_key(a_key("old", expires_at=past), key_hash(SERVER, new_secret()))
    assert (await store.get_key("old")).state() == "expired"


async def test_secret_never_in_the_database(store, tmp_path):
    secret = new_secret()
    await store.create_key(a_key("alice"), key_hash(SERVER, secret))
    await store.rotate_key("alice", new_id("key_"), key_hash(SERVER, new_secret()))
    if isinstance(store, PostgresStore):
        rows = await (await store._db()).fetch("SELECT row_to_json(k)::text FROM keys k")
        dump = "\n".join(r[0] for r in rows)
        assert "alice" in dump
    else:
        await store.close()
        dump = b"".join(p.read_bytes() for p in tmp_path.glob("llmproxy.db*")).decode("latin-1")
        assert "alice" in dump
    assert secret not in dump and secret[len("llmp_"):] not in dump


def test_migrations_apply_by_name():
    for migrations in (schema.MIGRATIONS, pg_schema.MIGRATIONS):
        names = [n for n, _ in migrations]
        assert "0008_keys" in names and len(set(names)) == len(names)


def test_server_secret_made_once_0600(tmp_path):
    home = tmp_path / "home"
    first = load_server_secret(home)
    assert stat.S_IMODE((home / "keys.secret").stat().st_mode) == 0o600
    assert load_server_secret(home) == first and len(first) == 64
    os.chmod(home / "keys.secret", 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_server_secret(home)


def test_server_secret_same_for_processes_making_it_at_once(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        got = set(pool.map(load_server_secret, [tmp_path] * 8))
    assert len(got) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keys.secret"]  # no temporary file left behind


@given(st.integers(0, 200))
def test_secret_shape(_):
    assert re.fullmatch(r"llmp_[A-Za-z0-9_-]{32}", new_secret())


@pytest.mark.parametrize(("text", "want"), [
    ("50/month", (50.0, "month")), ("$12.5/day", (12.5, "day")), ("0/week", (0.0, "week")),
    ("50", None), ("50/year", None), ("-1/day", None), ("x/day", None), ("nan/day", None), ("inf/day", None),
])
def test_parse_budget(text, want):
    if want is None:
        with pytest.raises(ValueError, match="budget"):
            parse_budget(text)
    else:
        assert parse_budget(text) == want


def test_parse_expires_and_profiles():
    assert parse_expires("2027-01-01") == "2027-01-01T00:00:00Z"
    assert parse_expires("2027-01-01T12:00:00+02:00") == "2027-01-01T10:00:00Z"
    with pytest.raises(ValueError, match="expires"):
        parse_expires("next year")
    assert parse_profiles("intelligent, cheap,,cheap") == ("intelligent", "cheap")
    assert parse_profiles("") == ()
