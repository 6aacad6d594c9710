"""Who created a batch or a file (the store key's id, ``""`` for an admin), one suite on both backends (SQLite
under a temp home, PostgreSQL in the throwaway cluster of tests/store/conftest.py): the owner is stored and
read back; the lists filter by it (alone and with a profile), another key's id as a cursor is unknown; a
rotated key's successor takes over what the key created; and a database made before owners were kept
(every migration but ``0011_owner_keys``, rows in it) opens, its rows admin-owned."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from llmproxy.settings import StoreConfig
from llmproxy.store import Batch, open_store, pg_schema, schema
from llmproxy.store.keys import ApiKey

OWNERS = "0011_owner_keys"


def batch(bid: str, owner: str = "", profile: str = "p") -> Batch:
    return Batch(id=bid, profile=profile, created_at="2026-01-01T00:00:00Z", expires_at="2026-01-02T00:00:00Z",
                 total=1, owner_key=owner)


async def chunks(*parts: bytes):
    for p in parts:
        yield p


async def test_owners_are_kept_and_the_lists_filter_by_them(store):
    for bid, owner, profile in [("msgbatch_1", "", "p"), ("msgbatch_2", "key_a", "p"), ("msgbatch_3", "key_b", "p"),
                                ("msgbatch_4", "key_a", "q"), ("msgbatch_5", "key_a", "p")]:
        await store.create_batch(batch(bid, owner, profile), [("x", b"{}")])
    assert (await store.get_batch("msgbatch_2")).owner_key == "key_a"
    assert (await store.get_batch("msgbatch_1")).owner_key == ""
    ids = lambda page: [b.id for b in page[0]]  # noqa: E731
    assert ids(await store.list_batches(10, owner_key="key_a")) == ["msgbatch_5", "msgbatch_4", "msgbatch_2"]
    assert ids(await store.list_batches(10, owner_key="")) == ["msgbatch_1"]  # the admin's own
    assert len(ids(await store.list_batches(10))) == 5  # no owner given: every batch
    assert ids(await store.list_batches(10, profile="p", owner_key="key_a")) == ["msgbatch_5", "msgbatch_2"]
    page, more = await store.list_batches(1, owner_key="key_a")
    assert ids((page, more)) == ["msgbatch_5"] and more
    assert ids(await store.list_batches(10, after_id="msgbatch_5", owner_key="key_a")) == ["msgbatch_4", "msgbatch_2"]
    with pytest.raises(KeyError, match="msgbatch_3"):  # another key's batch is no cursor of this key's list
        await store.list_batches(10, after_id="msgbatch_3", owner_key="key_a")

    mine = await store.put_file("a.txt", "text/plain", chunks(b"a"), 10, owner_key="key_a")
    theirs = await store.put_file("b.txt", "text/plain", chunks(b"b"), 10, owner_key="key_b")
    admins = await store.put_file("c.txt", "text/plain", chunks(b"c"), 10)
    assert (mine.owner_key, admins.owner_key) == ("key_a", "")
    assert (await store.get_file(theirs.id)).owner_key == "key_b"
    assert "owner_key" not in mine.to_api()  # never in the API's shape
    files, _ = await store.list_files(10, owner_key="key_a")
    assert [f.id for f in files] == [mine.id]
    assert [f.id for f in (await store.list_files(10))[0]] == [admins.id, theirs.id, mine.id]
    with pytest.raises(KeyError):
        await store.list_files(10, before_id=theirs.id, owner_key="key_a")


async def test_a_rotated_key_keeps_what_it_created(store):
    old = ApiKey(id="key_old", name="alice", created_at="2026-12-05T10:00:00.000Z")
    await store.create_key(old, "h" * 64)
    await store.create_batch(batch("msgbatch_r", "key_old"), [("x", b"{}")])
    await store.create_batch(batch("msgbatch_o", "key_other"), [("x", b"{}")])
    meta = await store.put_file("a.txt", "text/plain", chunks(b"a"), 10, owner_key="key_old")
    new = await store.rotate_key("alice", "key_new", "g" * 64)
    assert new is not None and new.rotated_from == "key_old"
    assert (await store.get_batch("msgbatch_r")).owner_key == "key_new"
    assert (await store.get_file(meta.id)).owner_key == "key_new"
    assert (await store.get_batch("msgbatch_o")).owner_key == "key_other"  # nobody else's moves
    assert (await store.list_batches(10, owner_key="key_old"))[0] == []


# ------------------------------------------------------------------------------------------------ migration

def old_sqlite(db) -> None:
    """An SQLite store as it was before owners were kept, with a batch (one item, its result) and a file."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, sql in sorted(schema.MIGRATIONS):
        if name >= OWNERS:
            continue
        for stmt in filter(str.strip, sql.split(";")):
            conn.execute(stmt)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, "2026-12-01T00:00:00Z"))
    assert "owner_key" not in [r[1] for r in conn.execute("PRAGMA table_info(batches)")]
    conn.execute("INSERT INTO batches (id, profile, created_at, expires_at, total, status, ended_at, succeeded) "
                 "VALUES ('msgbatch_old', 'test', '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z', 1, 'ended', "
                 "'2026-12-01T00:01:00Z', 1)")
    conn.execute("INSERT INTO batch_items (batch_id, idx, custom_id, params) VALUES ('msgbatch_old', 0, 'a', '{}')")
    conn.execute("INSERT INTO batch_results VALUES ('msgbatch_old', 0, 'succeeded', "
                 "'{\"custom_id\":\"a\",\"result\":{\"type\":\"succeeded\"}}')")
    conn.execute("INSERT INTO files (id, filename, mime_type, size_bytes, created_at) "
                 "VALUES ('file_old', 'old.txt', 'text/plain', 3, '2026-12-01T00:00:00Z')")
    conn.close()


async def old_postgres(url: str) -> None:
    """The same in PostgreSQL (the file's content in file_chunks)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for name, sql in sorted(pg_schema.MIGRATIONS):
            if name >= OWNERS:
                continue
            for stmt in pg_schema.statements(sql):
                await conn.execute(stmt)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", name, "2026-12-01T00:00:00Z")
        assert await conn.fetchval("SELECT count(*) FROM information_schema.columns "
                                   "WHERE table_name = 'batches' AND column_name = 'owner_key'") == 0
        await conn.execute("INSERT INTO batches (id, profile, created_at, expires_at, total, status, ended_at, "
                           "succeeded) VALUES ('msgbatch_old', 'test', '2026-12-01T00:00:00Z', "
                           "'2026-12-02T00:00:00Z', 1, 'ended', '2026-12-01T00:01:00Z', 1)")
        await conn.execute("INSERT INTO batch_items (batch_id, idx, custom_id, params) "
                           "VALUES ('msgbatch_old', 0, 'a', '{}'::bytea)")
        await conn.execute("INSERT INTO batch_results VALUES ('msgbatch_old', 0, 'succeeded', "
                           "'{\"custom_id\":\"a\",\"result\":{\"type\":\"succeeded\"}}'::bytea)")
        await conn.execute("INSERT INTO files (id, filename, mime_type, size_bytes, created_at) "
                           "VALUES ('file_old', 'old.txt', 'text/plain', 3, '2026-12-01T00:00:00Z')")
        await conn.execute("INSERT INTO file_chunks VALUES ('file_old', 0, 'old'::bytea)")
    finally:
        await conn.close()


async def make_old_store(home, settings: StoreConfig) -> None:
    """A store of the schema before ``0011_owner_keys`` where ``open_store(home, settings)`` will find it."""
    if settings.url:
        await old_postgres(settings.url)
    else:
        home.mkdir(parents=True, exist_ok=True)
        (home / "files").mkdir(mode=0o700, exist_ok=True)
        (home / "files" / "file_old").write_bytes(b"old")
        old_sqlite(home / "llmproxy.db")


async def test_an_old_database_opens_and_its_rows_are_the_admins(store_settings):
    home, settings = store_settings
    await make_old_store(home, settings)
    s = open_store(home, settings)
    try:
        old = await s.get_batch("msgbatch_old")
        assert old is not None and old.owner_key == "" and old.status == "ended"
        assert [r async for r in s.results("msgbatch_old")] == [b'{"custom_id":"a","result":{"type":"succeeded"}}']
        meta = await s.get_file("file_old")
        assert meta is not None and meta.owner_key == "" and await s.read_file("file_old") == b"old"
        assert (await s.list_batches(10, owner_key="key_a"))[0] == []
        assert [b.id for b in (await s.list_batches(10, owner_key=""))[0]] == ["msgbatch_old"]
        await s.create_batch(batch("msgbatch_new", "key_a"), [("x", b"{}")])  # the new column is written
        assert (await s.get_batch("msgbatch_new")).owner_key == "key_a"
    finally:
        await s.close()
    again = open_store(home, settings)  # opened once more: nothing left to migrate
    try:
        assert (await again.get_batch("msgbatch_old")).owner_key == ""
    finally:
        await again.close()
