"""Pure formatting helpers for the console (no printing here): request rows, banners, status, stats."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.table import Table
from rich.text import Text

STATUS_STYLE = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}


def fmt_tokens(usage: dict | None) -> str:
    if not usage:
        return "-"
    i = (usage.get("input_tokens") or 0) + (usage.get("cache_read_input_tokens") or 0) + \
        (usage.get("cache_creation_input_tokens") or 0)
    o = usage.get("output_tokens")
    return f"{i}→{o}" if o is not None else f"{i}→-"


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f}ms" if ms < 10_000 else f"{ms / 1000:.1f}s"


def fmt_cost(cost: float | None) -> str:
    if cost is None:
        return "?"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


UNROUTED = "not routed"  # a request refused before routing (e.g. a 400): the one label on every surface
ERROR_CHARS = 120  # of an error text on a request row (the whole text is in the log: `logs --json`)


def route_label(rec: dict) -> str:
    """``scenario[:concept]``, or ``not routed`` for a request refused before routing."""
    d = rec.get("decision") or {}
    if not d.get("scenario"):
        return "count_tokens" if rec.get("endpoint") == "count_tokens" else UNROUTED
    return d["scenario"] + (f":{d['concept']}" if d.get("concept") else "")


def request_header() -> Text:
    """The column names above :func:`request_row`'s lines."""
    return Text(f"{'time':<8} {'profile':<11} {'scenario':<22} {'target':<42} {'sim':<3} {'st':>3} "
                f"{'ttft':<12} {'took':>7} {'tok in→out':>12} cost / notes", style="bold")


def request_row(rec: dict) -> Text:
    """One console line for one request record (the --verbose log and `logs`)."""
    status = rec.get("status")
    style = STATUS_STYLE.get((status or 0) // 100, "white")
    d = rec.get("decision") or {}
    t = Text()
    t.append(str(rec.get("time", ""))[11:19] + " ", style="dim")
    t.append(f"{rec.get('profile') or '-':<11} ", style="bold")
    t.append(f"{route_label(rec):<22} ", style="magenta")
    target = rec.get("target") or d.get("target") or ""
    t.append(f"{target:<42} ", style="cyan")
    t.append("sim " if rec.get("simulated") else "    ", style="yellow")
    t.append(f"{status if status is not None else '-':>3} ", style=style)
    t.append(f"ttft {fmt_ms(rec.get('ttft_ms')):>7} ", style="dim")
    t.append(f"{fmt_ms(rec.get('duration_ms')):>7} ")
    t.append(f"{fmt_tokens(rec.get('usage')):>12} ")
    if "cost_usd" in rec:
        t.append(fmt_cost(rec.get("cost_usd")) + " ", style="green")
    if rec.get("endpoint") not in (None, "messages"):
        t.append(f"[{rec['endpoint']}] ", style="dim")
    if note := attempts_note(rec):
        t.append(note + " ", style="yellow")
    if rec.get("client_disconnected"):
        t.append("client-gone ", style="yellow")
    if why := str(rec.get("error") or rec.get("stream_error") or ""):
        t.append(why if len(why) <= ERROR_CHARS else why[:ERROR_CHARS - 1] + "…", style="red")
    return t


def attempts_note(rec: dict) -> str:
    """``fallbacks=N`` (how many targets the request moved away from) and ``retries=N`` (tries repeated on the
    same target); nothing for a request that failed on its only target."""
    atts = [a for a in rec.get("attempts") or () if isinstance(a, dict)]
    targets = list(dict.fromkeys(a.get("target") for a in atts))
    final = rec.get("target")
    moved = sum(1 for t in targets if t != final) if final else max(0, len(targets) - 1)
    retries = sum(1 for a in atts if a.get("retried"))
    return " ".join(f"{k}={v}" for k, v in (("fallbacks", moved), ("retries", retries)) if v)


def providers_table(health: dict) -> Table:
    tbl = Table(title="providers", title_justify="left", show_edge=False, pad_edge=False)
    tbl.add_column("provider")
    tbl.add_column("kind")
    tbl.add_column("state")
    for name, p in health.get("providers", {}).items():
        state = Text("live", style="green") if p["live"] else Text(f"simulated: {p['simulated_reason']}", style="yellow")
        tbl.add_row(name, p["kind"], state)
    return tbl


def fmt_uptime(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def banner_lines(info: dict, profiles: Mapping, host: str, port: int, request_log: Path) -> list:
    """The start-up banner: one aligned row per profile (name, default target, base URL, description), the
    providers, what is simulated, where the request log is."""
    from llmproxy.cli.common import simulated_providers

    base = f"http://{host}:{port}"
    lines: list = [f"[bold]llmproxy[/] {info['version']} listening on [bold]{base}[/] (pid {info['pid']}); "
                   f"default profile [bold]{info['default_profile']}[/]"]
    rows = [(name, str(prof.config.default[0]) if prof.config.default else "-", f"{base}/p/{name}",
             prof.config.description) for name, prof in sorted(profiles.items())]
    if rows:
        head, *body = columns([("profile", "default target", "ANTHROPIC_BASE_URL", "description"), *rows])
        lines.append(Text("  " + head, style="dim"))
        lines += [Text("  " + line) for line in body]
    lines.append(providers_table(info))
    if sims := simulated_providers(info):
        lines.append(f"[bold yellow]SIMULATED:[/] {', '.join(sims)} — answers for these come from the offline "
                     f"simulator and say so. Set the providers' API key variables to use them for real.")
    lines.append(f"[dim]request log: {request_log}[/]")
    return lines


def columns(rows: list[tuple[str, ...]], right: tuple[int, ...] = (), gap: int = 2) -> list[str]:
    """Rows as aligned plain lines: every column as wide as its widest cell (the last one is not padded, so a
    long description or reason simply runs on); columns listed in ``right`` are right-aligned."""
    if not rows:
        return []
    n = len(rows[0])
    w = [max(len(r[i]) for r in rows) for i in range(n)]
    sep = " " * gap
    return [sep.join((f"{c:>{w[i]}}" if i in right else c if i == n - 1 else f"{c:<{w[i]}}")
                     for i, c in enumerate(r)).rstrip() for r in rows]


def abbreviate(name: str, width: int) -> str:
    """``name`` cut to ``width`` in the middle, keeping the provider and the end of the model id (where
    versions and sizes are): ``openrouter/qwen/qwen3-coder-480b`` → ``openrouter/…coder-480b``."""
    if len(name) <= width:
        return name
    head, sep, tail = name.partition("/")
    if sep and len(head) + 2 < width:
        return f"{head}/…{tail[len(tail) - (width - len(head) - 2):]}"
    return name[: width - 1] + "…"
