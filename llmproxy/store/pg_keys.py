"""Client keys in the PostgreSQL store (``keys.py`` says what a key is): a mixin of ``PostgresStore``, the
same statements as ``sqlite_keys.py`` in PostgreSQL's placeholders. Names are unique among live keys (a
partial unique index), which also decides between two instances creating the same name at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from llmproxy.store.keys import KEY_COLS, UPDATABLE, ApiKey, KeyNameTaken, key_row
from llmproxy.store.schema import now_iso

_BY_NAME = (f"SELECT {KEY_COLS} FROM keys WHERE name = $1 ORDER BY revoked_at IS NOT NULL, seq DESC LIMIT 1")
_LOCK_BY_NAME = f"SELECT {KEY_COLS} FROM keys WHERE name = $1 AND revoked_at IS NULL FOR UPDATE"


def _key(row: Any) -> ApiKey | None:
    return key_row(tuple(row), tuple(orjson.loads(row[2]))) if row else None


async def _insert(conn: Any, key: ApiKey, secret_hash: str) -> None:
    try:
        await conn.execute(
            f"INSERT INTO keys ({KEY_COLS}, secret_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            key.id, key.name, orjson.dumps(list(key.profiles)).decode(), key.budget_usd, key.budget_period,
            key.rpm, key.tpm, key.expires_at, key.created_at, key.revoked_at, key.rotated_from, secret_hash)
    except asyncpg.UniqueViolationError:
        raise KeyNameTaken(f"a live key named {key.name!r} exists") from None


class PgKeys:
    _db: Callable[[], Awaitable[asyncpg.Pool]]  # PostgresStore's: the pool, opened on first use

    async def create_key(self, key: ApiKey, secret_hash: str) -> None:
        async with (await self._db()).acquire() as conn:
            await _insert(conn, key, secret_hash)

    async def get_key(self, name: str) -> ApiKey | None:
        return _key(await (await self._db()).fetchrow(_BY_NAME, name))

    async def list_keys(self) -> list[ApiKey]:
        return [_key(r) for r in await (await self._db()).fetch(f"SELECT {KEY_COLS} FROM keys ORDER BY seq")]

    async def key_by_hash(self, secret_hash: str) -> ApiKey | None:
        return _key(await (await self._db()).fetchrow(f"SELECT {KEY_COLS} FROM keys WHERE secret_hash = $1",
                                                      secret_hash))

    async def has_keys(self) -> bool:
        return await (await self._db()).fetchval("SELECT EXISTS (SELECT 1 FROM keys)")

    async def update_key(self, name: str, **fields: Any) -> ApiKey | None:
        if not fields or set(fields) - set(UPDATABLE):
            raise ValueError(f"cannot update {sorted(set(fields) - set(UPDATABLE))}")
        if "profiles" in fields:
            fields["profiles"] = orjson.dumps(list(fields["profiles"])).decode()
        sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
        pool = await self._db()
        await pool.execute(f"UPDATE keys SET {sets} WHERE name = $1 AND revoked_at IS NULL", name, *fields.values())
        return _key(await pool.fetchrow(_BY_NAME, name))

    async def revoke_key(self, name: str) -> ApiKey | None:
        pool = await self._db()
        await pool.execute("UPDATE keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL", name, now_iso())
        return _key(await pool.fetchrow(_BY_NAME, name))

    async def rotate_key(self, name: str, new_id: str, secret_hash: str) -> ApiKey | None:
        async with (await self._db()).acquire() as conn, conn.transaction():
            old = _key(await conn.fetchrow(_LOCK_BY_NAME, name))
            if old is None:
                return None
            now = now_iso()
            await conn.execute("UPDATE keys SET revoked_at = $2 WHERE id = $1", old.id, now)
            for table in ("batches", "files"):  # the successor keeps what the key created
                await conn.execute(f"UPDATE {table} SET owner_key = $1 WHERE owner_key = $2", new_id, old.id)
            new = ApiKey(**{**old.__dict__, "id": new_id, "created_at": now, "revoked_at": None,
                            "rotated_from": old.id})
            await _insert(conn, new, secret_hash)
            return new

    # ------------------------------------------------------------------ budgets and fleet-wide limits
    async def key_spend(self, key_id: str, since_minute: str, before_minute: str) -> float:
        return float(await (await self._db()).fetchval(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_ledger WHERE key_id = $1 AND minute >= $2 AND minute < $3",
            key_id, since_minute, before_minute))

    async def sync_key_windows(self, deltas: list[tuple[str, int, int, int, float]], key_ids: list[str],
                               since_window: int) -> list[tuple[str, int, int, int, float]]:
        """One round trip: the deltas upserted (in key order: two instances never deadlock on them) and the
        counters read back in the same statement."""
        deltas = sorted(deltas)
        cols = [list(c) for c in zip(*deltas, strict=True)] if deltas else [[], [], [], [], []]
        rows = await (await self._db()).fetch(_PG_SYNC, *cols, key_ids, since_window)
        return [tuple(r) for r in rows]

    async def claim_key_requests(self, claims: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int]]:
        """Two statements in one transaction: the rows made if absent, then locked in key order, read and
        added to (``_PG_CLAIM``): a concurrent claim on the same row waits for this one's commit."""
        claims = sorted(claims)
        cols = [list(c) for c in zip(*claims, strict=True)] if claims else [[], [], [], []]
        async with (await self._db()).acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO key_windows (key_id, win) SELECT * FROM unnest($1::text[], $2::bigint[]) "
                               "ORDER BY 1, 2 ON CONFLICT DO NOTHING", cols[0], cols[1])
            rows = await conn.fetch(_PG_CLAIM, *cols)
        return [tuple(r) for r in rows]


#: the deltas added (arrays $1..$5), old windows removed, and the counters of $6's keys from window $7 on, as
#: they are after the upsert (the outer SELECT does not see the CTE's writes: the upserted rows come from it)
_PG_SYNC = """
WITH up AS (
    INSERT INTO key_windows (key_id, win, requests, tokens, cost_usd)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::float8[])
    ON CONFLICT (key_id, win) DO UPDATE SET requests = key_windows.requests + excluded.requests,
        tokens = key_windows.tokens + excluded.tokens, cost_usd = key_windows.cost_usd + excluded.cost_usd
    RETURNING key_id, win, requests, tokens, cost_usd
), gone AS (
    DELETE FROM key_windows WHERE win < $7 - 2 AND cardinality($1::text[]) > 0
)
SELECT key_id, win, requests, tokens, cost_usd FROM up WHERE key_id = ANY($6::text[]) AND win >= $7
UNION ALL
SELECT k.key_id, k.win, k.requests, k.tokens, k.cost_usd FROM key_windows k
WHERE k.key_id = ANY($6::text[]) AND k.win >= $7
  AND NOT EXISTS (SELECT 1 FROM up WHERE up.key_id = k.key_id AND up.win = k.win)
"""

#: claims ($1 keys, $2 windows, $3 wanted, $4 caps): each row locked (in key order), granted what keeps it at
#: most its cap, and added to
_PG_CLAIM = """
WITH want AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS w(key_id, win, n, cap)),
old AS (
    SELECT k.key_id, k.win, LEAST(w.n, GREATEST(0, w.cap - k.requests)) AS grant_n
    FROM key_windows k JOIN want w ON w.key_id = k.key_id AND w.win = k.win
    ORDER BY k.key_id, k.win FOR UPDATE OF k
), upd AS (
    UPDATE key_windows k SET requests = k.requests + old.grant_n FROM old
    WHERE k.key_id = old.key_id AND k.win = old.win AND old.grant_n > 0
)
SELECT key_id, win, grant_n FROM old
"""
