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
        """Revoke the live key ``name`` and insert its successor (``new_id``, same limits), which takes over
        its batches and files, in one transaction; the new key, or None when no live key has that name."""
        def tx(conn: sqlite3.Connection) -> ApiKey | None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                old = _key(conn.execute(_BY_NAME, (name,)).fetchone())
                if old is None or old.revoked_at is not None:
                    return None
                now = now_iso()
                conn.execute("UPDATE keys SET revoked_at = ? WHERE id = ?", (now, old.id))
                for table in ("batches", "files"):  # the successor keeps what the key created
                    conn.execute(f"UPDATE {table} SET owner_key = ? WHERE owner_key = ?", (new_id, old.id))
                new = ApiKey(**{**old.__dict__, "id": new_id, "created_at": now, "revoked_at": None,
                                "rotated_from": old.id})
                _insert(conn, new, secret_hash)
                return new

        return await self._run(tx)

    # ------------------------------------------------------------------ budgets and fleet-wide limits
    async def key_spend(self, key_id: str, since_minute: str, before_minute: str) -> float:
        return await self._run(lambda c: c.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_ledger WHERE key_id = ? AND minute >= ? AND minute < ?",
            (key_id, since_minute, before_minute)).fetchone()[0])

    async def sync_key_windows(self, deltas: list[tuple[str, int, int, int, float]], key_ids: list[str],
                               since_window: int) -> list[tuple[str, int, int, int, float]]:
        def tx(conn: sqlite3.Connection) -> list[tuple[str, int, int, int, float]]:
            with conn:
                if deltas:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(_WINDOW_UPSERT, sorted(deltas))
                    conn.execute("DELETE FROM key_windows WHERE win < ?", (since_window - 2,))
            marks = ", ".join("?" * len(key_ids))
            return [tuple(r) for r in conn.execute(
                f"SELECT key_id, win, requests, tokens, cost_usd FROM key_windows WHERE win >= ? AND key_id IN "
                f"({marks})", (since_window, *key_ids))] if key_ids else []

        return await self._run(tx)

    async def claim_key_requests(self, claims: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int]]:
        def tx(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
            out = []
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # one writer: the read and the add below are one step
                for key_id, win, wanted, cap in sorted(claims):
                    conn.execute("INSERT INTO key_windows (key_id, win) VALUES (?, ?) ON CONFLICT DO NOTHING",
                                 (key_id, win))
                    have = conn.execute("SELECT requests FROM key_windows WHERE key_id = ? AND win = ?",
                                        (key_id, win)).fetchone()[0]
                    grant = min(wanted, max(0, cap - have))
                    if grant:
                        conn.execute("UPDATE key_windows SET requests = requests + ? WHERE key_id = ? AND win = ?",
                                     (grant, key_id, win))
                    out.append((key_id, win, grant))
            return out

        return await self._run(tx)


_WINDOW_UPSERT = ("INSERT INTO key_windows (key_id, win, requests, tokens, cost_usd) VALUES (?, ?, ?, ?, ?) "
                  "ON CONFLICT (key_id, win) DO UPDATE SET requests = key_windows.requests + excluded.requests, "
                  "tokens = key_windows.tokens + excluded.tokens, cost_usd = key_windows.cost_usd + excluded.cost_usd")
