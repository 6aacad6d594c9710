"""The store in PostgreSQL (asyncpg, one pool per instance): the same data and guarantees as ``sqlite.py``,
shared by every instance that names the same database (docs/scaling.md).

* The pool is opened on first use, on the event loop that uses it (``open_store`` runs in a thread), and
  the migrations are applied then, under an advisory lock (``pg_schema.migrate``).
* One result per item is enforced by the primary key: ``INSERT … ON CONFLICT DO NOTHING``, and the batch's
  counter moves in the same transaction only when the row was stored.
* Items are claimed under a lease with ``SELECT … FOR UPDATE SKIP LOCKED`` inside one ``UPDATE …
  RETURNING``: concurrent claimers (any instance) never receive the same item while its lease runs. Lease
  times are the database's clock, so instances need not agree on theirs.
* A file's content is written as it arrives, in ``CHUNK_BYTES`` rows, inside the transaction that finally
  inserts its metadata: complete or absent, never the whole file in memory; read back the same way.
* The URL's password never appears in an error or a repr (``pg_schema.redact_url``/``scrub``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from llmproxy.store import (
    INSTANCE_FORGET_S,
    RESULT_TYPES,
    Batch,
    FileMeta,
    FileTooLarge,
    Instance,
    Item,
    StoreUnavailable,
    Usage,
    new_id,
)
from llmproxy.store.pg_keys import PgKeys
from llmproxy.store.pg_schema import CHUNK_BYTES, migrate, page_rows, redact_url, scrub
from llmproxy.store.schema import (
    BATCH_COLS,
    FILE_COLS,
    INSTANCE_COLS,
    USAGE_COLS,
    batch_row,
    file_row,
    now_iso,
    scope,
    usage_row,
    usage_upsert,
)

#: seconds to wait for a connection to the server before the store answers StoreUnavailable
CONNECT_TIMEOUT_S = 10.0
#: seconds ``close`` waits for connections still in use before cutting them
CLOSE_TIMEOUT_S = 5.0

#: a batch of at least this many items refreshes the planner's statistics of batch_items (create_batch)
ANALYZE_ITEMS = 1000
PENDING = "NOT EXISTS (SELECT 1 FROM batch_results r WHERE r.batch_id = i.batch_id AND r.idx = i.idx)"


__all__ = ["PostgresStore", "StoreUnavailable"]


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the server is unreachable or went away (refused, reset, shut down, starting up),
    rather than a mistake in a statement. A socket error counts only when the driver raised it: the same
    ``ConnectionResetError`` from an upload's source is the client going away, not the database."""
    if isinstance(exc, asyncpg.InterfaceError):
        return "closed" in str(exc)  # "connection is closed"; other interface errors are our bugs
    if isinstance(exc, OSError):
        return raised_by_driver(exc)
    return isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                            asyncpg.AdminShutdownError, asyncpg.CrashShutdownError))


def raised_by_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False


def _guarded(cls: type) -> type:
    """Every public call of the store raises StoreUnavailable (named without the password) when the server
    cannot be reached; the pool reconnects on the next call (asyncpg replaces a closed connection on
    acquire), so callers retry with backoff and nothing else changes."""
    def down(self: PostgresStore, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"the store at {self.name} is unavailable: {type(exc).__name__}: "
                                f"{scrub(str(exc), self._url)}")

    def wrap(fn):
        @functools.wraps(fn)
        async def call(self, *args, **kwargs):
            try:
                return await fn(self, *args, **kwargs)
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                raise down(self, exc) from None
        return call

    def wrap_gen(fn):
        @functools.wraps(fn)
        async def gen(self, *args, **kwargs):
            try:
                async with contextlib.aclosing(fn(self, *args, **kwargs)) as inner:
                    async for value in inner:
                        yield value
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                raise down(self, exc) from None
        return gen

    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or name == "close":
            continue
        if inspect.isasyncgenfunction(fn):
            setattr(cls, name, wrap_gen(fn))
        elif inspect.iscoroutinefunction(fn):
            setattr(cls, name, wrap(fn))
    return cls


@_guarded
class PostgresStore(PgKeys):  # client keys: pg_keys.py
    kind = "postgres"  # what /health and status --fleet call it

    def __init__(self, url: str, pool_size: int = 10, close_timeout: float = CLOSE_TIMEOUT_S):
        self.name = redact_url(url)
        self.close_timeout = close_timeout
        if urlsplit(url).scheme not in ("postgresql", "postgres"):
            raise ValueError(f"store url must start with postgresql://, got {self.name}")
        self._url, self.pool_size = url, pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.name})"

    # ------------------------------------------------------------------ plumbing
    async def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            self._opening = self._opening or asyncio.Lock()
            async with self._opening:
                if self._pool is None:
                    self._pool = await self._connect()
        return self._pool

    async def _connect(self) -> asyncpg.Pool:
        try:
            pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self.pool_size,
                                             timeout=CONNECT_TIMEOUT_S, command_timeout=None)
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise StoreUnavailable(f"cannot open the store at {self.name}: "
                                   f"{type(e).__name__}: {scrub(str(e), self._url)}") from None
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def close(self) -> None:
        """Let the pool's connections finish (a reader abandoned mid-file holds one): after
        ``close_timeout`` seconds they are cut."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self.close_timeout)
            except TimeoutError:
                pool.terminate()

    # ------------------------------------------------------------------ batches
    async def create_batch(self, batch: Batch, items: list[tuple[str, bytes]]) -> None:
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO batches (id, profile, created_at, expires_at, total, status, native, owner_key) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                batch.id, batch.profile, batch.created_at, batch.expires_at, batch.total, batch.status,
                orjson.dumps(batch.native).decode() if batch.native else None, batch.owner_key)
            if items:
                await conn.copy_records_to_table(
                    "batch_items", columns=["batch_id", "idx", "custom_id", "params"],
                    records=((batch.id, i, cid, params) for i, (cid, params) in enumerate(items)))
        if len(items) >= ANALYZE_ITEMS:
            # fresh statistics, or the planner, taking a new batch for a few rows, plans each claim as a bitmap
            # scan and sort of all its remaining items (measured, 10,000 of 20,000 left: 10.5 ms a claim, 0.27 ms
            # after ANALYZE); ANALYZE samples a bounded number of rows, whatever the table's size
            # the batch is stored: a failure here (the server gone just now) must not report the create failed
            with contextlib.suppress(Exception):
                async with pool.acquire() as conn:
                    await conn.execute("ANALYZE batch_items")

    async def get_batch(self, batch_id: str) -> Batch | None:
        row = await (await self._db()).fetchrow(f"SELECT {BATCH_COLS} FROM batches WHERE id = $1", batch_id)
        return batch_row(tuple(row)) if row else None

    async def list_batches(self, limit: int, before_id: str | None = None, after_id: str | None = None,
                           profile: str | None = None, owner_key: str | None = None) -> tuple[list[Batch], bool]:
        where = scope(profile, owner_key)
        async with (await self._db()).acquire() as conn:
            rows, more = await page_rows(conn, "batches", BATCH_COLS, limit, before_id, after_id, where)
        return [batch_row(r) for r in rows], more

    async def unfinished_batches(self) -> list[Batch]:
        rows = await (await self._db()).fetch(
            f"SELECT {BATCH_COLS} FROM batches WHERE status != 'ended' ORDER BY seq")
        return [batch_row(tuple(r)) for r in rows]

    async def update_batch(self, batch_id: str, **fields: Any) -> None:
        allowed = {"status", "ended_at", "cancel_initiated_at", "native"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
        if fields.get("native") is not None:
            fields["native"] = orjson.dumps(fields["native"]).decode()
        sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
        await (await self._db()).execute(f"UPDATE batches SET {sets} WHERE id = $1", batch_id, *fields.values())

    async def delete_batch(self, batch_id: str) -> None:
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM batch_results WHERE batch_id = $1", batch_id)
            await conn.execute("DELETE FROM batch_items WHERE batch_id = $1", batch_id)
            await conn.execute("DELETE FROM batches WHERE id = $1", batch_id)

    async def pending_items(self, batch_id: str, after_index: int = -1, limit: int = 500) -> list[Item]:
        rows = await (await self._db()).fetch(
            f"SELECT i.idx, i.custom_id, i.params FROM batch_items i WHERE i.batch_id = $1 AND i.idx > $2 "
            f"AND {PENDING} ORDER BY i.idx LIMIT $3", batch_id, after_index, limit)
        return [Item(idx, cid, bytes(params)) for idx, cid, params in rows]

    async def claim_items(self, batch_id: str, owner: str, lease_seconds: float, limit: int,
                          after_index: int = -1) -> list[Item]:
        """The batch's row is locked ``FOR KEY SHARE`` first (claims share it, result writes do not conflict
        with it) and ``finish_pending`` locks it ``FOR UPDATE``: so a claim and the canceling of the rest
        never interleave — each runs its statement after the other committed and sees its rows."""
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction():
            status = await conn.fetchval("SELECT status FROM batches WHERE id = $1 FOR KEY SHARE", batch_id)
            if status != "in_progress":
                return []  # canceling (or ended): nothing more is handed out
            # MATERIALIZED: the picking runs once; as a subquery in FROM the planner may put it on the inner side
            # of a nested loop and re-run it per row, locking far more rows than it hands out (measured: one
            # claimer got 856 of 900 items, the other two starved)
            rows = await conn.fetch(
                "WITH picked AS MATERIALIZED (SELECT i.idx FROM batch_items i WHERE i.batch_id = $1 AND i.idx > $5 "
                "      AND (i.lease_until IS NULL OR i.lease_until <= clock_timestamp()) "
                f"     AND {PENDING} ORDER BY i.idx LIMIT $4 FOR UPDATE SKIP LOCKED) "
                "UPDATE batch_items t SET lease_owner = $2, "
                "lease_until = clock_timestamp() + make_interval(secs => $3) "
                "FROM picked WHERE t.batch_id = $1 AND t.idx = picked.idx RETURNING t.idx, t.custom_id, t.params",
                batch_id, owner, float(lease_seconds), limit, after_index)
        return sorted((Item(idx, cid, bytes(params)) for idx, cid, params in rows), key=lambda it: it.index)

    async def release_items(self, batch_id: str, owner: str, indexes: list[int] | None = None) -> int:
        sql = ("UPDATE batch_items SET lease_owner = NULL, lease_until = NULL "
               "WHERE batch_id = $1 AND lease_owner = $2")
        args: list[Any] = [batch_id, owner]
        if indexes is not None:
            sql += " AND idx = ANY($3::integer[])"
            args.append(list(indexes))
        status = await (await self._db()).execute(sql, *args)
        return int(status.rsplit(" ", 1)[-1])

    async def renew_items(self, batch_id: str, owner: str, indexes: list[int], lease_seconds: float) -> int:
        status = await (await self._db()).execute(
            "UPDATE batch_items SET lease_until = clock_timestamp() + make_interval(secs => $4) "
            "WHERE batch_id = $1 AND lease_owner = $2 AND idx = ANY($3::integer[])",
            batch_id, owner, list(indexes), float(lease_seconds))
        return int(status.rsplit(" ", 1)[-1])

    async def end_batch(self, batch_id: str, ended_at: str) -> bool:
        status = await (await self._db()).execute(
            "UPDATE batches SET status = 'ended', ended_at = $2 WHERE id = $1 AND status != 'ended' "
            f"AND NOT EXISTS (SELECT 1 FROM batch_items i WHERE i.batch_id = $1 AND {PENDING})",
            batch_id, ended_at)
        return status == "UPDATE 1"

    async def put_result(self, batch_id: str, index: int, custom_id: str, kind: str, body: bytes) -> bool:
        if kind not in RESULT_TYPES:
            raise ValueError(kind)
        # one statement (its own transaction): the batch's counter row, which every instance's results update,
        # is locked only inside the server, never across a round trip to a client that may be slow to answer
        stored = await (await self._db()).fetchval(
            "WITH ins AS (INSERT INTO batch_results (batch_id, idx, kind, body) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING RETURNING 1), "
            f"upd AS (UPDATE batches SET {kind} = {kind} + 1 WHERE id = $1 AND EXISTS (SELECT 1 FROM ins)) "
            "SELECT count(*) FROM ins", batch_id, index, kind, body)
        return stored == 1

    async def finish_pending(self, batch_id: str, kind: str) -> int:
        if kind not in RESULT_TYPES:
            raise ValueError(kind)
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction():
            # waits for claims in progress (see claim_items), so their leases are seen and their items skipped
            await conn.execute("SELECT 1 FROM batches WHERE id = $1 FOR UPDATE", batch_id)
            n = await conn.fetchval(
                "WITH ins AS (INSERT INTO batch_results (batch_id, idx, kind, body) "
                "SELECT i.batch_id, i.idx, $2, convert_to('{\"custom_id\":' || to_json(i.custom_id)::text || "
                "',\"result\":{\"type\":' || to_json($2::text)::text || '}}', 'UTF8') "
                f"FROM batch_items i WHERE i.batch_id = $1 AND {PENDING} "
                "AND (i.lease_until IS NULL OR i.lease_until <= clock_timestamp()) "
                "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM ins", batch_id, kind)
            await conn.execute(f"UPDATE batches SET {kind} = {kind} + $2 WHERE id = $1", batch_id, n)
            return int(n)

    async def results(self, batch_id: str, page: int = 1000) -> AsyncIterator[bytes]:
        last = -1
        while True:
            rows = await (await self._db()).fetch(
                "SELECT idx, body FROM batch_results WHERE batch_id = $1 AND idx > $2 ORDER BY idx LIMIT $3",
                batch_id, last, page)
            for idx, body in rows:
                last = idx
                yield bytes(body)
            if len(rows) < page:
                return

    # ------------------------------------------------------------------ files
    async def put_file(self, filename: str, mime_type: str, chunks: AsyncIterable[bytes],
                       max_bytes: int, owner_key: str = "") -> FileMeta:
        file_id, size, n, buf = new_id("file_"), 0, 0, bytearray()
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction():
            insert = "INSERT INTO file_chunks (file_id, n, data) VALUES ($1, $2, $3)"
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(max_bytes)  # the transaction is rolled back: nothing is kept
                buf += chunk
                while len(buf) >= CHUNK_BYTES:
                    await conn.execute(insert, file_id, n, bytes(buf[:CHUNK_BYTES]))
                    del buf[:CHUNK_BYTES]
                    n += 1
            if buf:
                await conn.execute(insert, file_id, n, bytes(buf))
            meta = FileMeta(id=file_id, filename=filename, mime_type=mime_type, size_bytes=size,
                            created_at=now_iso(), owner_key=owner_key)
            await conn.execute("INSERT INTO files (id, filename, mime_type, size_bytes, created_at, owner_key) "
                               "VALUES ($1, $2, $3, $4, $5, $6)",
                               meta.id, meta.filename, meta.mime_type, meta.size_bytes, meta.created_at, owner_key)
        return meta

    async def get_file(self, file_id: str) -> FileMeta | None:
        row = await (await self._db()).fetchrow(f"SELECT {FILE_COLS} FROM files WHERE id = $1", file_id)
        return file_row(tuple(row)) if row else None

    async def list_files(self, limit: int, before_id: str | None = None, after_id: str | None = None,
                         owner_key: str | None = None) -> tuple[list[FileMeta], bool]:
        async with (await self._db()).acquire() as conn:
            rows, more = await page_rows(conn, "files", FILE_COLS, limit, before_id, after_id,
                                         scope(owner_key=owner_key))
        return [file_row(r) for r in rows], more

    async def file_content(self, file_id: str, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """One snapshot (a read-only repeatable-read transaction), a row at a time: a delete meanwhile does
        not cut the stream short, and at most one stored chunk is in memory."""
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            if await conn.fetchval("SELECT 1 FROM files WHERE id = $1", file_id) is None:
                raise FileNotFoundError(file_id)
            async for row in conn.cursor("SELECT data FROM file_chunks WHERE file_id = $1 ORDER BY n", file_id,
                                         prefetch=1):
                data = row[0]
                for off in range(0, len(data), chunk_size):
                    yield bytes(data[off:off + chunk_size])

    async def read_file(self, file_id: str) -> bytes:
        return b"".join([chunk async for chunk in self.file_content(file_id, CHUNK_BYTES)])

    async def delete_file(self, file_id: str) -> bool:
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction():
            gone = await conn.execute("DELETE FROM files WHERE id = $1", file_id)
            await conn.execute("DELETE FROM file_chunks WHERE file_id = $1", file_id)
        return gone != "DELETE 0"

    # ------------------------------------------------------------------ fleet: instances and usage ledger
    async def heartbeat(self, instance: Instance) -> None:
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO instances ({INSTANCE_COLS}, last_seen) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, clock_timestamp()) ON CONFLICT (id) DO UPDATE "
                "SET last_seen = excluded.last_seen, circuits = excluded.circuits, port = excluded.port",
                instance.id, instance.host, instance.port, instance.version, instance.pid, instance.started_at,
                orjson.dumps(instance.circuits).decode())
            await conn.execute("DELETE FROM instances WHERE last_seen < clock_timestamp() - "
                               "make_interval(secs => $1)", float(INSTANCE_FORGET_S))

    async def forget_instance(self, instance_id: str) -> None:
        await (await self._db()).execute("DELETE FROM instances WHERE id = $1", instance_id)

    async def instances(self) -> list[Instance]:
        rows = await (await self._db()).fetch(
            "SELECT id, host, port, version, pid, started_at, circuits::text, "
            "extract(epoch FROM clock_timestamp() - last_seen)::float8 FROM instances ORDER BY last_seen DESC")
        return [Instance(*r[:6], circuits=orjson.loads(r[6]), seen_ago_s=max(0.0, r[7])) for r in rows]

    async def add_usage(self, rows: list[Usage]) -> None:
        pool = await self._db()
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(usage_upsert("$"),
                                   [r.key() + r.counts() for r in sorted(rows, key=Usage.key)])

    async def usage(self, since_minute: str) -> list[Usage]:
        rows = await (await self._db()).fetch(
            f"SELECT {USAGE_COLS} FROM usage_ledger WHERE minute >= $1 ORDER BY minute", since_minute)
        return [usage_row(tuple(r)) for r in rows]
