"""Client keys in the SQLite store (``keys.py`` says what a key is): a mixin of ``SqliteStore``, on its
connection's thread like every other call. Names are unique among live keys (a partial unique index)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from llmproxy.store.keys import KEY_COLS, UPDATABLE, ApiKey, KeyNameTaken, key_row
from llmproxy.store.schema import now_iso

#: the live key of that name, else its most recent revoked one
_BY_NAME = (f"SELECT {KEY_COLS} FROM keys WHERE name = ? ORDER BY revoked_at IS NOT NULL, seq DESC LIMIT 1")


def _key(row: tuple | None) -> ApiKey | None:
    return key_row(row, tuple(orjson.loads(row[2]))) if row else None


def _insert(conn: sqlite3.Connection, key: ApiKey, secret_hash: str) -> None:
    try:
        conn.execute(f"INSERT INTO keys ({KEY_COLS}, secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (key.id, key.name, orjson.dumps(list(key.profiles)).decode(), key.budget_usd,
                      key.budget_period, key.rpm, key.tpm, key.expires_at, key.created_at, key.revoked_at,
                      key.rotated_from, secret_hash))
    except sqlite3.IntegrityError:
        raise KeyNameTaken(f"a live key named {key.name!r} exists") from None


class SqliteKeys:
    _run: Callable[..., Awaitable[Any]]  # SqliteStore's: a call on the connection's thread

    async def create_key(self, key: ApiKey, secret_hash: str) -> None:
        await self._run(lambda c: _insert(c, key, secret_hash))

    async def get_key(self, name: str) -> ApiKey | None:
        return await self._run(lambda c: _key(c.execute(_BY_NAME, (name,)).fetchone()))

    async def list_keys(self) -> list[ApiKey]:
        rows = await self._run(lambda c: c.execute(f"SELECT {KEY_COLS} FROM keys ORDER BY seq").fetchall())
        return [_key(r) for r in rows]

    async def key_by_hash(self, secret_hash: str) -> ApiKey | None:
        return await self._run(lambda c: _key(c.execute(f"SELECT {KEY_COLS} FROM keys WHERE secret_hash = ?",
                                                        (secret_hash,)).fetchone()))

    async def has_keys(self) -> bool:
        return await self._run(lambda c: c.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is not None)

    async def update_key(self, name: str, **fields: Any) -> ApiKey | None:
        if not fields or set(fields) - set(UPDATABLE):
            raise ValueError(f"cannot update {sorted(set(fields) - set(UPDATABLE))}")
        if "profiles" in fields:
            fields["profiles"] = orjson.dumps(list(fields["profiles"])).decode()
        sets = ", ".join(f"{k} = ?" for k in fields)

        def tx(conn: sqlite3.Connection) -> ApiKey | None:
            conn.execute(f"UPDATE keys SET {sets} WHERE name = ? AND revoked_at IS NULL", (*fields.values(), name))
            return _key(conn.execute(_BY_NAME, (name,)).fetchone())

        return await self._run(tx)

    async def revoke_key(self, name: str) -> ApiKey | None:
        def tx(conn: sqlite3.Connection) -> ApiKey | None:
            conn.execute("UPDATE keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now_iso(), name))
            return _key(conn.execute(_BY_NAME, (name,)).fetchone())

        return await self._run(tx)

    async def rotate_key(self, name: str, new_id: str, secret_hash: str) -> ApiKey | None:
        """Revoke the live key ``name`` and insert its successor (``new_id``, same limits), in one
        transaction; the new key, or None when no live key has that name."""
        def tx(conn: sqlite3.Connection) -> ApiKey | None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                old = _key(conn.execute(_BY_NAME, (name,)).fetchone())
                if old is None or old.revoked_at is not None:
                    return None
                now = now_iso()
                conn.execute("UPDATE keys SET revoked_at = ? WHERE id = ?", (now, old.id))
                new = ApiKey(**{**old.__dict__, "id": new_id, "created_at": now, "revoked_at": None,
                                "rotated_from": old.id})
                _insert(conn, new, secret_hash)
                return new

        return await self._run(tx)
