"""``llmproxy status --fleet`` and ``llmproxy stats --fleet``: what every instance sharing this store wrote
(docs/scaling.md): the registry of instances (their heartbeats and circuits) and the usage ledger (per-minute
aggregates). They read the store the configuration names (``[store] url`` or $LLMPROXY_DATABASE_URL; else
this machine's SQLite store, whose "fleet" is one daemon's ``--workers``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from llmproxy import paths
from llmproxy.cli.common import load_lenient
from llmproxy.cli.console import CLIError, out
from llmproxy.cli.format import columns, fmt_cost, fmt_uptime
from llmproxy.cli.options import ConfigPaths
from llmproxy.obs.ledger import summarise
from llmproxy.obs.reader import parse_since
from llmproxy.store import Instance, Store, StoreUnavailable, open_store

T = TypeVar("T")
#: an instance silent for this many heartbeat intervals is shown as ``silent`` (stopped uncleanly, or cut off)
SILENT_BEATS = 3


def with_store(fn: Callable[[Store, float], Awaitable[T]]) -> T:
    """``fn(store, heartbeat_seconds)`` on the configured store; an unreachable one is a CLIError naming it
    (never its password)."""
    cfg, _problems = load_lenient(ConfigPaths())

    async def run() -> T:
        store = open_store(paths.home(), cfg.store)
        try:
            return await fn(store, cfg.store.heartbeat_seconds)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StoreUnavailable as exc:
        raise CLIError(str(exc)) from None


def open_circuits(inst: Instance) -> list[str]:
    return sorted(k for k, c in inst.circuits.items() if isinstance(c, dict) and c.get("state") != "closed")


def status_fleet(json_out: bool) -> int:
    """Every registered instance: id, address, version, pid, started, last seen, circuits not closed. Exit 1
    when none has been seen within SILENT_BEATS heartbeats."""
    async def read(store: Store, beat: float) -> tuple[list[Instance], float]:
        return await store.instances(), beat

    instances, beat = with_store(read)
    live = [i for i in instances if i.seen_ago_s <= SILENT_BEATS * beat]
    if json_out:
        out.print_json(data={"instances": [{**vars(i), "live": i in live} for i in instances]})
        return 0 if live else 1
    if not instances:
        out.print("no instance has registered in this store")
        return 1
    rows = [("instance", "address", "version", "pid", "started", "seen", "state", "circuits not closed")]
    for i in instances:
        rows.append((i.id, f"{i.host}:{i.port or '?'}", i.version, str(i.pid), i.started_at[:19] + "Z",
                     f"{fmt_uptime(i.seen_ago_s)} ago", "live" if i in live else "silent",
                     ", ".join(open_circuits(i)) or "-"))
    for line in columns(rows, right=(3,)):
        out.print(line, markup=False, soft_wrap=True)
    out.print(f"{len(live)} live of {len(instances)} registered (silent: no heartbeat for "
              f"{SILENT_BEATS} x {beat:g}s)", markup=False)
    return 0 if live else 1


def since_minute(since: str | None) -> str:
    try:
        when = parse_since(since)
    except ValueError as exc:
        raise CLIError(str(exc), code=2) from None
    return "0000" if when is None else datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%MZ")


def stats_fleet(since: str | None, json_out: bool) -> int:
    """The usage ledger summed over every instance: totals, per profile and per model."""
    start = since_minute(since)

    async def read(store: Store, _beat: float) -> dict:
        return summarise(await store.usage(start))

    data = with_store(read)
    if json_out:
        out.print_json(data=data)
        return 0
    if not data["total"]["requests"]:
        out.print("no usage in the fleet's ledger" + (f" since {since}" if since else ""))
        return 0
    out.print(f"fleet usage, {data['from_minute']} to {data['to_minute']} (every instance, per minute)",
              markup=False)
    for kind in ("profile", "model"):
        rows = [(kind, "req", "err", "tok in", "tok out", "cache r/w", "cost")]
        for key, t in [*data[f"by_{kind}"].items(), ("total", data["total"])]:
            cost = fmt_cost(t["cost_usd"]) + (f" +{t['cost_unknown']}?" if t["cost_unknown"] else "")
            rows.append((key, str(t["requests"]), str(t["errors"]), str(t["input_tokens"]),
                         str(t["output_tokens"]), f"{t['cache_read_tokens']}/{t['cache_write_tokens']}", cost))
        out.print("")
        for line in columns(rows, right=(1, 2, 3, 4, 5, 6)):
            out.print(line, markup=False, soft_wrap=True)
    return 0
