"""The markdown of a run (``render``): the run's header, then one section per part measured (start-up and idle
memory; the matrix's added latency, proxy CPU per request, the passthrough against the bare relay,
throughput and errors; the long streams), and the issue's targets with met / not met.
"""

from __future__ import annotations

import statistics
import sys

from bench.client import Stats
from bench.figures import BODY_NAMES, PATHS, ms, pct, plus, ratio, summarize, table
from bench.parties import Variant


def _header(args, mach: dict, variants: list[Variant], notes: list[str]) -> list[str]:
    """The machine, the command, and where each proxy imports llmproxy from."""
    has_base = "baseline" in [v.label for v in variants]
    L: list[str] = []
    L.append(f"Run {mach['date']} on {mach['nproc']} × {mach['cpu']}, {mach['mem']} RAM; Python {mach['python']}, "
             f"aiohttp {mach['aiohttp']}; working tree at {mach['rev']}"
             + (f" + uncommitted changes in {mach['dirty']} files under llmproxy/" if mach["dirty"] else "")
             + (f"; baseline {args.baseline}" + (f" ({variants[1].rev})" if variants[1].rev != args.baseline else "")
                if has_base else "")
             + f". Load average at start {mach['load'][0]:.1f} (the machine is shared: read ratios and medians, "
               "not absolute figures).")
    L.append("")
    L.append(f"Command: `python scripts/bench.py {' '.join(sys.argv[1:])}`."
             + (f" Rounds {args.rounds}, requests per batch c=1: {args.n1}, c=16: {args.n16}, c=64: {args.n64}; "
                f"streamed answers {args.deltas} text deltas." if "matrix" in args.parts else ""))
    for v in variants:
        L.append(f"- `{v.label}` imports llmproxy from `{v.imported_from}`; `serve --workers`: "
                 f"{'yes' if v.has_workers else 'not offered'}")
    L += [f"- {n}" for n in notes]
    return L


def _startup(startup: dict, targets: list) -> list[str]:
    L: list[str] = ["", "### Start-up and idle memory", ""]
    rows = []
    for label, d in startup.items():
        rows.append([label, f"{statistics.median(d['ready']):.2f}", f"{min(d['ready']):.2f}–{max(d['ready']):.2f}",
                     f"{statistics.median(d['cpu']):.2f}", f"{statistics.median(d['rss']):.0f}"])
    L.append(table(["proxy", "ready s (median)", "range", "CPU s by ready", "idle RSS MB"], rows))
    d = startup["new"]
    rd, rs = statistics.median(d["ready"]), statistics.median(d["rss"])
    targets.append(("Ready ≤ 1 s, idle RSS ≤ 60 MB per worker", f"{rd:.2f} s, {rs:.0f} MB",
                    "met" if rd <= 1 and rs <= 60 else "not met"))
    return L


def _latency(args, summary: dict, proxies: list[str], has_base: bool, targets: list) -> list[str]:
    L: list[str] = ["", "### Added latency at c=1 (proxy − direct, ms)", "",
                    "Non-stream: whole response. Stream: TTFB (first byte of the answer) and the whole stream. "
                    "Direct is the same request to the fake upstream (for the translated path, the equivalent "
                    "Chat Completions request). Each +p99 is p99(proxy) − p99(direct), so it can be below +p50.",
                    ""]
    head = ["body", "path", "mode", "direct p50"]
    for pr in proxies:
        head += [f"{pr} +p50", f"{pr} +p99"]
    if has_base:
        head.append("+p50 new/baseline")
    rows = []
    added: dict = {}
    for (b, p, m), d in summary.items():
        dl = d["lat"].get("direct")
        if not dl:
            continue
        for what in (("total", "ttfb") if m == "stream" else ("total",)):
            def sel(st: Stats, w: str = what) -> list[float]:
                return st.ttfb if w == "ttfb" else st.lat
            row = [BODY_NAMES[b], p, m if m == "json" else f"stream {what.upper() if what == 'ttfb' else 'total'}",
                   ms(pct(sel(dl), 0.5))]
            for pr in proxies:
                st = d["lat"].get(pr)
                a50 = pct(sel(st), 0.5) - pct(sel(dl), 0.5) if st else float("nan")
                a99 = pct(sel(st), 0.99) - pct(sel(dl), 0.99) if st else float("nan")
                added[(pr, b, p, m, what)] = a50
                row += [plus(a50), plus(a99)]
            if has_base:
                row.append(ratio(added[("new", b, p, m, what)], added[("baseline", b, p, m, what)]))
            rows.append(row)
    L.append(table(head, rows))
    for b, lim in (("small", 1e-3), ("cc", 2e-3)):
        worst = max((added.get(("new", b, p, m, w), float("nan")) for p in args.paths for m, w in
                     (("json", "total"), ("stream", "ttfb")) if ("new", b, p, m, w) in added), default=float("nan"))
        if worst == worst:
            targets.append((f"Added p50 ≤ {lim * 1000:.0f} ms, {BODY_NAMES[b]} body, both paths, non-stream and "
                            "stream TTFB", f"worst {worst * 1000:+.2f} ms", "met" if worst <= lim else "not met"))
    return L


def _cpu(args, summary: dict, proxies: list[str], has_base: bool, targets: list) -> list[str]:
    L: list[str] = ["", "### Proxy CPU per request (ms; utime+stime of the proxy process, pooled over c = "
                        f"{'/'.join(map(str, args.concurrency))})", ""]
    head = ["body", "path", "mode"] + [f"{pr} ms/req" for pr in proxies]
    if has_base:
        head.append("new/baseline")
    head += [f"{pr} by c" for pr in proxies]
    rows = []
    cpu: dict = {}
    for (b, p, m), d in summary.items():
        row = [BODY_NAMES[b], p, m]
        for pr in proxies:
            cs, n = d["cpu"].get(pr, (0.0, 0))
            cpu[(pr, b, p, m)] = cs / n if n else float("nan")
            row.append(ms(cpu[(pr, b, p, m)]))
        if has_base:
            row.append(ratio(cpu[("new", b, p, m)], cpu[("baseline", b, p, m)]))
        for pr in proxies:
            row.append(" / ".join(ms(d.get("cpu_c", {}).get((pr, c), float("nan"))) for c in args.concurrency))
        rows.append(row)
    L.append(table(head, rows))
    for p, lim in (("pass", 1.5e-3), ("xlate", 2e-3)):
        vals = [cpu.get(("new", "cc", p, m), float("nan")) for m in args.modes]
        vals = [x for x in vals if x == x]
        if vals:
            targets.append((f"Proxy CPU ≤ {lim * 1000:.1f} ms/request, {PATHS[p]}, Claude Code body",
                            " / ".join(f"{m} {ms(cpu[('new', 'cc', p, m)])} ms" for m in args.modes
                                       if ("new", "cc", p, m) in cpu),
                            "met" if max(vals) <= lim else "not met"))
    if has_base:
        for p, bar in (("xlate", "must drop"), ("pass", "no worse (≤ 1.05)")):
            r = [cpu[("new", b, p, "stream")] / cpu[("baseline", b, p, "stream")] for b in args.bodies
                 if ("baseline", b, p, "stream") in cpu and cpu[("baseline", b, p, "stream")]]
            if r:
                ok = max(r) < 1 if p == "xlate" else max(r) <= 1.05
                targets.append((f"Architecture bar: CPU/request on the {PATHS[p]} stream path {bar} vs baseline",
                                " / ".join(f"{BODY_NAMES[b]} ×{x:.2f}" for b, x in zip(args.bodies, r, strict=False)),
                                "met" if ok else "not met"))
    return L


def _added_p50(st: Stats | None, direct: Stats | None, ttfb: bool) -> float:
    if not (st and direct):
        return float("nan")
    return pct(st.ttfb if ttfb else st.lat, 0.5) - pct(direct.ttfb if ttfb else direct.lat, 0.5)


def render_relay(summary: dict, args) -> list[str]:
    """The passthrough cells against the bare relay (``scripts/bench/relay.py``), measured in the same rounds."""
    rows = []
    for (b, p, m), d in summary.items():
        if p != "pass" or "relay" not in d["cpu"] or "new" not in d["cpu"]:
            continue
        (cn, nn), (cr, nr) = d["cpu"]["new"], d["cpu"]["relay"]
        new, rel = (cn / nn if nn else float("nan")), (cr / nr if nr else float("nan"))
        dl, ln, lr = d["lat"].get("direct"), d["lat"].get("new"), d["lat"].get("relay")
        rows.append([BODY_NAMES[b], m, ms(rel), ms(new), f"{(new - rel) * 1e6:+.0f}", ratio(new, rel),
                     plus(_added_p50(lr, dl, m == "stream")), plus(_added_p50(ln, dl, m == "stream"))])
    if not rows:
        return []
    return ["", "### Against a bare relay (passthrough)", "",
            "The relay reads the body, parses it, sets the model, serialises it, posts it upstream and relays the "
            "answer's bytes, nothing else (`scripts/bench/relay.py`): what any aiohttp proxy pays on this machine. "
            "CPU pooled over c = " + "/".join(map(str, args.concurrency)) + "; added p50 at c = 1 (stream: TTFB).", "",
            table(["body", "mode", "relay ms/req", "new ms/req", "new − relay µs", "new/relay", "relay +p50",
                   "new +p50"], rows)]


def _throughput(args, summary: dict, parties: list[str], targets: list) -> list[str]:
    L: list[str] = ["", "### Throughput (requests/s; × direct in brackets)", ""]
    head = ["body", "path", "mode", "c", "direct"] + parties
    rows = []
    for (b, p, m), d in summary.items():
        for c in args.concurrency:
            dr = d["tput"].get(("direct", c), float("nan"))
            row = [BODY_NAMES[b], p, m, str(c), f"{dr:.0f}"]
            for pr in parties:
                x = d["tput"].get((pr, c), float("nan"))
                row.append("–" if x != x else f"{x:.0f} (×{x / dr:.2f})")
            rows.append(row)
    L.append(table(head, rows))
    if "new-w2" in parties:
        r = [(d["tput"].get(("new-w2", 16)), d["tput"].get(("new", 16)), d["tput"].get(("direct", 16)))
             for (b, p, m), d in summary.items() if b == "cc" and m == "stream"]
        r = [x for x in r if all(x)]
        if r:
            vs_direct = min(w / dr for w, _, dr in r)
            vs_one = min(w / one_ for w, one_, _ in r)
            targets.append(("Throughput c=16 with --workers 2 ≥ 0.5× direct and ≥ 1.6× one worker",
                            f"×{vs_direct:.2f} direct, ×{vs_one:.2f} one worker (worst path, CC stream)",
                            "met" if vs_direct >= 0.5 and vs_one >= 1.6 else "not met"))
    else:
        targets.append(("Throughput c=16 with --workers 2 ≥ 0.5× direct and ≥ 1.6× one worker",
                        "`serve --workers` not offered by the working tree", "not measured"))
    return L


def _errors(res: dict, summary: dict, parties: list[str], rss_after_matrix: dict) -> list[str]:
    L: list[str] = []
    errs = {pr: sum(d["err"].get(pr, 0) for d in summary.values()) for pr in ["direct"] + parties}
    first = [f"{pr}: {st.first_error}" for parties_ in res.values() for pr, st in parties_.items() if st.first_error]
    L += ["", "Errors in the matrix: " + ", ".join(f"{k} {v}" for k, v in errs.items())
          + (f" (first: {first[0][:200]})" if first else "")]
    if rss_after_matrix:
        L += ["", "RSS after the matrix: " + ", ".join(
            f"{k} {v[0]:.0f} MB (peak {v[1]:.0f} MB)" for k, v in rss_after_matrix.items())]
    return L


def _streams(args, streams: list[dict], targets: list) -> list[str]:
    L: list[str] = ["", f"### {args.streams} concurrent long streams (Claude Code body, {args.slow_deltas} deltas "
                        f"{args.slow_delay_ms:.0f} ms apart ≈ {args.stream_seconds:.0f} s each; a fresh proxy per row)",
                    ""]
    rows = []
    for r in streams:
        per = (r["peak"] - r["rss_before"]) * 1024 / max(1, r["n"])
        rows.append([r["variant"], r["path"], str(r["n"]), str(r["errors"]),
                     f"{r['max_open']} / {r['upstream_max_open']}",
                     f"{r['rss_before']:.0f}", f"{r['peak']:.0f}", f"{per:.0f}", f"{r.get('rss_30s', float('nan')):.0f}",
                     f"{r['duration']:.1f}"])
    L.append(table(["proxy", "path", "streams", "errors", "max open (client / upstream)", "RSS before MB", "RSS peak MB",
                    "KB per stream", "RSS 30 s after MB", "burst s"], rows))
    firsts = [f"{r['variant']} {r['path']}: {r['first_error'][:200]}" for r in streams if r["first_error"]]
    if firsts:
        L.append("\nFirst errors: " + "; ".join(firsts))
    news = [r for r in streams if r["variant"] == "new"]
    if news:
        worst_peak = max(r["peak"] for r in news)
        errs = sum(r["errors"] for r in news)
        if args.streams >= 1000:
            verdict = "met" if errs == 0 and worst_peak <= 250 else "not met"
        else:
            verdict = f"not measured at 1,000 (this run: {args.streams}; `--streams 1000`)"
        targets.append(("1,000 concurrent streams of the Claude Code body: 0 errors, peak RSS ≤ 250 MB",
                        f"{args.streams} streams: {errs} errors, peak {worst_peak:.0f} MB", verdict))
    return L


def render(args, mach: dict, variants: list[Variant], notes: list[str], startup: dict | None, res: dict | None,
           rss_after_matrix: dict, streams: list[dict] | None) -> tuple[str, list[tuple[str, str, str]]]:
    proxies = [v.label for v in variants]
    has_base = "baseline" in proxies
    L = _header(args, mach, variants, notes)
    targets: list[tuple[str, str, str]] = []
    summary = summarize(res, proxies) if res else {}
    if startup:
        L += _startup(startup, targets)
    if res:
        L += _latency(args, summary, proxies, has_base, targets)
        L += _cpu(args, summary, proxies, has_base, targets)
        L += render_relay(summary, args)
        parties = proxies + (["new-w2"] if any("new-w2" in d for d in res.values()) else [])
        L += _throughput(args, summary, parties, targets)
        L += _errors(res, summary, parties, rss_after_matrix)
    if streams:
        L += _streams(args, streams, targets)
    if targets:
        L += ["", "### Targets (issue 16), working tree", ""]
        L.append(table(["target", "measured", "verdict"], [list(t) for t in targets]))
    return "\n".join(L), targets
