"""The store behind Message Batches and Files: one small async interface (batches, their items and results,
files). Nothing outside this package may assume how it is kept; ``open_store`` returns the SQLite one
(``llmproxy/store/sqlite.py``), or the PostgreSQL one (``postgres.py``) shared by several instances when a
database URL is configured (docs/scaling.md).

Guarantees every implementation gives:

* ``put_result`` stores at most one result per item (the first one wins and ``True`` says it was stored),
  so an item re-run after a crash never ends with two results;
* ``pending_items`` yields exactly the items without a stored result;
* ``claim_items`` hands an item to one claimer at a time while its lease runs (see there);
* ``end_batch`` ends a batch once, whoever of several instances tries (a conditional update);
* a file's content is complete or absent (SQLite: written aside, then moved into place; PostgreSQL: its
  chunk rows and metadata in one transaction), stored under its id as it arrives (never whole in memory).

Every batch and file has an ``owner_key``: the id of the store key (``llmproxy keys``) that created it, or
``""`` when an admin did (a config key, or an open proxy); a row from before owners were kept is ``""``. The
lists take ``owner_key`` to return one key's rows only (``None``: every row); the server decides who sees what
(docs/operations.md "Keys").
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from llmproxy.settings import DATABASE_URL_ENV, StoreConfig
from llmproxy.store.keys import ApiKey

T = TypeVar("T")
log = logging.getLogger("llmproxy")
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")
STATUSES = ("in_progress", "canceling", "ended")


FILENAME_MAX = 255
#: what the Files API refuses in a filename (its documented rule): these characters and U+0000-U+001F
FILENAME_FORBIDDEN = frozenset('<>:"|?*\\/') | frozenset(chr(c) for c in range(32))


def filename_problem(name: str | None) -> str | None:
    """Why ``name`` is not an acceptable filename under the Files API's rule, or None. A filename is kept
    exactly as sent (metadata only: bodies are stored by id, so it never becomes a path)."""
    if not name:
        return "filename: Field required (the 'file' part must carry a filename)"
    if len(name) > FILENAME_MAX:
        return f"filename: must be 1-{FILENAME_MAX} characters, got {len(name)}"
    bad = sorted({c for c in name if c in FILENAME_FORBIDDEN})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return (f"filename: must not contain < > : \" | ? * \\ / or control characters (U+0000-U+001F); "
                f"found {shown}")
    return None


Owned = TypeVar("Owned", "Batch", "FileMeta")


def visible(row: Owned | None, owner_key: str | None) -> Owned | None:
    """``row`` (a batch or a file) when a caller scoped to ``owner_key`` may see it, else None: a store key
    sees what it created, an admin (``owner_key`` None) everything."""
    return row if row is not None and (owner_key is None or row.owner_key == owner_key) else None


def new_id(prefix: str) -> str:
    """``msgbatch_…`` / ``file_…``: a prefix and 24 random base-62 characters."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(24))


@dataclass
class Batch:
    id: str
    profile: str
    created_at: str                     # RFC 3339
    expires_at: str
    total: int
    status: str = "in_progress"         # in_progress | canceling | ended
    ended_at: str | None = None
    cancel_initiated_at: str | None = None
    #: {succeeded, errored, canceled, expired}: results stored so far (filled by get/list)
    counts: dict[str, int] = field(default_factory=dict)
    native: dict | None = None          # {"provider", "id"} when Anthropic runs it (native_batches)
    owner_key: str = ""                 # the store key that created it ("": an admin)

    def request_counts(self) -> dict[str, int]:
        """As the API documents them: until the batch has ended every request counts as ``processing`` and
        the four outcomes are zero; once ended, the final counts."""
        if self.status != "ended":
            return {"processing": self.total, **dict.fromkeys(RESULT_TYPES, 0)}
        return self.progress()

    def progress(self) -> dict[str, int]:
        """The live counts (the proxy's ``llmproxy_progress`` extension): results stored so far, or the
        upstream's own counts while a native batch has none stored yet."""
        mirrored = (self.native or {}).get("request_counts")
        if self.status != "ended" and isinstance(mirrored, dict) and not any(self.counts.values()):
            return {k: int(mirrored.get(k) or 0) for k in ("processing", *RESULT_TYPES)}  # the upstream's
        done = {k: self.counts.get(k, 0) for k in RESULT_TYPES}
        return {"processing": max(0, self.total - sum(done.values())), **done}


@dataclass
class Item:
    index: int
    custom_id: str
    params: bytes                       # the request, JSON


@dataclass
class FileMeta:
    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: str
    downloadable: bool = False         # uploads never are (only files the platform creates)
    owner_key: str = ""                # the store key that uploaded it ("": an admin); never in the API's shape

    def to_api(self) -> dict:
        return {"id": self.id, "type": "file", "filename": self.filename, "mime_type": self.mime_type,
                "size_bytes": self.size_bytes, "created_at": self.created_at, "downloadable": self.downloadable}


class StoreUnavailable(Exception):
    """The database cannot be reached (down, restarting, connection lost); the message names the store
    without its password. Callers off the live path retry with backoff; the file endpoints answer 503."""


#: the counters of one usage ledger row, in column order
USAGE_COUNTS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                "cost_usd", "cost_unknown")
USAGE_KEY = ("minute", "profile", "scenario", "provider", "model", "key_id")
#: a registry row not refreshed for this long (its instance was killed, or is gone) is removed by heartbeats
INSTANCE_FORGET_S = 24 * 3600


@dataclass
class Instance:
    """One llmproxy instance in the registry (``llmproxy status --fleet``)."""
    id: str
    host: str
    port: int
    version: str
    pid: int
    started_at: str                     # RFC 3339
    circuits: dict = field(default_factory=dict)
    #: seconds since its last heartbeat, by the store's clock (filled by ``instances``)
    seen_ago_s: float = 0.0


@dataclass
class Usage:
    """One usage ledger row: the aggregate of one minute (``2026-12-05T10:37Z``) for one key."""
    minute: str
    profile: str
    scenario: str
    provider: str
    model: str
    key_id: str = ""                   # the client key's id (llmproxy keys); "" for requests without one
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: int = 0              # requests whose price is unknown (not counted in cost_usd)

    def key(self) -> tuple[str, ...]:
        return tuple(getattr(self, k) for k in USAGE_KEY)

    def counts(self) -> tuple:
        return tuple(getattr(self, k) for k in USAGE_COUNTS)


async def retrying(call: Callable[[], Awaitable[T]], what: str, first_wait: float = 0.5,
                   max_wait: float = 30.0) -> T:
    """``call()``, again and again while the store is unavailable: waits from ``first_wait`` seconds,
    doubling up to ``max_wait`` (with jitter), so background work (the batch executor) pauses while the
    database is down and resumes once it is back. Any other error is raised at once."""
    wait, failures = first_wait, 0
    while True:
        try:
            result = await call()
        except StoreUnavailable as exc:
            failures += 1
            if failures == 1:
                log.warning("%s paused: %s; retrying with backoff", what, exc)
            await asyncio.sleep(wait * (1 + random.random() / 5))
            wait = min(max_wait, wait * 2)
            continue
        if failures:
            log.info("%s resumed after %d failed attempt(s)", what, failures)
        return result


class FileTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"file exceeds {limit} bytes")
        self.limit = limit


class Store(Protocol):
    # ------------------------------------------------------------------ batches
    async def create_batch(self, batch: Batch, items: list[tuple[str, bytes]]) -> None:
        """Store a new batch and its items (custom_id, params JSON) in one go."""

    async def get_batch(self, batch_id: str) -> Batch | None: ...

    async def list_batches(self, limit: int, before_id: str | None = None, after_id: str | None = None,
                           profile: str | None = None, owner_key: str | None = None) -> tuple[list[Batch], bool]:
        """Newest first; ``after_id``: the page after (older than) that id, ``before_id``: newer than it;
        ``profile``: only that profile's batches; ``owner_key``: only that key's. Returns (page, has_more).
        Raises KeyError naming an unknown cursor id (one of another profile's or key's batches is unknown
        here)."""

    async def unfinished_batches(self) -> list[Batch]:
        """Every batch not ended (in_progress or canceling), oldest first: what a restart resumes."""

    async def update_batch(self, batch_id: str, **fields) -> None:
        """Set ``status``, ``ended_at``, ``cancel_initiated_at`` or ``native``."""

    async def delete_batch(self, batch_id: str) -> None:
        """The batch, its items and its results."""

    async def pending_items(self, batch_id: str, after_index: int = -1, limit: int = 500) -> list[Item]:
        """Items without a result, by index, starting after ``after_index``."""

    async def claim_items(self, batch_id: str, owner: str, lease_seconds: float, limit: int,
                          after_index: int = -1) -> list[Item]:
        """Up to ``limit`` items after ``after_index`` (a claimer walking the batch forward need not re-scan
        what it passed) without a result whose lease is free or expired, by index, now leased to
        ``owner`` for ``lease_seconds``: atomically, so concurrent claimers (other tasks, processes or
        instances) never receive the same item while its lease runs. A lease ends when its time passes (its
        owner died or is stuck: the item may then be claimed again, and ``put_result``'s first write keeps it
        at one result) or by ``release_items``. A claimer's own unexpired leases are not handed back to it.
        Nothing is handed out once the batch is not ``in_progress`` (a cancel stops every claimer at once), and
        a claim never interleaves with ``finish_pending``: an item is either leased or given its result."""

    async def release_items(self, batch_id: str, owner: str, indexes: list[int] | None = None) -> int:
        """End ``owner``'s leases in the batch (only on ``indexes`` if given), so the items without a result
        can be claimed at once (an instance stopping cleanly); how many were released."""

    async def renew_items(self, batch_id: str, owner: str, indexes: list[int], lease_seconds: float) -> int:
        """Extend ``owner``'s leases on ``indexes`` to ``lease_seconds`` from now (items still running); how
        many it still held (a lease that passed and was claimed by another is not taken back)."""

    async def put_result(self, batch_id: str, index: int, custom_id: str, kind: str, body: bytes) -> bool:
        """Store one item's result line (JSON ``{custom_id, result}``) unless it has one already."""

    async def finish_pending(self, batch_id: str, kind: str) -> int:
        """Give every item still without a result and not under a running lease (an item another claimer
        is executing keeps its chance to finish) a ``kind`` result (canceled, expired); how many."""

    async def end_batch(self, batch_id: str, ended_at: str) -> bool:
        """Mark the batch ``ended`` at ``ended_at`` if it is not ended yet and no item lacks a result, in one
        conditional statement: of several instances trying, exactly one gets True."""

    def results(self, batch_id: str) -> AsyncIterator[bytes]:
        """Every stored result line (JSON, no newline), by item index."""

    # ------------------------------------------------------------------ files
    async def put_file(self, filename: str, mime_type: str, chunks: AsyncIterable[bytes],
                       max_bytes: int, owner_key: str = "") -> FileMeta:
        """Store a file's content as it arrives (never all in memory) and its metadata, owned by
        ``owner_key``. Raises FileTooLarge (nothing is kept) past ``max_bytes``."""

    async def get_file(self, file_id: str) -> FileMeta | None: ...

    async def list_files(self, limit: int, before_id: str | None = None, after_id: str | None = None,
                         owner_key: str | None = None) -> tuple[list[FileMeta], bool]:
        """Newest first, paged (and by ``owner_key``) like ``list_batches``."""

    def file_content(self, file_id: str, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """A stored file's bytes in chunks (the API never serves an upload's content: ``llmproxy files
        download`` reads it here)."""

    async def read_file(self, file_id: str) -> bytes:
        """A stored file's whole content (for inlining into a request)."""

    async def delete_file(self, file_id: str) -> bool: ...

    # ------------------------------------------------------------------ fleet: instances and usage ledger
    async def heartbeat(self, instance: Instance) -> None:
        """Insert or refresh ``instance``'s registry row: its last-seen time becomes now, its circuits these;
        rows not refreshed for ``INSTANCE_FORGET_S`` (instances killed long ago) are removed."""

    async def forget_instance(self, instance_id: str) -> None:
        """Remove an instance's row (it stops cleanly)."""

    async def instances(self) -> list[Instance]:
        """Every registered instance, most recently seen first, with ``seen_ago_s`` filled."""

    async def add_usage(self, rows: list[Usage]) -> None:
        """Add each row's counts to the stored aggregate of its key (created when absent), in one
        transaction, in key order (so two instances adding to the same keys never deadlock)."""

    async def usage(self, since_minute: str) -> list[Usage]:
        """Every ledger row from ``since_minute`` (``YYYY-MM-DDTHH:MMZ``) on, by minute."""

    # ------------------------------------------------------------------ client keys (store/keys.py)
    async def create_key(self, key: ApiKey, secret_hash: str) -> None:
        """Store a new key with the keyed hash of its secret. Raises KeyNameTaken when a live key has its name."""

    async def get_key(self, name: str) -> ApiKey | None:
        """The live key of that name, else its most recently revoked one."""

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""

    async def key_by_hash(self, secret_hash: str) -> ApiKey | None:
        """The key whose secret has this keyed hash (revoked and expired ones too: the caller says why)."""

    async def has_keys(self) -> bool:
        """Whether any key was ever created (then every request needs a credential)."""

    async def update_key(self, name: str, **fields) -> ApiKey | None:
        """Set ``keys.UPDATABLE`` fields of the live key ``name``; the key as it is now."""

    async def revoke_key(self, name: str) -> ApiKey | None:
        """Revoke the live key ``name``; the key as it is now (None: no such name)."""

    async def rotate_key(self, name: str, new_id: str, secret_hash: str) -> ApiKey | None:
        """Revoke the live key ``name`` and store its successor (``new_id``, the same name and limits,
        ``rotated_from`` the old id), which takes over the old key's batches and files, in one transaction;
        the new key, or None when no live key has that name."""

    async def key_spend(self, key_id: str, since_minute: str, before_minute: str) -> float:
        """The ledger's cost (USD) of ``key_id``'s requests in the minutes from ``since_minute`` up to (not
        including) ``before_minute``, every instance's (budgets; a request of unknown price counts nothing)."""

    async def sync_key_windows(self, deltas: list[tuple[str, int, int, int, float]], key_ids: list[str],
                               since_window: int) -> list[tuple[str, int, int, int, float]]:
        """Add each (key_id, window, requests, tokens, cost) to the fleet's per-key counters (one row per key
        and window, upserted; rows before ``since_window - 2`` removed), then return every counter row of
        ``key_ids`` from ``since_window`` on, as (key_id, window, requests, tokens, cost)."""

    async def claim_key_requests(self, claims: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int]]:
        """For each (key_id, window, wanted, cap): add to that window's request count as many of ``wanted``
        as keep it at most ``cap``, atomically (instances claiming at once never get more than ``cap``
        together), in key order; the (key_id, window, granted) of each."""

    async def close(self) -> None: ...


def open_store(home: Path, settings: StoreConfig | None = None) -> Store:
    """PostgreSQL when a database URL is set ($LLMPROXY_DATABASE_URL, else ``[store] url``): shared by every
    instance naming it. Otherwise the SQLite store under ``home`` (``llmproxy.db`` and ``files/``)."""
    settings = settings or StoreConfig()
    url = os.environ.get(DATABASE_URL_ENV) or settings.url
    if url:
        try:
            # imported here: asyncpg is optional, and the backends import this module
            from llmproxy.store.postgres import PostgresStore
        except ModuleNotFoundError as e:
            raise RuntimeError(f"a PostgreSQL store needs {e.name}: pip install 'llmproxy[postgres]'") from None
        return PostgresStore(url, pool_size=settings.pool_size)
    # imported here: the backends import this module (a cycle at the top)
    from llmproxy.store.sqlite import SqliteStore

    return SqliteStore(home / "llmproxy.db", home / "files")
