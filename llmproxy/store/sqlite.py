"""The store in SQLite (stdlib ``sqlite3``, WAL) plus file bodies on disk.

Every database call runs on one worker thread that owns the connection, so the event loop never blocks on
SQLite and no two calls interleave. The schema, its migrations and the row mapping are in ``schema.py``.
``synchronous=NORMAL`` under WAL: a committed transaction survives the process being killed (not
necessarily a power cut).

File bodies live in ``files/<id>``: written to ``files/.<id>.part`` as they arrive, flushed, then renamed
into place, so a file is complete or absent. The client's filename is metadata only, never a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from llmproxy.store import (
    INSTANCE_FORGET_S,
    RESULT_TYPES,
    Batch,
    FileMeta,
    FileTooLarge,
    Instance,
    Item,
    Usage,
    new_id,
)
from llmproxy.store.schema import (
    BATCH_COLS,
    FILE_COLS,
    INSTANCE_COLS,
    USAGE_COLS,
    batch_row,
    file_row,
    migrate,
    now_iso,
    page_rows,
    scope,
    usage_row,
    usage_upsert,
)
from llmproxy.store.sqlite_keys import SqliteKeys

T = TypeVar("T")

#: an upload's partial file untouched this long was interrupted (a live upload writes to it continuously)
STALE_PART_SECONDS = 600
#: how long a statement waits for another process's lock on the database before "database is locked"
BUSY_TIMEOUT_S = 5.0


@contextlib.contextmanager
def open_lock(db_path: Path) -> Iterator[None]:
    """Held while a process opens the store: several may open a new one at once (``serve --workers N``), and
    switching the database to WAL does not wait for another connection's lock (SQLite answers "database is
    locked" at once, whatever the busy timeout). Under this lock one process creates, switches and migrates
    it; the others wait here, then find it in WAL mode and up to date. An advisory lock on
    ``<db>.lock`` (0600), released when the process lets go of it or dies."""
    fd = os.open(db_path.with_name(db_path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class SqliteStore(SqliteKeys):  # client keys: sqlite_keys.py
    kind = "sqlite"  # what /health and status --fleet call it

    def __init__(self, db_path: Path, files_dir: Path):
        self.db_path, self.files_dir = db_path, files_dir
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmproxy-store")
        self._conn: sqlite3.Connection | None = None
        self._pool.submit(self._open).result()

    # ------------------------------------------------------------------ plumbing
    def _open(self) -> None:
        self.db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.files_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        stale = time.time() - STALE_PART_SECONDS
        for part in self.files_dir.glob(".*.part"):  # uploads a crash interrupted (not another worker's, live)
            with contextlib.suppress(OSError):
                if part.stat().st_mtime < stale:
                    part.unlink()
        with open_lock(self.db_path):
            os.close(os.open(self.db_path, os.O_RDWR | os.O_CREAT, 0o600))  # 0600, and so its -wal and -shm
            conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_S)
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn)
        self._conn = conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._conn is not None, "store is closed"
        return fn(self._conn)

    async def close(self) -> None:
        def _close(conn: sqlite3.Connection) -> None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()

        if self._conn is not None:
            await self._run(_close)
            self._conn = None
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ batches
    async def create_batch(self, batch: Batch, items: list[tuple[str, bytes]]) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.execute("INSERT INTO batches (id, profile, created_at, expires_at, total, status, native, "
                             "owner_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (batch.id, batch.profile, batch.created_at, batch.expires_at, batch.total,
                              batch.status, orjson.dumps(batch.native) if batch.native else None, batch.owner_key))
                conn.executemany("INSERT INTO batch_items (batch_id, idx, custom_id, params) VALUES (?, ?, ?, ?)",
                                 ((batch.id, i, cid, params) for i, (cid, params) in enumerate(items)))

        await self._run(tx)

    async def get_batch(self, batch_id: str) -> Batch | None:
        def q(conn: sqlite3.Connection) -> Batch | None:
            row = conn.execute(f"SELECT {BATCH_COLS} FROM batches WHERE id = ?", (batch_id,)).fetchone()
            return batch_row(row) if row else None

        return await self._run(q)

    async def list_batches(self, limit: int, before_id: str | None = None, after_id: str | None = None,
                           profile: str | None = None, owner_key: str | None = None) -> tuple[list[Batch], bool]:
        where = scope(profile, owner_key)
        rows, more = await self._run(lambda c: page_rows(c, "batches", BATCH_COLS, limit, before_id, after_id,
                                                         where))
        return [batch_row(r) for r in rows], more

    async def unfinished_batches(self) -> list[Batch]:
        def q(conn: sqlite3.Connection) -> list[Batch]:
            return [batch_row(r) for r in conn.execute(
                f"SELECT {BATCH_COLS} FROM batches WHERE status != 'ended' ORDER BY seq")]

        return await self._run(q)

    async def update_batch(self, batch_id: str, **fields: Any) -> None:
        allowed = {"status", "ended_at", "cancel_initiated_at", "native"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
        if "native" in fields and fields["native"] is not None:
            fields["native"] = orjson.dumps(fields["native"])
        sets = ", ".join(f"{k} = ?" for k in fields)

        def tx(conn: sqlite3.Connection) -> None:
            conn.execute(f"UPDATE batches SET {sets} WHERE id = ?", (*fields.values(), batch_id))

        await self._run(tx)

    async def delete_batch(self, batch_id: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.execute("DELETE FROM batch_results WHERE batch_id = ?", (batch_id,))
                conn.execute("DELETE FROM batch_items WHERE batch_id = ?", (batch_id,))
                conn.execute("DELETE FROM batches WHERE id = ?", (batch_id,))

        await self._run(tx)

    async def pending_items(self, batch_id: str, after_index: int = -1, limit: int = 500) -> list[Item]:
        def q(conn: sqlite3.Connection) -> list[Item]:
            rows = conn.execute(
                "SELECT i.idx, i.custom_id, i.params FROM batch_items i WHERE i.batch_id = ? AND i.idx > ? "
                "AND NOT EXISTS (SELECT 1 FROM batch_results r WHERE r.batch_id = i.batch_id AND r.idx = i.idx) "
                "ORDER BY i.idx LIMIT ?", (batch_id, after_index, limit))
            return [Item(idx, cid, bytes(params)) for idx, cid, params in rows]

        return await self._run(q)

    async def claim_items(self, batch_id: str, owner: str, lease_seconds: float, limit: int,
                          after_index: int = -1) -> list[Item]:
        """One write transaction (other processes on this database wait for it); leases in this machine's
        clock (epoch seconds)."""
        def tx(conn: sqlite3.Connection) -> list[Item]:
            now = time.time()
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                status = conn.execute("SELECT status FROM batches WHERE id = ?", (batch_id,)).fetchone()
                if status is None or status[0] != "in_progress":
                    return []  # canceling (or ended): nothing more is handed out
                rows = conn.execute(
                    "SELECT i.idx, i.custom_id, i.params FROM batch_items i WHERE i.batch_id = ? AND i.idx > ? "
                    "AND (i.lease_until IS NULL OR i.lease_until <= ?) AND NOT EXISTS "
                    "(SELECT 1 FROM batch_results r WHERE r.batch_id = i.batch_id AND r.idx = i.idx) "
                    "ORDER BY i.idx LIMIT ?", (batch_id, after_index, now, limit)).fetchall()
                conn.executemany("UPDATE batch_items SET lease_owner = ?, lease_until = ? WHERE batch_id = ? "
                                 "AND idx = ?", ((owner, now + lease_seconds, batch_id, r[0]) for r in rows))
            return [Item(idx, cid, bytes(params)) for idx, cid, params in rows]

        return await self._run(tx)

    async def release_items(self, batch_id: str, owner: str, indexes: list[int] | None = None) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            sql = ("UPDATE batch_items SET lease_owner = NULL, lease_until = NULL "
                   "WHERE batch_id = ? AND lease_owner = ?")
            if indexes is None:
                return conn.execute(sql, (batch_id, owner)).rowcount
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                return sum(conn.execute(sql + " AND idx = ?", (batch_id, owner, i)).rowcount for i in indexes)

        return await self._run(tx)

    async def renew_items(self, batch_id: str, owner: str, indexes: list[int], lease_seconds: float) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            until = time.time() + lease_seconds
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                return sum(conn.execute("UPDATE batch_items SET lease_until = ? WHERE batch_id = ? AND idx = ? "
                                        "AND lease_owner = ?", (until, batch_id, i, owner)).rowcount
                           for i in indexes)

        return await self._run(tx)

    async def end_batch(self, batch_id: str, ended_at: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE batches SET status = 'ended', ended_at = ? WHERE id = ? AND status != 'ended' "
                "AND NOT EXISTS (SELECT 1 FROM batch_items i WHERE i.batch_id = batches.id AND NOT EXISTS "
                "(SELECT 1 FROM batch_results r WHERE r.batch_id = i.batch_id AND r.idx = i.idx))",
                (ended_at, batch_id)).rowcount == 1

        return await self._run(tx)

    async def put_result(self, batch_id: str, index: int, custom_id: str, kind: str, body: bytes) -> bool:
        if kind not in RESULT_TYPES:
            raise ValueError(kind)

        def tx(conn: sqlite3.Connection) -> bool:
            with conn:
                conn.execute("BEGIN")
                cur = conn.execute("INSERT OR IGNORE INTO batch_results VALUES (?, ?, ?, ?)",
                                   (batch_id, index, kind, body))
                if cur.rowcount != 1:
                    return False
                conn.execute(f"UPDATE batches SET {kind} = {kind} + 1 WHERE id = ?", (batch_id,))
                return True

        return await self._run(tx)

    async def finish_pending(self, batch_id: str, kind: str) -> int:
        if kind not in RESULT_TYPES:
            raise ValueError(kind)

        def tx(conn: sqlite3.Connection) -> int:
            with conn:
                conn.execute("BEGIN")
                cur = conn.execute(
                    "INSERT OR IGNORE INTO batch_results (batch_id, idx, kind, body) "
                    "SELECT i.batch_id, i.idx, ?, json_object('custom_id', i.custom_id, "
                    "'result', json_object('type', ?)) FROM batch_items i WHERE i.batch_id = ? "
                    "AND (i.lease_until IS NULL OR i.lease_until <= ?) "
                    "AND NOT EXISTS (SELECT 1 FROM batch_results r WHERE r.batch_id = i.batch_id AND r.idx = i.idx)",
                    (kind, kind, batch_id, time.time()))
                n = cur.rowcount
                conn.execute(f"UPDATE batches SET {kind} = {kind} + ? WHERE id = ?", (n, batch_id))
                return n

        return await self._run(tx)

    async def results(self, batch_id: str, page: int = 1000) -> AsyncIterator[bytes]:
        last = -1
        while True:
            rows = await self._run(lambda c, after=last: c.execute(
                "SELECT idx, body FROM batch_results WHERE batch_id = ? AND idx > ? ORDER BY idx LIMIT ?",
                (batch_id, after, page)).fetchall())
            for idx, body in rows:
                last = idx
                yield body if isinstance(body, bytes) else str(body).encode()
            if len(rows) < page:
                return

    # ------------------------------------------------------------------ files
    def _path(self, file_id: str) -> Path:
        if not file_id.replace("_", "").isalnum():  # ids are ours: never a path
            raise KeyError(file_id)
        return self.files_dir / file_id

    async def put_file(self, filename: str, mime_type: str, chunks: AsyncIterable[bytes],
                       max_bytes: int, owner_key: str = "") -> FileMeta:
        file_id = new_id("file_")
        part = self.files_dir / f".{file_id}.part"
        fh = await asyncio.to_thread(open, part, "wb", opener=lambda p, f: os.open(p, f, 0o600))
        size, buf, pending = 0, [], 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(max_bytes)
                buf.append(chunk)
                pending += len(chunk)
                if pending >= 1 << 20:
                    await asyncio.to_thread(fh.write, b"".join(buf))
                    buf, pending = [], 0
            await asyncio.to_thread(_finish_write, fh, b"".join(buf), part, self.files_dir / file_id)
        except BaseException:
            fh.close()
            part.unlink(missing_ok=True)
            raise
        meta = FileMeta(id=file_id, filename=filename, mime_type=mime_type, size_bytes=size, created_at=now_iso(),
                        owner_key=owner_key)

        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO files (id, filename, mime_type, size_bytes, created_at, owner_key) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (meta.id, meta.filename, meta.mime_type, meta.size_bytes, meta.created_at, owner_key))

        try:
            await self._run(tx)
        except BaseException:
            (self.files_dir / file_id).unlink(missing_ok=True)
            raise
        return meta

    async def get_file(self, file_id: str) -> FileMeta | None:
        def q(conn: sqlite3.Connection) -> FileMeta | None:
            row = conn.execute(f"SELECT {FILE_COLS} FROM files WHERE id = ?", (file_id,)).fetchone()
            return file_row(row) if row else None

        return await self._run(q)

    async def list_files(self, limit: int, before_id: str | None = None, after_id: str | None = None,
                         owner_key: str | None = None) -> tuple[list[FileMeta], bool]:
        where = scope(owner_key=owner_key)
        rows, more = await self._run(lambda c: page_rows(c, "files", FILE_COLS, limit, before_id, after_id, where))
        return [file_row(r) for r in rows], more

    async def file_content(self, file_id: str, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        fh = await asyncio.to_thread(open, self._path(file_id), "rb")
        try:
            while chunk := await asyncio.to_thread(fh.read, chunk_size):
                yield chunk
        finally:
            fh.close()

    async def read_file(self, file_id: str) -> bytes:
        return await asyncio.to_thread(self._path(file_id).read_bytes)

    async def delete_file(self, file_id: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount == 1

        gone = await self._run(tx)
        if gone:
            with contextlib.suppress(OSError, KeyError):
                self._path(file_id).unlink(missing_ok=True)
        return gone


    # ------------------------------------------------------------------ fleet: instances and usage ledger
    async def heartbeat(self, instance: Instance) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            now = time.time()
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"INSERT INTO instances ({INSTANCE_COLS}, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                             "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, "
                             "circuits = excluded.circuits, port = excluded.port",
                             (instance.id, instance.host, instance.port, instance.version, instance.pid,
                              instance.started_at, orjson.dumps(instance.circuits).decode(), now))
                conn.execute("DELETE FROM instances WHERE last_seen < ?", (now - INSTANCE_FORGET_S,))

        await self._run(tx)

    async def forget_instance(self, instance_id: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM instances WHERE id = ?", (instance_id,)))

    async def instances(self) -> list[Instance]:
        def q(conn: sqlite3.Connection) -> list[Instance]:
            rows = conn.execute(f"SELECT {INSTANCE_COLS}, last_seen FROM instances ORDER BY last_seen DESC")
            now = time.time()
            return [Instance(*r[:6], circuits=orjson.loads(r[6]), seen_ago_s=max(0.0, now - r[7])) for r in rows]

        return await self._run(q)

    async def add_usage(self, rows: list[Usage]) -> None:
        sql = usage_upsert("?")

        def tx(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, (r.key() + r.counts() for r in sorted(rows, key=Usage.key)))

        await self._run(tx)

    async def usage(self, since_minute: str) -> list[Usage]:
        def q(conn: sqlite3.Connection) -> list[Usage]:
            return [usage_row(r) for r in conn.execute(
                f"SELECT {USAGE_COLS} FROM usage_ledger WHERE minute >= ? ORDER BY minute", (since_minute,))]

        return await self._run(q)


def _finish_write(fh, tail: bytes, part: Path, final: Path) -> None:
    fh.write(tail)
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()
    os.replace(part, final)
