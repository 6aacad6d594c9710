"""`llmproxy logs` and `llmproxy stats`: the request log, read back."""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

from llmproxy import paths
from llmproxy.cli.console import CLIError, fit_width, note, out
from llmproxy.cli.format import UNROUTED
from llmproxy.cli.options import LogsOptions
from llmproxy.obs.reader import Filter, follow, parse_since, read, tail


def _filter(opts: LogsOptions) -> Filter:
    """The filter the options ask for; a CLIError (exit 2) for a value that can never match."""
    from llmproxy.config import SCENARIOS

    if opts.scenario and opts.scenario not in SCENARIOS:
        raise CLIError(f"--scenario: unknown scenario {opts.scenario!r} (known: {', '.join(SCENARIOS)})", code=2)
    try:
        since = parse_since(opts.since)
    except ValueError as exc:
        raise CLIError(str(exc), code=2) from None
    return Filter(profile=opts.profile, scenario=opts.scenario, provider=opts.provider, status=opts.status,
                  since=since)


class _Printer:
    """Prints records as `logs` shows them: the column names above the first row, the bodies under each row
    with --bodies, and once, if a record shown had none, that bodies are not being logged."""

    def __init__(self, opts: LogsOptions):
        self.opts, self.rows, self.told = opts, 0, False

    def __call__(self, rec: dict, raw: bytes) -> None:
        from llmproxy.cli.format import request_header, request_row

        if self.opts.json_out:
            sys.stdout.write(raw.decode("utf-8", "replace") + "\n")
            sys.stdout.flush()
            return
        if not self.rows:
            out.print(request_header(), soft_wrap=True)
        self.rows += 1
        out.print(request_row(rec), soft_wrap=True)
        if not self.opts.bodies:
            return
        if "request_body" in rec or "response_body" in rec:
            from llmproxy.cli.common import print_bodies

            print_bodies(out, rec, indent="  ")
        elif not self.told:
            self.told = True
            note("--bodies: this request's bodies were not logged; set [log] bodies = true in the config "
                 "(or serve with -vv) to log them")


def logs(opts: LogsOptions) -> int:
    path = opts.log_path or paths.request_log()
    flt = _filter(opts)
    show = _Printer(opts)
    shown, position = tail(path, flt, max(opts.n, 0))
    for rec, raw in shown:
        show(rec, raw)
    if not opts.follow:
        position.close()
        if not shown and not opts.json_out:
            asked = any((opts.profile, opts.scenario, opts.provider, opts.status, opts.since))
            note(f"no requests in {path}" + (" match the filters" if asked else ""))
        return 0
    try:  # from exactly where the tail stopped: nothing written in between is lost
        for rec, raw in follow(path, position=position):
            if flt(rec):
                show(rec, raw)
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


def _failed(r: dict) -> bool:
    return int(r.get("status") or 0) >= 400 or bool(r.get("stream_error"))


#: what ``stats --by`` groups by: a record's group name under each
GROUPS = {
    "profile": lambda r: r.get("profile") or "?",
    "model": lambda r: r.get("target") or (r.get("decision") or {}).get("target") or UNROUTED,
    "key": lambda r: (r.get("key") or {}).get("name") or NO_KEY,  # a client key (llmproxy keys)
}
NO_KEY = "(no key)"


def group_kinds(by: str | None) -> tuple[str, ...]:
    """``--by profile,key`` as its groups (default: profile and model); ValueError naming the valid ones."""
    kinds = tuple(dict.fromkeys(k.strip() for k in (by or "profile,model").split(",") if k.strip()))
    unknown = [k for k in kinds if k not in GROUPS]
    if unknown or not kinds:
        raise ValueError(f"--by: unknown {', '.join(map(repr, unknown)) or 'nothing'}; choose from "
                         f"{', '.join(GROUPS)} (comma-separated)")
    return kinds


def compute(records: list[dict], kinds: tuple[str, ...] = ("profile", "model")) -> dict:
    """Per profile and per model (or the ``kinds`` asked for: ``GROUPS``): requests, errors, p50/p95 latency
    and TTFT (of the requests served: a request refused in 0 ms is not a fast answer), tokens, cost, scenario
    shares."""
    groups: dict[str, dict[str, list[dict]]] = {kind: defaultdict(list) for kind in kinds}
    for r in records:
        if r.get("endpoint") == "count_tokens":
            continue
        for kind, by in groups.items():
            by[GROUPS[kind](r)].append(r)
    result: dict = {}
    for kind, by in groups.items():
        rows = {}
        for key, recs in sorted(by.items()):
            served = [r for r in recs if r.get("status") is not None and not _failed(r)]  # latency: served only
            durs = [r["duration_ms"] for r in served if r.get("duration_ms") is not None]
            ttfts = [r["ttft_ms"] for r in served if r.get("ttft_ms") is not None]
            costs = [r.get("cost_usd") for r in recs if "cost_usd" in r]
            scen = Counter((r.get("decision") or {}).get("scenario") or UNROUTED for r in recs)
            rows[key] = {
                "requests": len(recs),
                "errors": sum(1 for r in recs if _failed(r)),
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
    result["requests"] = sum(v["requests"] for v in result[f"by_{kinds[0]}"].values())
    return result


def stats(since: str | None, json_out: bool, log_path: Path | None = None, by: str | None = None) -> int:
    try:
        flt = Filter(since=parse_since(since))
        kinds = group_kinds(by)
    except ValueError as exc:
        raise CLIError(str(exc), code=2) from None
    path = log_path or paths.request_log()
    records = [rec for rec, _ in read(path, flt)]
    data = compute(records, kinds)
    if json_out:
        out.print_json(data=data)
        return 0
    if not records:
        out.print(f"no requests in {path}" + (f" since {since}" if since else ""))
        return 0
    width = fit_width()  # the terminal's, or COLUMNS in a pipe; none: whole lines, never cut
    for line in stats_lines(data, width):
        out.print(line, markup=False, soft_wrap=True, style="bold" if line.startswith("by ") else None)
    return 0


_COLS = ("req", "err", "p50", "p95", "ttft50", "ttft95", "tok in→out", "cost")


def _cells(row: dict) -> tuple[str, ...]:
    from llmproxy.cli.format import fmt_cost, fmt_ms

    cost = fmt_cost(row["cost_usd"]) + (f" +{row['cost_unknown']}?" if row["cost_unknown"] else "")
    return (str(row["requests"]), str(row["errors"]), fmt_ms(row["p50_ms"]), fmt_ms(row["p95_ms"]),
            fmt_ms(row["p50_ttft_ms"]), fmt_ms(row["p95_ttft_ms"]), f"{row['input_tokens']}→{row['output_tokens']}",
            cost)


def stats_lines(data: dict, width: int | None = None) -> list[str]:
    """`stats` as plain lines: per group a header and one row per key (numbers right-aligned), the scenario
    shares on an indented line below. With ``width`` (a terminal), a key too long for the space the numbers
    leave gets a line of its own and its numbers go on the next; without, nothing is ever cut or wrapped."""
    import textwrap

    from llmproxy.cli.format import columns

    lines: list[str] = []
    kinds = [k for k in GROUPS if f"by_{k}" in data]
    for kind in kinds:
        rows = data[f"by_{kind}"]
        cells = {key: _cells(row) for key, row in rows.items()}
        numbers = sum(max(len(c[i]) for c in [_COLS, *cells.values()]) + 2 for i in range(len(_COLS)))
        fits = max(len(kind), (width or 1 << 30) - numbers)
        table = columns([(kind, *_COLS), *(((k if len(k) <= fits else ""), *c) for k, c in cells.items())],
                        right=tuple(range(1, len(_COLS) + 1)))
        lines += ([""] if lines else []) + [f"by {kind}", table[0]]
        for (key, row), line in zip(rows.items(), table[1:], strict=True):
            lines += [key, line] if len(key) > fits else [line]
            shares = "scenarios: " + ", ".join(f"{k} {v:.0%}" for k, v in row["scenarios"].items())
            lines += textwrap.wrap(shares, width - 4, initial_indent="    ", subsequent_indent="      ") \
                if width else ["    " + shares]
    if any(row["cost_unknown"] for k in kinds for row in data[f"by_{k}"].values()):
        lines += ["", "+N?: N requests whose price is unknown (a model without prices in the catalog)"]
    return lines
