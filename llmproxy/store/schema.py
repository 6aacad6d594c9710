"""The SQLite schema and how its rows are read back: named, ordered migrations recorded in
``schema_migrations`` (a database is brought up to date when opened), the column lists, a row as a ``Batch``
or ``FileMeta``, and the newest-first keyset paging both lists use. Plain functions on a connection: the
thread that owns it is ``sqlite.py``'s."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import orjson

from llmproxy.store import RESULT_TYPES, USAGE_COUNTS, USAGE_KEY, Batch, FileMeta, Usage

#: (name, SQL), applied in order, each once
MIGRATIONS: list[tuple[str, str]] = [
    ("0001_batches", """
        CREATE TABLE batches (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            profile TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            total INTEGER NOT NULL,
            status TEXT NOT NULL,
            ended_at TEXT,
            cancel_initiated_at TEXT,
            succeeded INTEGER NOT NULL DEFAULT 0,
            errored INTEGER NOT NULL DEFAULT 0,
            canceled INTEGER NOT NULL DEFAULT 0,
            expired INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX batches_status ON batches(status);
        CREATE TABLE batch_items (
            batch_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            custom_id TEXT NOT NULL,
            params BLOB NOT NULL,
            PRIMARY KEY (batch_id, idx)
        ) WITHOUT ROWID;
        CREATE TABLE batch_results (
            batch_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            kind TEXT NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (batch_id, idx)
        ) WITHOUT ROWID;
    """),
    ("0002_files", """
        CREATE TABLE files (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            filename TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
    """),
    ("0003_native_batches", "ALTER TABLE batches ADD COLUMN native TEXT;"),
    ("0004_batches_by_profile", "CREATE INDEX batches_profile ON batches(profile, seq);"),
    #: who holds an item and until when (epoch seconds): ``claim_items``
    ("0005_item_leases", """
        ALTER TABLE batch_items ADD COLUMN lease_owner TEXT;
        ALTER TABLE batch_items ADD COLUMN lease_until REAL;
    """),
    #: the instance registry (heartbeats; ``last_seen`` in epoch seconds) and the usage ledger (per minute)
    ("0006_instances", """
        CREATE TABLE instances (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            port INTEGER NOT NULL,
            version TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            last_seen REAL NOT NULL,
            circuits TEXT NOT NULL DEFAULT '{}'
        );
    """),
    ("0007_usage_ledger", """
        CREATE TABLE usage_ledger (
            minute TEXT NOT NULL,
            profile TEXT NOT NULL,
            scenario TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            cost_unknown INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (minute, profile, scenario, provider, model)
        ) WITHOUT ROWID;
    """),
    #: client keys (issue 27): only a keyed hash of each secret (store/keys.py); a name is unique among live keys
    ("0008_keys", """
        CREATE TABLE keys (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE,
            profiles TEXT NOT NULL DEFAULT '[]',
            budget_usd REAL,
            budget_period TEXT,
            rpm INTEGER,
            tpm INTEGER,
            expires_at TEXT,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            rotated_from TEXT
        );
        CREATE UNIQUE INDEX keys_live_name ON keys(name) WHERE revoked_at IS NULL;
    """),
    #: the client key as a dimension of the usage ledger (a key's spend: budgets), and the fleet's rate-limit
    #: counters (one row per key and minute window: the fleet-wide --rpm/--tpm); SQLite cannot change a
    #: primary key, so the ledger is copied into a table with the new one
    ("0010_key_usage", """
        CREATE TABLE usage_ledger_new (
            minute TEXT NOT NULL,
            profile TEXT NOT NULL,
            scenario TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            key_id TEXT NOT NULL DEFAULT '',
            requests INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            cost_unknown INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (minute, profile, scenario, provider, model, key_id)
        ) WITHOUT ROWID;
        INSERT INTO usage_ledger_new (minute, profile, scenario, provider, model, requests, errors, input_tokens,
            output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, cost_unknown)
            SELECT minute, profile, scenario, provider, model, requests, errors, input_tokens, output_tokens,
                   cache_read_tokens, cache_write_tokens, cost_usd, cost_unknown FROM usage_ledger;
        DROP TABLE usage_ledger;
        ALTER TABLE usage_ledger_new RENAME TO usage_ledger;
        CREATE INDEX usage_ledger_by_key ON usage_ledger(key_id, minute) WHERE key_id != '';
        CREATE TABLE key_windows (
            key_id TEXT NOT NULL,
            win INTEGER NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, win)
        ) WITHOUT ROWID;
    """),
    #: who created a batch or a file: the store key's id, '' for an admin (rows from before: admin-owned)
    ("0011_owner_keys", """
        ALTER TABLE batches ADD COLUMN owner_key TEXT NOT NULL DEFAULT '';
        ALTER TABLE files ADD COLUMN owner_key TEXT NOT NULL DEFAULT '';
        CREATE INDEX batches_owner ON batches(owner_key, seq);
        CREATE INDEX files_owner ON files(owner_key, seq);
    """),
]

BATCH_COLS = ("id, profile, created_at, expires_at, total, status, ended_at, cancel_initiated_at, "
              "succeeded, errored, canceled, expired, native, owner_key")
FILE_COLS = "id, filename, mime_type, size_bytes, created_at, owner_key"


INSTANCE_COLS = "id, host, port, version, pid, started_at, circuits"
USAGE_COLS = ", ".join(USAGE_KEY + USAGE_COUNTS)


def usage_upsert(param: str) -> str:
    """The ledger's add-to-aggregate statement (both engines): ``param`` is the placeholder style, ``?`` or
    ``$``."""
    cols = USAGE_KEY + USAGE_COUNTS
    vals = ", ".join("?" if param == "?" else f"${i}" for i in range(1, len(cols) + 1))
    sets = ", ".join(f"{c} = usage_ledger.{c} + excluded.{c}" for c in USAGE_COUNTS)
    return (f"INSERT INTO usage_ledger ({USAGE_COLS}) VALUES ({vals}) "
            f"ON CONFLICT ({', '.join(USAGE_KEY)}) DO UPDATE SET {sets}")


def usage_row(row: tuple) -> Usage:
    return Usage(*row)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def batch_row(row: tuple) -> Batch:
    counts = dict(zip(RESULT_TYPES, row[8:12], strict=True))
    return Batch(id=row[0], profile=row[1], created_at=row[2], expires_at=row[3], total=row[4], status=row[5],
                 ended_at=row[6], cancel_initiated_at=row[7], counts=counts,
                 native=orjson.loads(row[12]) if row[12] else None, owner_key=row[13])


def file_row(row: tuple) -> FileMeta:
    return FileMeta(id=row[0], filename=row[1], mime_type=row[2], size_bytes=row[3], created_at=row[4],
                    owner_key=row[5])


def scope(profile: str | None = None, owner_key: str | None = None) -> dict[str, object] | None:
    """``page_rows``' ``where`` for a list: the columns given (None: any value)."""
    where = {k: v for k, v in (("profile", profile), ("owner_key", owner_key)) if v is not None}
    return where or None


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database has not seen, in order; the names applied. Several processes may
    open the store at once (``serve --workers N``): the whole check-and-apply runs in one write transaction,
    so one migrates and the others, once it is done, find nothing left to do."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied = []
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
        for name, sql in sorted(MIGRATIONS):  # by name, whatever order they were added in
            if name in done:
                continue
            for stmt in filter(str.strip, sql.split(";")):
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now_iso()))
            applied.append(name)
    return applied


def page_rows(conn: sqlite3.Connection, table: str, cols: str, limit: int, before_id: str | None,
              after_id: str | None, where: dict[str, object] | None = None) -> tuple[list[tuple], bool]:
    """Newest first (by insertion order), only rows whose columns equal ``where``'s values. Raises KeyError
    naming a cursor id that does not exist among those rows."""
    cond = "".join(f" AND {col} = ?" for col in where or {})
    args = tuple((where or {}).values())

    def seq(cursor: str) -> int:
        row = conn.execute(f"SELECT seq FROM {table} WHERE id = ?{cond}", (cursor, *args)).fetchone()
        if row is None:
            raise KeyError(cursor)
        return row[0]

    if before_id is not None:
        rows = conn.execute(f"SELECT {cols} FROM {table} WHERE seq > ?{cond} ORDER BY seq ASC LIMIT ?",
                            (seq(before_id), *args, limit + 1)).fetchall()
        more = len(rows) > limit
        return list(reversed(rows[:limit])), more
    if after_id is not None:
        rows = conn.execute(f"SELECT {cols} FROM {table} WHERE seq < ?{cond} ORDER BY seq DESC LIMIT ?",
                            (seq(after_id), *args, limit + 1)).fetchall()
    else:
        rows = conn.execute(f"SELECT {cols} FROM {table} WHERE 1{cond} ORDER BY seq DESC LIMIT ?",
                            (*args, limit + 1)).fetchall()
    return rows[:limit], len(rows) > limit
