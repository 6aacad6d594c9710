"""The store's contract, one suite run against both backends (SQLite under a temp home, PostgreSQL in a
throwaway cluster: tests/store/conftest.py): migrations applied once, batches created/read/listed (paging,
per profile, unknown cursors)/updated/deleted, pending items, first result wins (also under concurrency),
finishing the rest, results in index order, files stored in chunks and read back in chunks, complete or
absent (too large or broken mid-upload: nothing kept), and items claimed under a lease by concurrent
claimers, each exactly once. Then what only the PostgreSQL one has: several instances migrating a new
database at the same moment, and the URL's password kept out of every error."""

from __future__ import annotations

import asyncio
import queue
import random
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.settings import DATABASE_URL_ENV, StoreConfig
from llmproxy.store import Batch, FileTooLarge, open_store, pg_schema, schema
from llmproxy.store.postgres import PostgresStore, StoreUnavailable
from llmproxy.store.sqlite import SqliteStore


def batch(bid: str, n: int = 3, profile: str = "p") -> Batch:
    return Batch(id=bid, profile=profile, created_at="2026-01-01T00:00:00Z", expires_at="2026-01-02T00:00:00Z",
                 total=n)


async def chunks(*parts: bytes):
    for p in parts:
        yield p


async def stored_chunks(store) -> int:
    """What the backend keeps of file content: rows in file_chunks, or bodies (and partial bodies) on disk."""
    if isinstance(store, PostgresStore):
        return await (await store._db()).fetchval("SELECT count(*) FROM file_chunks")
    return len(list(store.files_dir.iterdir()))


async def migration_names(store) -> list[str]:
    if isinstance(store, PostgresStore):
        rows = await (await store._db()).fetch("SELECT name FROM schema_migrations ORDER BY name")
        return [r[0] for r in rows]
    return [r[0] for r in await store._run(lambda c: c.execute(
        "SELECT name FROM schema_migrations ORDER BY name").fetchall())]


# ---------------------------------------------------------------------------------------------- batches

async def test_migrations_named_and_applied_once(store_settings):
    for _ in range(2):  # reopening applies nothing twice
        s = open_store(*store_settings)
        try:
            names = await migration_names(s)
        finally:
            await s.close()
        expected = pg_schema.MIGRATIONS if isinstance(s, PostgresStore) else schema.MIGRATIONS
        assert names == [n for n, _ in expected] == sorted(names)
    assert [n for n, _ in pg_schema.MIGRATIONS] == [n for n, _ in schema.MIGRATIONS]  # the same names on both


async def test_results_first_one_wins_pending_and_finish(store):
    await store.create_batch(batch("msgbatch_a"), [("x", b"{}"), ("y", b'{"q":1}'), ("z", b"{}")])
    items = await store.pending_items("msgbatch_a")
    assert [(i.index, i.custom_id, i.params) for i in items] == [(0, "x", b"{}"), (1, "y", b'{"q":1}'),
                                                                   (2, "z", b"{}")]
    assert await store.put_result("msgbatch_a", 1, "y", "succeeded", b'{"custom_id":"y"}') is True
    assert await store.put_result("msgbatch_a", 1, "y", "errored", b'{"custom_id":"y2"}') is False
    assert [i.custom_id for i in await store.pending_items("msgbatch_a")] == ["x", "z"]
    assert [i.custom_id for i in await store.pending_items("msgbatch_a", after_index=0)] == ["z"]
    assert [i.custom_id for i in await store.pending_items("msgbatch_a", limit=1)] == ["x"]
    assert await store.finish_pending("msgbatch_a", "canceled") == 2
    assert await store.finish_pending("msgbatch_a", "expired") == 0
    b = await store.get_batch("msgbatch_a")
    assert b.progress() == {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 2, "expired": 0}
    lines = [line async for line in store.results("msgbatch_a")]
    # the same bytes on both backends
    assert lines == [b'{"custom_id":"x","result":{"type":"canceled"}}', b'{"custom_id":"y"}',
                     b'{"custom_id":"z","result":{"type":"canceled"}}']
    with pytest.raises(ValueError):
        await store.put_result("msgbatch_a", 0, "x", "bogus", b"{}")


async def test_first_write_wins_under_concurrency(store):
    await store.create_batch(batch("msgbatch_c", 2), [("a", b"{}"), ("b", b"{}")])
    writes = [store.put_result("msgbatch_c", 0, "a", "succeeded", f'{{"n":{n}}}'.encode()) for n in range(24)]
    writes.append(store.finish_pending("msgbatch_c", "canceled"))
    stored = await asyncio.gather(*writes)
    assert sum(s is True for s in stored[:-1]) + stored[-1] == 2  # item 0 once, item 1 by finish_pending
    lines = [line async for line in store.results("msgbatch_c")]
    assert len(lines) == 2
    counts = (await store.get_batch("msgbatch_c")).counts
    assert sum(counts.values()) == 2


async def test_results_by_index_whatever_the_order_written(store):
    n = 9
    await store.create_batch(batch("msgbatch_r", n), [(f"c{i}", b"{}") for i in range(n)])
    order = list(range(n))
    random.Random(7).shuffle(order)
    for i in order:
        assert await store.put_result("msgbatch_r", i, f"c{i}", "succeeded", f'"{i}"'.encode())
    assert [line async for line in store.results("msgbatch_r", page=2)] == [f'"{i}"'.encode() for i in range(n)]
    assert await store.pending_items("msgbatch_r") == []


async def test_get_update_unfinished_and_delete(store):
    assert await store.get_batch("msgbatch_none") is None
    await store.create_batch(batch("msgbatch_u", 1), [("a", b"{}")])
    await store.create_batch(batch("msgbatch_v", 0), [])
    native = {"provider": "anthropic", "id": "msgbatch_up", "request_counts": {"processing": 1}}
    await store.update_batch("msgbatch_u", status="canceling", cancel_initiated_at="2026-01-01T00:00:01Z",
                             native=native)
    got = await store.get_batch("msgbatch_u")
    assert (got.status, got.cancel_initiated_at, got.native, got.total) == \
           ("canceling", "2026-01-01T00:00:01Z", native, 1)
    await store.update_batch("msgbatch_v", status="ended", ended_at="2026-01-01T00:00:02Z")
    assert [b.id for b in await store.unfinished_batches()] == ["msgbatch_u"]
    with pytest.raises(ValueError):
        await store.update_batch("msgbatch_u", total=5)
    await store.put_result("msgbatch_u", 0, "a", "succeeded", b"{}")
    await store.delete_batch("msgbatch_u")
    assert await store.get_batch("msgbatch_u") is None
    assert [line async for line in store.results("msgbatch_u")] == []
    assert await store.pending_items("msgbatch_u") == []


async def test_paging_newest_first(store):
    for i in range(5):
        await store.create_batch(batch(f"msgbatch_{i}", 0), [])
    page, more = await store.list_batches(2)
    assert [b.id for b in page] == ["msgbatch_4", "msgbatch_3"] and more
    page, more = await store.list_batches(2, after_id="msgbatch_1")
    assert [b.id for b in page] == ["msgbatch_0"] and not more
    page, more = await store.list_batches(2, before_id="msgbatch_1")
    assert [b.id for b in page] == ["msgbatch_3", "msgbatch_2"] and more
    page, more = await store.list_batches(10, before_id="msgbatch_3")
    assert [b.id for b in page] == ["msgbatch_4"] and not more
    with pytest.raises(KeyError, match="msgbatch_nope"):
        await store.list_batches(2, after_id="msgbatch_nope")


async def test_listing_one_profiles_batches(store):
    for i in range(6):
        await store.create_batch(batch(f"msgbatch_{i}", 0, profile="a" if i % 2 else "b"), [])
    page, more = await store.list_batches(2, profile="a")
    assert [b.id for b in page] == ["msgbatch_5", "msgbatch_3"] and more
    page, more = await store.list_batches(2, after_id="msgbatch_3", profile="a")
    assert [b.id for b in page] == ["msgbatch_1"] and not more
    page, more = await store.list_batches(1, before_id="msgbatch_1", profile="a")
    assert [b.id for b in page] == ["msgbatch_3"] and more
    with pytest.raises(KeyError):  # another profile's batch is no cursor here
        await store.list_batches(2, after_id="msgbatch_4", profile="a")
    assert len((await store.list_batches(10))[0]) == 6


# ---------------------------------------------------------------------------------------------- files

async def test_files_stored_and_read_in_chunks(store):
    rng = random.Random(3)
    body = rng.randbytes(600 * 1024 + 17)  # more than two 256 KiB rows
    cuts = sorted(rng.sample(range(1, len(body)), 40))
    parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    meta = await store.put_file("big.bin", "application/octet-stream", chunks(*parts), max_bytes=len(body))
    assert meta.size_bytes == len(body) and meta.id.startswith("file_")
    got = [c async for c in store.file_content(meta.id, 64 * 1024)]
    assert b"".join(got) == body and max(map(len, got)) <= 64 * 1024
    assert await store.read_file(meta.id) == body
    assert await store.get_file(meta.id) == meta
    if isinstance(store, PostgresStore):  # stored as it arrived, in rows of at most 256 KiB
        rows = await (await store._db()).fetch("SELECT n, length(data) FROM file_chunks WHERE file_id = $1 "
                                               "ORDER BY n", meta.id)
        assert [tuple(r) for r in rows] == [(0, 256 * 1024), (1, 256 * 1024), (2, len(body) - 512 * 1024)]
    empty = await store.put_file("empty.txt", "text/plain", chunks(), max_bytes=10)
    assert empty.size_bytes == 0 and await store.read_file(empty.id) == b""
    small = await store.put_file("a.txt", "text/plain", chunks(b"ab", b"cd"), max_bytes=10)
    assert b"".join([c async for c in store.file_content(small.id, 3)]) == b"abcd"
    page, more = await store.list_files(2)
    assert [f.id for f in page] == [small.id, empty.id] and more
    page, more = await store.list_files(2, after_id=empty.id)
    assert [f.id for f in page] == [meta.id] and not more
    page, more = await store.list_files(2, before_id=meta.id)
    assert [f.id for f in page] == [small.id, empty.id] and not more
    with pytest.raises(KeyError):
        await store.list_files(2, after_id="file_nope")
    assert await store.delete_file(meta.id) is True
    assert await store.delete_file(meta.id) is False
    assert await store.get_file(meta.id) is None
    with pytest.raises(FileNotFoundError):
        await store.read_file(meta.id)
    with pytest.raises(FileNotFoundError):
        [c async for c in store.file_content(meta.id)]


async def test_a_file_is_complete_or_absent(store):
    with pytest.raises(FileTooLarge):
        await store.put_file("b.txt", "text/plain", chunks(b"x" * 300_000, b"y" * 300_000), max_bytes=500_000)

    async def broken():
        yield b"z" * 300_000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put_file("c.txt", "text/plain", broken(), max_bytes=10**7)
    assert await store.list_files(10) == ([], False)
    assert await stored_chunks(store) == 0


# ---------------------------------------------------------------------------------------------- claims

async def test_claims_lease_release_and_expiry(store):
    await store.create_batch(batch("msgbatch_l", 5), [(f"c{i}", b"{}") for i in range(5)])
    await store.put_result("msgbatch_l", 1, "c1", "succeeded", b"{}")
    a = await store.claim_items("msgbatch_l", "inst-a", 60, 2)
    assert [(i.index, i.custom_id) for i in a] == [(0, "c0"), (2, "c2")]  # item 1 has its result
    b = await store.claim_items("msgbatch_l", "inst-b", 60, 10)
    assert [i.index for i in b] == [3, 4]
    assert await store.claim_items("msgbatch_l", "inst-a", 60, 10) == []  # own leases are not handed back
    assert await store.release_items("msgbatch_l", "inst-b", [4]) == 1
    assert [i.index for i in await store.claim_items("msgbatch_l", "inst-c", 0, 10)] == [4]
    # a zero-second lease has already run out: another claimer gets the item (its owner "died")
    assert [i.index for i in await store.claim_items("msgbatch_l", "inst-d", 60, 10)] == [4]
    await store.put_result("msgbatch_l", 0, "c0", "succeeded", b"{}")
    assert await store.release_items("msgbatch_l", "inst-a") == 2  # both leases, result or not
    assert [i.index for i in await store.claim_items("msgbatch_l", "inst-e", 60, 10)] == [2]
    assert await store.release_items("msgbatch_l", "nobody") == 0


async def test_concurrent_claimers_get_every_item_exactly_once(store_settings):
    """Four "instances" (each its own store, so its own pool on PostgreSQL), three claimers each, all
    claiming small slices of one batch at once: no item is handed out twice, none is left out."""
    n = 400
    stores = [open_store(*store_settings) for _ in range(4)]
    try:
        await stores[0].create_batch(batch("msgbatch_x", n), [(f"c{i}", b"{}") for i in range(n)])

        async def claimer(s, owner: str) -> list[int]:
            got: list[int] = []
            while items := await s.claim_items("msgbatch_x", owner, 300, 7):
                got += [i.index for i in items]
            return got

        per = await asyncio.gather(*(claimer(s, f"inst{k}-task{t}") for k, s in enumerate(stores)
                                     for t in range(3)))
    finally:
        for s in stores:
            await s.close()
    every = [i for got in per for i in got]
    assert sorted(every) == list(range(n))  # each exactly once
    assert sum(1 for got in per if got) >= 2  # they did share the work


def _claim_all_in_a_process(home: str, owner: str, out) -> None:
    async def go() -> list[int]:
        s = open_store(Path(home))
        got: list[int] = []
        try:
            while items := await s.claim_items("msgbatch_p", owner, 300, 5):
                got += [i.index for i in items]
        finally:
            await s.close()
        return got

    out.put(asyncio.run(go()))


async def test_sqlite_claimers_in_several_processes_get_every_item_once(tmp_path, monkeypatch):
    """serve --workers N shares one SQLite file: claims from several processes at once (each claim one
    write transaction) still hand each item out once."""
    import multiprocessing

    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    s = open_store(tmp_path)
    await s.create_batch(batch("msgbatch_p", 300), [(f"c{i}", b"{}") for i in range(300)])
    await s.close()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all_in_a_process, args=(str(tmp_path), f"w{k}", out)) for k in range(3)]
    for p in procs:
        p.start()
    per: list[list[int]] = []
    while len(per) < len(procs) and not any(p.exitcode for p in procs):  # a failed claimer ends the wait
        try:
            per.append(out.get(timeout=0.2))
        except queue.Empty:
            pass
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(i for got in per for i in got) == list(range(300))


# ---------------------------------------------------------------------------------------------- PostgreSQL only

async def test_instances_starting_together_migrate_once(pg_url, tmp_path):
    stores = [open_store(tmp_path, StoreConfig(url=pg_url, pool_size=2)) for _ in range(6)]
    try:
        assert all(isinstance(s, PostgresStore) for s in stores)
        await asyncio.gather(*(s.unfinished_batches() for s in stores))  # each opens and migrates at once
        rows = await (await stores[0]._db()).fetch("SELECT name FROM schema_migrations ORDER BY name")
    finally:
        for s in stores:
            await s.close()
    assert [r[0] for r in rows] == [n for n, _ in pg_schema.MIGRATIONS]


async def test_the_environment_url_wins_and_sqlite_stays_the_default(pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert isinstance(open_store(tmp_path), SqliteStore)
    monkeypatch.setenv(DATABASE_URL_ENV, pg_url)
    s = open_store(tmp_path, StoreConfig(url="postgresql://other:pw@127.0.0.1:1/none"))
    try:
        assert isinstance(s, PostgresStore) and await s.unfinished_batches() == []
    finally:
        await s.close()


async def test_the_password_never_shows(pg_cluster, tmp_path, monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    secret = pg_cluster.password
    wrong = pg_cluster.url("postgres").replace(secret, secret + "-wrong")
    for url in (wrong, pg_cluster.url("no_such_db"), f"postgresql://llmproxy:{secret}@127.0.0.1:1/x",
                f"postgresql://llmproxy:{secret}@127.0.0.1:notaport/x"):
        s = open_store(tmp_path, StoreConfig(url=url))
        assert secret not in repr(s) and "***" in repr(s)
        with pytest.raises(StoreUnavailable) as err:
            await s.get_batch("msgbatch_x")
        text = str(err.value) + repr(err.value)
        assert secret not in text and "127.0.0.1" in text, text
        assert err.value.__cause__ is None and err.value.__suppress_context__
        await s.close()
    with pytest.raises(ValueError) as err:
        open_store(tmp_path, StoreConfig(url=f"mysql://u:{secret}@h/db"))
    assert secret not in str(err.value)


@settings(max_examples=100, deadline=None)
@given(user=st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
       password=st.text(min_size=4, max_size=24).filter(lambda p: p.strip() == p and p.isprintable()),
       host=st.sampled_from(["127.0.0.1", "db.internal", "[::1]"]))
def test_no_password_survives_redaction(user, password, host):
    """Whatever the password (percent-encoded in the URL, as it must be), neither the store's name nor an
    error text that quotes it, raw or encoded, shows it."""
    quoted = quote(password, safe="")
    url = f"postgresql://{user}:{quoted}@{host}:5432/db"
    name = pg_schema.redact_url(url)
    assert name == f"postgresql://{user}:***@{host}:5432/db"
    message = pg_schema.scrub(f"auth failed for {url} with {password!s} / {quoted}", url)
    assert password not in message and quoted not in message


@pytest.mark.parametrize("table, problem", [
    ('[store]\npool_size = 0\n', "store.pool_size"),
    ('[store]\nurl = 5\n', "store.url"),
    ('[store]\ndatabase = "x"\n', "store.database"),
])
def test_store_options_are_checked(home, table, problem):
    from llmproxy import config

    (home / "config.toml").write_text(table)
    _, problems = config.load(home / "config.toml", strict=False)
    assert any(problem in p for p in problems), problems


def test_store_options_are_read(home):
    from llmproxy import config

    (home / "config.toml").write_text('[store]\nurl = "postgresql://u:pw@h/db"\npool_size = 3\n')
    cfg, problems = config.load(home / "config.toml", strict=False)
    assert problems == [] and cfg.store == StoreConfig(url="postgresql://u:pw@h/db", pool_size=3)


async def test_close_does_not_wait_forever_on_an_abandoned_reader(pg_url):
    """A download whose reader went away mid-file still holds a pooled connection (inside its snapshot);
    closing the store cuts it after close_timeout instead of waiting for it forever."""
    s = PostgresStore(pg_url, close_timeout=0.2)
    meta = await s.put_file("f.bin", "application/octet-stream", chunks(b"x" * 300_000), max_bytes=10**6)
    reader = s.file_content(meta.id, 1000)
    assert await reader.__anext__() == b"x" * 1000
    await asyncio.wait_for(s.close(), 10)


def test_redact_url():
    assert pg_schema.redact_url("postgresql://u:p%40ss@db.example:5432/x?password=q") == \
        "postgresql://u:***@db.example:5432/x"
    assert pg_schema.redact_url("postgresql://u@h/x") == "postgresql://u@h/x"
    assert pg_schema.scrub("failed for p%40ss and p@ss and q", "postgresql://u:p%40ss@h/x?password=q") == \
        "failed for *** and *** and ***"


async def test_a_real_constraint_keeps_one_result(pg_url, tmp_path):
    """First write wins is the primary key's doing, not the store's care: a second row is refused by the
    database itself."""
    s = open_store(tmp_path, StoreConfig(url=pg_url))
    try:
        await s.create_batch(batch("msgbatch_k", 1), [("a", b"{}")])
        assert await s.put_result("msgbatch_k", 0, "a", "succeeded", b"{}")
        with pytest.raises(asyncpg.UniqueViolationError):
            await (await s._db()).execute("INSERT INTO batch_results VALUES ('msgbatch_k', 0, 'errored', ''::bytea)")
    finally:
        await s.close()
