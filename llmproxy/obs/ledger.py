"""The usage ledger's in-memory side: every finished request record (the request log's listener, on the log's
writer thread, never the request path) is added to a per-minute aggregate keyed by (minute, profile,
scenario, provider, model, client key id); the fleet task (``server/process/fleet.py``) takes the aggregates about
once a second and upserts them into the store, where ``llmproxy stats --fleet`` and budgets read them.

The buffer is bounded by its number of keys: while the store is down the aggregates keep accumulating (one
row per key and minute, not per request), and once ``max_keys`` rows wait, a record with a new key is
dropped and counted (``dropped``, and the ``llmproxy_ledger_dropped`` metric). Labels are bounded as the
metrics' are: a profile, provider or model that is not in the configuration is named ``unknown`` / ``none``
/ ``other``, so a client cannot grow the ledger with names of its own; a key id is one the store's admin
created (``""`` for a request without a store key)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import fields

from llmproxy.config import Config
from llmproxy.obs.labels import record_labels
from llmproxy.store import USAGE_COUNTS, Usage

#: aggregates waiting to be written at most (a key is a minute x profile x scenario x provider x model)
MAX_KEYS = 20_000
#: endpoints that are not model calls (no tokens, no cost): not in the ledger
SKIPPED_ENDPOINTS = frozenset({"count_tokens"})
#: the usage keys a record's ``usage`` holds, by ledger column
TOKEN_KEYS = {"input_tokens": "input_tokens", "output_tokens": "output_tokens",
              "cache_read_tokens": "cache_read_input_tokens", "cache_write_tokens": "cache_creation_input_tokens"}


def key_of(rec: dict, cfg: Config) -> tuple[str, str, str, str, str, str] | None:
    """(minute, profile, scenario, provider, model, key id) of a request record, its labels bounded by
    ``cfg``; None for a record that is not a model call."""
    when = rec.get("time")
    if rec.get("endpoint") in SKIPPED_ENDPOINTS or not isinstance(when, str) or len(when) < 16:
        return None
    profile, scenario, provider, model = record_labels(rec, cfg)
    key = rec.get("key")
    key_id = key.get("id") if isinstance(key, dict) and isinstance(key.get("id"), str) else ""
    return when[:16] + "Z", str(profile), str(scenario)[:64], provider, model, key_id[:64]


def add_record(row: Usage, rec: dict) -> None:
    status = rec.get("status")
    row.requests += 1
    row.errors += int(not isinstance(status, int) or status >= 400)
    usage = rec.get("usage") if isinstance(rec.get("usage"), dict) else {}
    for col, key in TOKEN_KEYS.items():
        val = usage.get(key)
        if isinstance(val, int) and not isinstance(val, bool) and val > 0:
            setattr(row, col, getattr(row, col) + val)
    cost = rec.get("cost_usd")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        row.cost_usd += float(cost)
    elif rec.get("target") is not None:
        row.cost_unknown += 1  # a model call whose price is unknown: never counted as zero


def merge(into: Usage, row: Usage) -> None:
    for col in USAGE_COUNTS:
        setattr(into, col, getattr(into, col) + getattr(row, col))


class Ledger:
    def __init__(self, config: Callable[[], Config], max_keys: int = MAX_KEYS,
                 on_drop: Callable[[int], None] | None = None):
        self._config, self.max_keys, self._on_drop = config, max_keys, on_drop
        self._rows: dict[tuple, Usage] = {}
        self._lock = threading.Lock()  # the log's writer thread adds, the event loop takes
        self.dropped = 0               # requests not counted because the buffer was full

    def add(self, rec: dict) -> None:
        """The request log's listener: one record into its minute's aggregate (O(1), no I/O)."""
        key = key_of(rec, self._config())
        if key is None:
            return
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                if len(self._rows) >= self.max_keys:
                    self._drop(1)
                    return
                row = self._rows[key] = Usage(*key)
            add_record(row, rec)

    def take(self) -> list[Usage]:
        """Every waiting aggregate, the buffer emptied (to be written; ``give_back`` if that failed)."""
        with self._lock:
            rows, self._rows = list(self._rows.values()), {}
        return rows

    def give_back(self, rows: list[Usage]) -> None:
        """Aggregates that could not be written, merged back into the buffer (to the bound; the requests of
        those that do not fit are counted as dropped)."""
        with self._lock:
            for row in rows:
                have = self._rows.get(row.key())
                if have is not None:
                    merge(have, row)
                elif len(self._rows) < self.max_keys:
                    self._rows[row.key()] = Usage(**{f.name: getattr(row, f.name) for f in fields(row)})
                else:
                    self._drop(row.requests)

    def buffered(self) -> int:
        return len(self._rows)

    def _drop(self, n: int) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)


def summarise(rows: list[Usage]) -> dict:
    """The ledger's rows (every instance's) as ``stats --fleet`` shows them: totals, and per profile and per
    model (``provider/model``) the requests, errors, tokens and cost; the first and last minute covered."""
    def total(group: list[Usage]) -> dict:
        out = {col: sum(getattr(r, col) for r in group) for col in USAGE_COUNTS}
        out["cost_usd"] = round(out["cost_usd"], 6)
        return out

    by: dict[str, dict[str, list[Usage]]] = {"profile": {}, "model": {}}
    for r in rows:
        by["profile"].setdefault(r.profile, []).append(r)
        by["model"].setdefault(f"{r.provider}/{r.model}", []).append(r)
    return {"from_minute": min((r.minute for r in rows), default=None),
            "to_minute": max((r.minute for r in rows), default=None),
            "total": total(rows),
            **{f"by_{kind}": {k: total(v) for k, v in sorted(groups.items())} for kind, groups in by.items()}}
