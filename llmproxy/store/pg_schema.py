"""The PostgreSQL schema: the same named migrations as SQLite's (``schema.py``), in PostgreSQL's types, plus
how a URL is named without its password. Applied once under an advisory lock, so several instances starting
at the same moment against a new database neither race nor fail: one migrates, the others wait for it and
find nothing left to do.

File content lives in ``file_chunks`` rows of ``CHUNK_BYTES`` (bytea), written inside the transaction that
inserts the file's metadata: a file is visible complete or not at all."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from llmproxy.store.schema import now_iso

#: one row of file content; bytea values this size are TOASTed (compressed, out of line) by PostgreSQL
CHUNK_BYTES = 256 * 1024
#: the advisory lock key held while migrating (any constant of our own: "llmproxy" as a bigint)
MIGRATION_LOCK = 0x6C6C6D70726F7879

#: (name, SQL), applied in order, each once; the names are SQLite's (a store is the same store on both)
MIGRATIONS: list[tuple[str, str]] = [
    ("0001_batches", """
        CREATE TABLE batches (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
            params BYTEA NOT NULL,
            PRIMARY KEY (batch_id, idx)
        );
        CREATE TABLE batch_results (
            batch_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            kind TEXT NOT NULL,
            body BYTEA NOT NULL,
            PRIMARY KEY (batch_id, idx)
        );
    """),
    ("0002_files", """
        CREATE TABLE files (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            filename TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            size_bytes BIGINT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE file_chunks (
            file_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (file_id, n)
        );
    """),
    ("0003_native_batches", "ALTER TABLE batches ADD COLUMN native TEXT;"),
    ("0004_batches_by_profile", "CREATE INDEX batches_profile ON batches(profile, seq);"),
    ("0005_item_leases", """
        ALTER TABLE batch_items ADD COLUMN lease_owner TEXT;
        ALTER TABLE batch_items ADD COLUMN lease_until TIMESTAMPTZ;
    """),
    #: the instance registry (heartbeats, in the database's clock) and the usage ledger (per minute)
    ("0006_instances", """
        CREATE TABLE instances (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            port INTEGER NOT NULL,
            version TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            last_seen TIMESTAMPTZ NOT NULL,
            circuits JSONB NOT NULL DEFAULT '{}'
        );
    """),
    ("0007_usage_ledger", """
        CREATE TABLE usage_ledger (
            minute TEXT NOT NULL,
            profile TEXT NOT NULL,
            scenario TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            requests BIGINT NOT NULL DEFAULT 0,
            errors BIGINT NOT NULL DEFAULT 0,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            cache_read_tokens BIGINT NOT NULL DEFAULT 0,
            cache_write_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            cost_unknown BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (minute, profile, scenario, provider, model)
        );
    """),
    #: client keys (issue 27): only a keyed hash of each secret (store/keys.py); a name is unique among live keys
    ("0008_keys", """
        CREATE TABLE keys (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE,
            profiles TEXT NOT NULL DEFAULT '[]',
            budget_usd DOUBLE PRECISION,
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
    #: the client key as a dimension of the usage ledger (budgets) and the fleet's rate-limit counters
    ("0010_key_usage", """
        ALTER TABLE usage_ledger ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE usage_ledger DROP CONSTRAINT usage_ledger_pkey;
        ALTER TABLE usage_ledger ADD PRIMARY KEY (minute, profile, scenario, provider, model, key_id);
        CREATE INDEX usage_ledger_by_key ON usage_ledger(key_id, minute) WHERE key_id <> '';
        CREATE TABLE key_windows (
            key_id TEXT NOT NULL,
            win BIGINT NOT NULL,
            requests BIGINT NOT NULL DEFAULT 0,
            tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, win)
        );
    """),
    #: who created a batch or a file: the store key's id, '' for an admin (rows from before: admin-owned)
    ("0011_owner_keys", """
        ALTER TABLE batches ADD COLUMN owner_key TEXT NOT NULL DEFAULT '';
        ALTER TABLE files ADD COLUMN owner_key TEXT NOT NULL DEFAULT '';
        CREATE INDEX batches_owner ON batches(owner_key, seq);
        CREATE INDEX files_owner ON files(owner_key, seq);
    """),
]


def statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def redact_url(url: str) -> str:
    """The URL as it may be shown (logs, errors, status): its password replaced by ``***``, any query
    string dropped (it may carry ``password=``)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<unparseable database URL>"


def secrets_of(url: str) -> list[str]:
    """What must never be shown of ``url``: its password and its query values, as written and decoded."""
    out = []
    try:
        parts = urlsplit(url)
        userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        if ":" in userinfo:
            out.append(userinfo.split(":", 1)[1])
        out += [kv.split("=", 1)[1] for kv in parts.query.split("&") if "=" in kv]
        out += [unquote(s) for s in out]
    except ValueError:
        out.append(url)
    return sorted({s for s in out if s}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` with every secret of ``url`` replaced by ``***`` (a driver's error may quote the DSN)."""
    for s in secrets_of(url):
        text = text.replace(s, "***")
    return text


async def migrate(conn: Any) -> list[str]:
    """Apply the migrations this database has not seen, in order; the names applied. One transaction under
    a transaction-scoped advisory lock: instances starting together queue here, the first migrates, the
    rest then see every name recorded."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                           "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {r[0] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in sorted(MIGRATIONS):  # by name, whatever order they were added in
            if name in done:
                continue
            for stmt in statements(sql):
                await conn.execute(stmt)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", name, now_iso())
            applied.append(name)
    return applied


async def page_rows(conn: Any, table: str, cols: str, limit: int, before_id: str | None, after_id: str | None,
                    where: dict[str, object] | None = None) -> tuple[list[tuple], bool]:
    """``schema.page_rows`` in PostgreSQL: newest first by insertion order, only rows whose columns equal
    ``where``'s values; KeyError naming a cursor id that does not exist among those rows."""
    filt = dict(where or {})
    vals = list(filt.values())

    def cond(first: int) -> str:
        return "".join(f" AND {col} = ${first + i}" for i, col in enumerate(filt))

    async def seq(cursor: str) -> int:
        found = await conn.fetchval(f"SELECT seq FROM {table} WHERE id = $1{cond(2)}", cursor, *vals)
        if found is None:
            raise KeyError(cursor)
        return found

    if before_id is not None:
        rows = await conn.fetch(f"SELECT {cols} FROM {table} WHERE seq > $1{cond(3)} ORDER BY seq ASC LIMIT $2",
                                await seq(before_id), limit + 1, *vals)
        return [tuple(r) for r in reversed(rows[:limit])], len(rows) > limit
    if after_id is not None:
        rows = await conn.fetch(f"SELECT {cols} FROM {table} WHERE seq < $1{cond(3)} ORDER BY seq DESC LIMIT $2",
                                await seq(after_id), limit + 1, *vals)
    else:
        rows = await conn.fetch(f"SELECT {cols} FROM {table} WHERE TRUE{cond(2)} ORDER BY seq DESC LIMIT $1",
                                limit + 1, *vals)
    return [tuple(r) for r in rows[:limit]], len(rows) > limit
