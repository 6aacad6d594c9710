"""`llmproxy logs` and `llmproxy stats`: the request log, read back."""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from llmproxy import paths
from llmproxy.obs.reader import Filter, follow, parse_since, read

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def _filter(profile, scenario, provider, status, since) -> Filter:
    return Filter(profile=profile, scenario=scenario, provider=provider, status=status, since=parse_since(since))


def _show(rec: dict, raw: bytes, json_out: bool, bodies: bool) -> None:
    from llmproxy.cli.format import request_row

    if json_out:
        sys.stdout.write(raw.decode("utf-8", "replace") + "\n")
        sys.stdout.flush()
        return
    out.print(request_row(rec))
    if bodies:
        from rich.json import JSON

        for key in ("request_body", "response_body"):
            if key in rec:
                out.print(f"  [dim]{key}[/]")
                out.print(JSON.from_data(rec[key]))


def logs(follow_: bool, n: int, profile, scenario, provider, status, since, json_out: bool, bodies: bool,
         log_path: Path | None = None) -> int:
    path = log_path or paths.request_log()
    try:
        flt = _filter(profile, scenario, provider, status, since)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    for rec, raw in read(path, flt, last=n):
        _show(rec, raw, json_out, bodies)
    if not follow_:
        return 0
    try:
        for rec, raw in follow(path):
            if flt(rec):
                _show(rec, raw, json_out, bodies)
    except KeyboardInterrupt:
        pass
    return 0


# ------------------------------------------------------------------------------------------------ stats

def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s), math.ceil(q / 100 * len(s))) - 1)]


def compute(records: list[dict]) -> dict:
    """Per profile and per model: requests, errors, p50/p95 latency and TTFT, tokens, cost, scenario shares."""
    groups: dict[str, dict[str, list[dict]]] = {"profile": defaultdict(list), "model": defaultdict(list)}
    for r in records:
        if r.get("endpoint") == "count_tokens":
            continue
        groups["profile"][r.get("profile") or "?"].append(r)
        groups["model"][r.get("target") or "(none)"].append(r)
    result: dict = {}
    for kind, by in groups.items():
        rows = {}
        for key, recs in sorted(by.items()):
            durs = [r["duration_ms"] for r in recs if r.get("duration_ms") is not None]
            ttfts = [r["ttft_ms"] for r in recs if r.get("ttft_ms") is not None]
            costs = [r.get("cost_usd") for r in recs if "cost_usd" in r]
            scen = Counter((r.get("decision") or {}).get("scenario", "none") for r in recs)
            rows[key] = {
                "requests": len(recs),
                "errors": sum(1 for r in recs if int(r.get("status") or 0) >= 400 or r.get("stream_error")),
                "p50_ms": pct(durs, 50), "p95_ms": pct(durs, 95),
                "p50_ttft_ms": pct(ttfts, 50), "p95_ttft_ms": pct(ttfts, 95),
                "input_tokens": sum(int((r.get("usage") or {}).get("input_tokens") or 0)
                                    + int((r.get("usage") or {}).get("cache_read_input_tokens") or 0)
                                    + int((r.get("usage") or {}).get("cache_creation_input_tokens") or 0) for r in recs),
                "output_tokens": sum(int((r.get("usage") or {}).get("output_tokens") or 0) for r in recs),
                "cost_usd": round(sum(c for c in costs if c is not None), 6),
                "cost_unknown": sum(1 for c in costs if c is None),
                "scenarios": {k: round(v / len(recs), 4) for k, v in scen.most_common()},
            }
        result[f"by_{kind}"] = rows
    result["requests"] = sum(v["requests"] for v in result["by_profile"].values())
    return result


def stats(since: str | None, json_out: bool, log_path: Path | None = None) -> int:
    from llmproxy.cli.format import fmt_cost, fmt_ms

    try:
        flt = Filter(since=parse_since(since))
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    path = log_path or paths.request_log()
    records = [rec for rec, _ in read(path, flt)]
    data = compute(records)
    if json_out:
        out.print_json(data=data)
        return 0
    if not records:
        out.print(f"no requests in {path}" + (f" since {since}" if since else ""))
        return 0
    for kind in ("profile", "model"):
        tbl = Table(title=f"by {kind}", title_justify="left", show_edge=False)
        for col in (kind, "requests", "errors", "p50", "p95", "ttft p50", "ttft p95", "tokens in→out", "cost",
                    "scenarios"):
            tbl.add_column(col, justify="left" if col in (kind, "scenarios") else "right")
        for key, row in data[f"by_{kind}"].items():
            cost = fmt_cost(row["cost_usd"]) + (f" (+{row['cost_unknown']} unknown)" if row["cost_unknown"] else "")
            tbl.add_row(key, str(row["requests"]), str(row["errors"]), fmt_ms(row["p50_ms"]), fmt_ms(row["p95_ms"]),
                        fmt_ms(row["p50_ttft_ms"]), fmt_ms(row["p95_ttft_ms"]),
                        f"{row['input_tokens']}→{row['output_tokens']}", cost,
                        ", ".join(f"{k} {v:.0%}" for k, v in row["scenarios"].items()))
        out.print(tbl)
    return 0
