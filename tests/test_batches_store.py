"""The store on its own: named migrations applied once, first result wins, pending items, finishing the rest,
newest-first paging with unknown cursors refused, file bodies written aside then moved into place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llmproxy.store import Batch, FileTooLarge, clean_filename, open_store
from llmproxy.store.schema import MIGRATIONS


def batch(bid: str, n: int = 3) -> Batch:
    return Batch(id=bid, profile="p", created_at="2026-01-01T00:00:00Z", expires_at="2026-01-02T00:00:00Z", total=n)


async def test_migrations_named_and_applied_once(tmp_path):
    store = open_store(tmp_path)
    await store.close()
    store = open_store(tmp_path)  # reopening applies nothing twice
    await store.close()
    with sqlite3.connect(tmp_path / "llmproxy.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert names == [n for n, _ in MIGRATIONS] == sorted(names)


def _open_and_close(home: str) -> None:
    import asyncio

    async def go() -> None:
        await open_store(Path(home)).close()

    asyncio.run(go())


def test_workers_opening_a_new_store_at_once_migrate_it_once(tmp_path):
    """serve --workers N: every worker opens the store as it starts; the first migrates, none fails."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for round_ in range(4):
        home = tmp_path / f"h{round_}"
        procs = [ctx.Process(target=_open_and_close, args=(str(home),)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        with sqlite3.connect(home / "llmproxy.db") as conn:
            assert len(conn.execute("SELECT name FROM schema_migrations").fetchall()) == len(MIGRATIONS)


async def test_results_first_one_wins_and_pending(tmp_path):
    store = open_store(tmp_path)
    try:
        await store.create_batch(batch("msgbatch_a"), [("x", b"{}"), ("y", b"{}"), ("z", b"{}")])
        assert [i.custom_id for i in await store.pending_items("msgbatch_a")] == ["x", "y", "z"]
        assert await store.put_result("msgbatch_a", 1, "y", "succeeded", b'{"custom_id":"y"}') is True
        assert await store.put_result("msgbatch_a", 1, "y", "errored", b'{"custom_id":"y2"}') is False
        assert [i.custom_id for i in await store.pending_items("msgbatch_a")] == ["x", "z"]
        assert [i.custom_id for i in await store.pending_items("msgbatch_a", after_index=0)] == ["z"]
        assert await store.finish_pending("msgbatch_a", "canceled") == 2
        b = await store.get_batch("msgbatch_a")
        assert b.request_counts() == {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 2, "expired": 0}
        lines = [line async for line in store.results("msgbatch_a")]
        assert lines[1] == b'{"custom_id":"y"}' and b'"canceled"' in lines[0] and len(lines) == 3
        await store.delete_batch("msgbatch_a")
        assert await store.get_batch("msgbatch_a") is None
    finally:
        await store.close()


async def test_paging_newest_first(tmp_path):
    store = open_store(tmp_path)
    try:
        for i in range(5):
            await store.create_batch(batch(f"msgbatch_{i}", 0), [])
        page, more = await store.list_batches(2)
        assert [b.id for b in page] == ["msgbatch_4", "msgbatch_3"] and more
        page, more = await store.list_batches(2, after_id="msgbatch_1")
        assert [b.id for b in page] == ["msgbatch_0"] and not more
        page, more = await store.list_batches(2, before_id="msgbatch_1")
        assert [b.id for b in page] == ["msgbatch_3", "msgbatch_2"] and more
        with pytest.raises(KeyError):
            await store.list_batches(2, after_id="msgbatch_nope")
    finally:
        await store.close()


async def test_files_written_aside_and_limited(tmp_path):
    store = open_store(tmp_path)

    async def chunks(*parts: bytes):
        for p in parts:
            yield p

    try:
        meta = await store.put_file("a.txt", "text/plain", chunks(b"ab", b"cd"), max_bytes=10)
        assert (tmp_path / "files" / meta.id).read_bytes() == b"abcd" and meta.size_bytes == 4
        with pytest.raises(FileTooLarge):
            await store.put_file("b.txt", "text/plain", chunks(b"x" * 8, b"y" * 8), max_bytes=10)
        assert [p.name for p in (tmp_path / "files").iterdir()] == [meta.id]
        assert b"".join([c async for c in store.file_content(meta.id, 3)]) == b"abcd"
        assert await store.delete_file(meta.id) and not (tmp_path / "files" / meta.id).exists()
        assert await store.delete_file(meta.id) is False
    finally:
        await store.close()


def test_clean_filename():
    assert clean_filename("../../x.txt") == "x.txt"
    assert clean_filename("C:\\\\Users\\\\me\\\\y.pdf") == "y.pdf"
    assert clean_filename("") == "upload"
