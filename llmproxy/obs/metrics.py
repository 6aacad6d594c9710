"""Prometheus metrics (prometheus-client), one registry per app. Labels are bounded: profile, scenario,
provider and status come from config or a fixed set; a model outside the catalog is reported as "other";
no request ids or free text.

With ``serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start: every
worker's values then live in files there, and ``/metrics`` (whichever worker answers) sums them."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from llmproxy.config import Config
from llmproxy.obs.labels import record_labels

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("llmproxy_requests", "Requests handled",
                                ["endpoint", "profile", "scenario", "provider", "model", "status"], registry=r)
        self.latency = Histogram("llmproxy_request_duration_seconds", "Total request duration",
                                 ["endpoint", "profile", "provider"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("llmproxy_time_to_first_token_seconds", "Time to the first content token (streams)",
                              ["profile", "provider", "model"], buckets=TTFT_BUCKETS, registry=r)
        self.tokens = Counter("llmproxy_tokens", "Tokens by direction", ["direction", "provider", "model"], registry=r)
        self.cost = Counter("llmproxy_cost_usd", "Estimated cost in USD (requests with known prices)",
                            ["provider", "model"], registry=r)
        self.upstream_errors = Counter("llmproxy_upstream_errors", "Upstream failures, including ones that fell back",
                                       ["provider", "reason"], registry=r)
        self.fallbacks = Counter("llmproxy_fallbacks", "Times the next target of a chain was tried",
                                 ["provider", "reason"], registry=r)
        self.retries = Counter("llmproxy_retries", "Times the same target was tried again", ["provider", "reason"],
                               registry=r)
        self.breaker_panic = Counter("llmproxy_breaker_panic", "Requests that tried a target whose circuit was "
                                     "open because every target of their route was (panic mode)", ["provider"],
                                     registry=r)
        self.circuit_open = Gauge("llmproxy_circuit_open", "1 while a target's circuit is open (skipped)",
                                  ["provider", "model"], registry=r, multiprocess_mode="livemax")
        self.in_flight = Gauge("llmproxy_in_flight_requests", "Requests being served", registry=r,
                               multiprocess_mode="livesum")
        self._circuits: set[tuple[str, str]] = set()
        self.disconnects = Counter("llmproxy_client_disconnects", "Clients that went away mid-request",
                                   ["profile"], registry=r)
        # refused before any work (server/request/guard.py, server/request/middleware.py): reason is host, origin,
        # content_type or auth
        self.rejected = Counter("llmproxy_rejected_requests", "Requests refused before any work was done",
                                ["reason"], registry=r)
        # what aiohttp's parser refused (server/process/connection.py): error is the parser's exception class
        self.bad_requests = Counter("llmproxy_bad_requests", "Requests the HTTP parser could not read",
                                    ["error"], registry=r)
        # reason: header_timeout (the head took longer than server.header_timeout) or pending_heads (more
        # than server.max_pending_heads connections were sending their head)
        self.closed_connections = Counter("llmproxy_closed_connections",
                                          "Connections closed before a request head arrived", ["reason"], registry=r)

        # the fleet's background work (server/process/fleet.py): requests the usage ledger could not keep (its buffer
        # was full while the store was unreachable), and background store writes that failed (task: heartbeat
        # or ledger; each is retried with backoff)
        self.ledger_dropped = Counter("llmproxy_ledger_dropped", "Requests not counted in the usage ledger "
                                      "(its buffer was full while the store was unreachable)", registry=r)
        self.store_failures = Counter("llmproxy_store_failures", "Background store writes that failed (retried "
                                      "with backoff)", ["task"], registry=r)
        # per client key (llmproxy keys): labelled by the key's name, which an admin chose (bounded); requests
        # without a store key are not counted here
        self.key_requests = Counter("llmproxy_key_requests", "Requests per client key", ["key", "status"],
                                    registry=r)
        self.key_tokens = Counter("llmproxy_key_tokens", "Tokens per client key", ["key", "direction"], registry=r)
        self.key_cost = Counter("llmproxy_key_cost_usd", "Estimated cost in USD per client key", ["key"],
                                registry=r)

    def observe_circuits(self, snapshot: dict[str, dict]) -> None:
        """Circuit states from the breakers (keys are 'provider/model' from config, so labels stay bounded);
        a circuit that closed again reads 0."""
        now = {tuple(key.partition("/")[::2]): c["state"] == "open" for key, c in snapshot.items()}
        for labels in self._circuits | set(now):
            self.circuit_open.labels(*labels).set(1 if now.get(labels) else 0)
        self._circuits |= set(now)

    def render(self) -> bytes:
        if path := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=path)
            return generate_latest(merged)
        return generate_latest(self.registry)

    def observe(self, rec: dict, cfg: Config) -> None:
        """Account one finished request record."""
        profile, scenario, provider, model = record_labels(rec, cfg)
        endpoint = rec.get("endpoint", "other")
        self.requests.labels(endpoint, profile, scenario, provider, model, str(rec.get("status", 0))).inc()
        self.latency.labels(endpoint, profile, provider).observe(rec.get("duration_ms", 0) / 1000)
        if rec.get("ttft_ms") is not None:
            self.ttft.labels(profile, provider, model).observe(rec["ttft_ms"] / 1000)
        usage = rec.get("usage") or {}
        if endpoint != "count_tokens":
            for direction, key in (("input", "input_tokens"), ("output", "output_tokens"),
                                   ("cache_read", "cache_read_input_tokens"),
                                   ("cache_write", "cache_creation_input_tokens")):
                if usage.get(key):
                    self.tokens.labels(direction, provider, model).inc(usage[key])
        if rec.get("cost_usd"):
            self.cost.labels(provider, model).inc(rec["cost_usd"])
        attempts = rec.get("attempts") or ()
        served = bool(rec.get("status")) and rec["status"] < 400
        for i, att in enumerate(attempts):
            p = att.get("target", "none/none").partition("/")[0]
            p = p if p in cfg.providers else "none"
            reason = _reason(att.get("status"))
            self.upstream_errors.labels(p, reason).inc()
            if att.get("retried"):
                self.retries.labels(p, reason).inc()
            elif served or i < len(attempts) - 1:  # a fallback only when another target was tried after it
                self.fallbacks.labels(p, reason).inc()
        if rec.get("status", 200) >= 500 and rec.get("target") and not rec.get("attempts"):
            self.upstream_errors.labels(provider, _reason(rec.get("status"))).inc()
        if panic := rec.get("breaker_panic"):
            p = panic.partition("/")[0]
            self.breaker_panic.labels(p if p in cfg.providers else "none").inc()
        if rec.get("stream_error"):
            self.upstream_errors.labels(provider, "mid_stream").inc()
        if rec.get("client_disconnected"):
            self.disconnects.labels(profile).inc()
        if isinstance(key := (rec.get("key") or {}).get("name"), str):
            self._observe_key(key, rec, usage if endpoint != "count_tokens" else {})

    def _observe_key(self, key: str, rec: dict, usage: dict) -> None:
        self.key_requests.labels(key, str(rec.get("status", 0))).inc()
        for direction, name in (("input", "input_tokens"), ("output", "output_tokens"),
                                ("cache_read", "cache_read_input_tokens"), ("cache_write", "cache_creation_input_tokens")):
            if isinstance(n := usage.get(name), int) and n > 0:
                self.key_tokens.labels(key, direction).inc(n)
        if rec.get("cost_usd"):
            self.key_cost.labels(key).inc(rec["cost_usd"])


def _reason(status: int | None) -> str:
    if status in (429, 529, 401, 408, 504):
        return {429: "rate_limited", 529: "overloaded", 401: "auth", 408: "timeout", 504: "timeout"}[status]
    if status and status >= 500:
        return "5xx"
    if status and status >= 400:
        return "4xx"
    return "other"
