"""The store on its own: named migrations applied once (several processes opening a new store wait for one
another), first result wins, pending items, finishing the rest, the documented request_counts beside the
live progress, newest-first paging (per profile) with unknown cursors refused, file bodies written aside then
moved into place, and the Files API's filename rule."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.store import Batch, FileTooLarge, filename_problem, open_store
from llmproxy.store.schema import MIGRATIONS


def batch(bid: str, n: int = 3, profile: str = "p") -> Batch:
    return Batch(id=bid, profile=profile, created_at="2026-01-01T00:00:00Z", expires_at="2026-01-02T00:00:00Z",
                 total=n)


async def test_migrations_named_and_applied_once(tmp_path):
    store = open_store(tmp_path)
    await store.close()
    store = open_store(tmp_path)  # reopening applies nothing twice
    await store.close()
    with sqlite3.connect(tmp_path / "llmproxy.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert names == [n for n, _ in MIGRATIONS] == sorted(names)


def _open_and_close(home: str, go=None) -> None:
    import asyncio

    if go is not None:
        go.wait(30)

    async def run() -> None:
        await open_store(Path(home)).close()

    asyncio.run(run())


def _flock_waiters(lock: Path) -> set[int]:
    """The pids blocked on an advisory lock of ``lock`` (Linux: the ``->`` lines of /proc/locks)."""
    ino = lock.stat().st_ino
    out = set()
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        if len(f) > 6 and f[1] == "->" and f[2] == "FLOCK" and f[6].rsplit(":", 1)[-1] == str(ino):
            out.add(int(f[5]))
    return out


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads /proc/locks (Linux)")
def test_workers_opening_a_new_store_at_once_migrate_it_once(tmp_path):
    """serve --workers N on a fresh home: while one worker is creating the store (here the test, holding the
    open lock and a write transaction on the brand-new database, not yet in WAL mode), the others wait for it
    and none fails. Before, a second opener's ``PRAGMA journal_mode=WAL`` answered "database is locked" at
    once whatever the busy timeout. Deterministic: the transaction is held until every opener is seen
    blocked on the lock (or one has exited, which fails the test)."""
    import multiprocessing

    from llmproxy.store.sqlite import open_lock

    home = tmp_path / "h"
    home.mkdir()
    db = home / "llmproxy.db"
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=_open_and_close, args=(str(home), go)) for _ in range(4)]
    for p in procs:  # forked before the lock is taken (a child must not inherit the lock's descriptor)
        p.start()
    pids = {p.pid for p in procs}
    with open_lock(db):
        first = sqlite3.connect(db, isolation_level=None)
        first.execute("BEGIN IMMEDIATE")
        first.execute("CREATE TABLE being_created (x)")
        go.set()
        for _ in range(6000):  # until every opener waits on the lock (or one has exited: that fails below)
            if pids <= _flock_waiters(home / "llmproxy.db.lock") or not all(p.is_alive() for p in procs):
                break
            procs[0].join(0.01)
        else:
            raise AssertionError(f"the openers never queued on the lock: {open('/proc/locks').read()}")
        first.execute("ROLLBACK")
        first.close()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with sqlite3.connect(db) as conn:
        assert len(conn.execute("SELECT name FROM schema_migrations").fetchall()) == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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
        final = {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 2, "expired": 0}
        assert b.progress() == final
        # as the API documents them: nothing but processing until the batch has ended, then the final counts
        assert b.request_counts() == {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        await store.update_batch("msgbatch_a", status="ended", ended_at="2026-01-01T00:01:00Z")
        assert (await store.get_batch("msgbatch_a")).request_counts() == final
        lines = [line async for line in store.results("msgbatch_a")]
        assert lines[1] == b'{"custom_id":"y"}' and b'"canceled"' in lines[0] and len(lines) == 3
        await store.delete_batch("msgbatch_a")
        assert await store.get_batch("msgbatch_a") is None
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


@pytest.mark.parametrize("name, problem", [
    ("report.pdf", None), ("a%2Fb.txt", None), ("..", None), ("résumé 2026 (final).txt", None),
    ("x" * 255, None), ("a\x7fb", None),
    ("", "Field required"), (None, "Field required"), ("x" * 256, "1-255 characters, got 256"),
    ("a/b.txt", "'/'"), ("..\\win.txt", "'\\\\'"), ("tab\there", "'\\t'"), ("nul\x00", "'\\x00'"),
    ('q"uote', "'\"'"), ("a<b>c:d|e?f*g", "'*', ':', '<', '>', '?', '|'"),
])
def test_filename_rule(name, problem):
    """The Files API's documented rule: 1-255 characters, none of < > : " | ? * \\ / or U+0000-U+001F.
    A name that passes is kept as sent (it is metadata, never a path)."""
    got = filename_problem(name)
    if problem is None:
        assert got is None
    else:
        assert got is not None and got.startswith("filename: ") and problem in got, got


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('<>:"|?*\\/\t\n\x00\x1f'), max_size=300))
def test_filename_rule_property(name):
    """Accepted exactly when 1-255 characters with none forbidden; a refusal names every forbidden character
    found (so the client can fix the name), and an accepted name is kept as it is (never rewritten)."""
    forbidden = set('<>:"|?*\\/') | {chr(c) for c in range(32)}
    got = filename_problem(name)
    ok = 1 <= len(name) <= 255 and not (set(name) & forbidden)
    assert (got is None) == ok
    if got is not None and 1 <= len(name) <= 255:
        assert all(repr(c) in got for c in set(name) & forbidden)
