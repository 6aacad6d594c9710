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
            new = ApiKey(**{**old.__dict__, "id": new_id, "created_at": now, "revoked_at": None,
                            "rotated_from": old.id})
            await _insert(conn, new, secret_hash)
            return new
