"""The JSON the dashboard reads (everything under ``/api/`` but the live feed):

- ``GET /api/requests/{request_id}``: one logged record, bodies included, read back from the request log.
- ``GET /api/stats?since=1h``: the recent records from the log, trimmed, for the charts at load; and
  ``fleet``, the usage ledger's totals over the same range (every instance sharing the store, read from the
  store at most once per FLEET_TTL_S per range whatever the number of dashboards; left out with
  ``fleet_note`` when the store does not answer).
- ``GET /api/kg``: each profile's chains and knowledge graph. ``GET /api/providers``: live or simulated
  and why, models and prices, circuits.

Also the secrets its answers are redacted with: answers are redacted as the log redacts them. Like every route,
these answer, without proxy keys, only requests addressed to a loopback name or the configured host (DNS
rebinding): the origin guard in ``server/request/guard.py`` checks that for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from llmproxy import paths
from llmproxy.errors import InvalidRequest, NotFound
from llmproxy.obs.reader import log_files, parse_line, parse_since, record_time, reverse_lines
from llmproxy.redact import redact
from llmproxy.server.dashboard.feed import compact_view
from llmproxy.server.process.fleet import Fleet
from llmproxy.server.process.health import health_info
from llmproxy.server.state import STATE, State, this_worker
from llmproxy.store import USAGE_COUNTS

log = logging.getLogger("llmproxy")

#: how far back /api/stats reads, and how many records it returns at most
MAX_SINCE_S = 24 * 3600
MAX_STATS_RECORDS = 5000
#: the fleet totals: a range's are read from the store at most this often; a read waits this long at most;
#: this many ranges are kept; an instance is live when seen within this many heartbeats
FLEET_TTL_S = 5.0
FLEET_TIMEOUT_S = 2.0
FLEET_RANGES = 8
FLEET_LIVE_BEATS = 3


# -------------------------------------------------------------------------------------------- helpers

def secrets_of(state: State) -> tuple[str, ...]:
    log_secrets = state.log.secrets if state.log is not None else ()
    return tuple(dict.fromkeys((*log_secrets, *state.runtime.cfg.api_keys)))


def json_response(request: web.Request, data: Any) -> web.Response:
    """JSON, gzipped when it is worth it and the browser takes it (the knowledge graphs, the last hour)."""
    body = orjson.dumps(data, default=str)
    headers = {"cache-control": "no-store", "vary": "accept-encoding"}
    if len(body) > 2048 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, 6)
        headers["content-encoding"] = "gzip"
    return web.Response(body=body, content_type="application/json", headers=headers)


def bodies_logged(state: State) -> bool:
    return state.options.verbose >= 2 or state.runtime.cfg.log.bodies


# -------------------------------------------------------------------------------------- log read-back

def find_record(path: Path, request_id: str, max_bytes: int = 256 << 20) -> dict | None:
    """The logged record of ``request_id``, searched newest first (recent requests are found at once)."""
    needle = b'"request_id":"' + request_id.encode() + b'"'
    scanned = 0
    for f in reversed(log_files(path)):
        with contextlib.suppress(OSError), f.open("rb") as fh:
            for line in reverse_lines(fh, os.fstat(fh.fileno()).st_size):
                scanned += len(line) + 1
                if needle in line and (rec := parse_line(line)) is not None and rec.get("request_id") == request_id:
                    return rec
                if scanned > max_bytes:
                    return None
    return None


def recent_records(path: Path, since: float, limit: int) -> tuple[list[dict], bool]:
    """Records logged since ``since`` (unix time), oldest first, at most ``limit`` (the newest); and whether
    there were more."""
    found: list[dict] = []
    for f in reversed(log_files(path)):
        with contextlib.suppress(OSError), f.open("rb") as fh:
            for line in reverse_lines(fh, os.fstat(fh.fileno()).st_size):
                rec = parse_line(line) if line else None
                if rec is None or "request_id" not in rec:
                    continue
                if record_time(rec) < since:
                    found.reverse()
                    return found, False
                if len(found) >= limit:
                    found.reverse()
                    return found, True
                found.append(compact_view(rec))
    found.reverse()
    return found, False


async def request_detail(request: web.Request) -> web.Response:
    rid = request.match_info["request_id"]
    if not rid.startswith("req_") or len(rid) > 64 or not rid[4:].isalnum():
        raise InvalidRequest(f"not a request id: {rid[:80]!r}")
    rec = await asyncio.to_thread(find_record, paths.request_log(), rid)
    if rec is None:
        raise NotFound(f"request {rid} is not in the request log (yet)")
    return json_response(request, redact(rec, extra_secrets=secrets_of(request.app[STATE])))


async def stats(request: web.Request) -> web.Response:
    """The recent records (trimmed) for the charts and the first rows of the page."""
    text = request.query.get("since", "1h")
    try:
        since = parse_since(text)
    except ValueError as exc:
        raise InvalidRequest(str(exc).replace("--since", "since")) from None
    now = time.time()
    since = max(since if since is not None else 0.0, now - MAX_SINCE_S)
    try:
        limit = min(int(request.query.get("limit", MAX_STATS_RECORDS)), MAX_STATS_RECORDS)
    except ValueError:
        raise InvalidRequest("limit: expected a whole number") from None
    records, truncated = await asyncio.to_thread(recent_records, paths.request_log(), since, max(limit, 0))
    state = request.app[STATE]
    answer = {"since": since, "now": now, "records": records, "truncated": truncated}
    fleet = await fleet_totals(state, since)
    if "note" in fleet:
        answer["fleet_note"] = fleet["note"]
    else:
        answer["fleet"] = fleet
    return json_response(request, redact(answer, extra_secrets=secrets_of(state)))


# ------------------------------------------------------------------------------------- fleet totals

def minute_of(t: float) -> str:
    """The ledger's minute (``YYYY-MM-DDTHH:MMZ``) that unix time ``t`` falls in."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%MZ")


class FleetTotals:
    """The usage ledger's totals from a minute on, as the store holds them (every instance's, to their last
    flush), cached: a range is read at most once per FLEET_TTL_S and one read runs at a time, so the store
    sees the same few reads whatever the number of dashboards. A failed read is cached as well (a store that
    is down is not asked again by every page load)."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.reads = 0  # reads of the store so far
        self._cache: dict[str, tuple[float, dict]] = {}
        self._lock = asyncio.Lock()

    def _fresh(self, start: str) -> dict | None:
        hit = self._cache.get(start)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < FLEET_TTL_S else None

    async def get(self, start: str) -> dict:
        if (hit := self._fresh(start)) is not None:
            return hit
        async with self._lock:
            if (hit := self._fresh(start)) is not None:  # read by another request while this one waited
                return hit
            block = await self._read(start)
            if len(self._cache) >= FLEET_RANGES and start not in self._cache:
                del self._cache[min(self._cache, key=lambda k: self._cache[k][0])]
            self._cache[start] = (time.monotonic(), block)
            return block

    async def _read(self, start: str) -> dict:
        self.reads += 1
        store, kind = self.fleet.store, self.fleet.kind
        try:
            async with asyncio.timeout(FLEET_TIMEOUT_S):
                rows = await store.usage(start)
                instances = await store.instances()
        except Exception as exc:  # an auxiliary block: whatever the store did, the page is still answered
            log.warning("dashboard: fleet totals not read from the %s store: %s", kind, type(exc).__name__)
            return {"note": f"fleet totals unavailable: the {kind} store did not answer within "
                            f"{FLEET_TIMEOUT_S:g}s (see /health's store)"}
        beat = self.fleet.cfg.heartbeat_seconds
        sums = {col: sum(getattr(r, col) for r in rows) for col in USAGE_COUNTS}
        return {"scope": "every instance sharing this store, to its last ledger flush", "store": kind,
                "from_minute": start, "requests": sums["requests"], "errors": sums["errors"],
                "cost": round(sums["cost_usd"], 6), "cost_unknown": sums["cost_unknown"],
                "tokens_in": sums["input_tokens"] + sums["cache_read_tokens"] + sums["cache_write_tokens"],
                "tokens_out": sums["output_tokens"],
                "instances": sum(i.seen_ago_s <= FLEET_LIVE_BEATS * beat for i in instances),
                "registered": len(instances), "read_at": time.time()}


#: one cache per running fleet task (per app), gone with it
_FLEET_TOTALS: weakref.WeakKeyDictionary[Fleet, FleetTotals] = weakref.WeakKeyDictionary()


async def fleet_totals(state: State, since: float) -> dict:
    """The ``fleet`` block of /api/stats for records since ``since``, or ``{"note": why not}``."""
    fleet = state.fleet
    if fleet is None:
        return {"note": "fleet totals unavailable: the store's fleet task has not started"}
    totals = _FLEET_TOTALS.get(fleet)
    if totals is None:
        totals = _FLEET_TOTALS[fleet] = FleetTotals(fleet)
    return await totals.get(minute_of(since))


# ------------------------------------------------------------------------------------ kg, providers

def kg_info(state: State) -> dict:
    cfg = state.runtime.cfg
    out = {}
    for name, prof in sorted(state.runtime.profiles.items()):
        pc = prof.config
        concepts = [{"name": c.name, "terms": list(c.terms), "routes": [str(t) for t in c.routes],
                     "scenario": c.scenario, "priority": c.priority, "hooks": list(c.hooks),
                     "absorber": c.absorber, "file": Path(c.source).name}
                    for c in sorted(prof.kg.concepts.values(), key=lambda c: (-c.priority, c.name))]
        out[name] = {
            "description": pc.description,
            "default": [str(t) for t in pc.default],
            "scenarios": {s: [str(t) for t in ch] for s, ch in pc.scenarios.items()},
            "concepts": concepts,
            "terms": prof.kg.term_count,
            "duplicates": [{"term": t, "kept": a, "dropped": b} for t, a, b in prof.kg.duplicates],
        }
    return {"default_profile": cfg.server.default_profile, "profiles": out}


async def kg(request: web.Request) -> web.Response:
    return json_response(request, kg_info(request.app[STATE]))


def providers_info(state: State) -> dict:
    h = health_info(state)
    cfg = state.runtime.cfg
    provs = {}
    for name, info in h["providers"].items():
        pc = cfg.providers.get(name)
        models = {}
        if pc is not None:
            for mid, spec in pc.models.items():
                models[mid] = {"context_window": spec.context_window, "max_output": spec.max_output,
                               "input_price": spec.input_price, "output_price": spec.output_price}
        provs[name] = {**info, "base_url": pc.base_url if pc else None,
                       "api_key_env": pc.api_key_env if pc else None, "models": models}
    circuits = h.get("circuits") or {}
    worker = this_worker()
    return {"providers": provs, "circuits": circuits, "simulate_all": state.options.simulate,
            "worker": {"index": worker[0], "count": worker[1]} if worker else None,
            "version": h["version"], "uptime_s": h["uptime_s"], "requests_served": h["requests_served"],
            "in_flight": h["in_flight"], "default_profile": h["default_profile"], "profiles": h["profiles"],
            "config_stale_since": h["config_stale_since"], "reload_problems": h["reload_problems"],
            "request_log": h.get("request_log"), "events": state.events.info(), "bodies_logged": bodies_logged(state),
            "auth": bool(cfg.api_keys)}


async def providers(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response(request, redact(providers_info(state), extra_secrets=secrets_of(state)))
