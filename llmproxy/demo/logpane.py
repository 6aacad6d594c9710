"""The demo grid's log pane: ``llmproxy logs -f``, one request per screen line, cut to the pane's width (a
wrapped line would push the others out of a pane only a few rows high), and no empty row under the last one.
Each row carries the time its request ended: rows arrive in that order.

Run as ``python -m llmproxy.demo.logpane [-n N]``; reads ``$LLMPROXY_HOME``'s request log.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timedelta

from llmproxy import paths
from llmproxy.obs.reader import Filter, follow, read

UNROUTED = "not routed"  # as cli/format.py says it (this module stays free of Rich)
DIM, BOLD, MAGENTA, CYAN, YELLOW, GREEN, RED, RESET = ("\x1b[2m", "\x1b[1m", "\x1b[35m", "\x1b[36m", "\x1b[33m",
                                                        "\x1b[32m", "\x1b[31m", "\x1b[0m")


def _ms(v) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{v / 1000:.1f}s" if v >= 1000 else f"{v:.0f}ms"


def ended(rec: dict) -> str:
    """HH:MM:SS at which the request ended (its start plus its duration): the log is written in the order
    requests end, so the pane's times read in order."""
    try:
        t = datetime.fromisoformat(str(rec["time"])) + timedelta(milliseconds=float(rec.get("duration_ms") or 0))
    except (KeyError, ValueError, TypeError):
        return str(rec.get("time", ""))[11:19]
    return t.strftime("%H:%M:%S")


def row(rec: dict) -> list[tuple[str, str]]:
    """(style, text) pieces of one request, most important first after the time it ended: profile, scenario,
    target (wide enough for openrouter/deepseek/deepseek-r1-0528), status, duration, cost."""
    d = rec.get("decision") or {}
    scen = str(d["scenario"]) + (f":{d['concept']}" if d.get("concept") else "") if d.get("scenario") else UNROUTED
    status = rec.get("status")
    pieces = [(DIM, ended(rec) + " "), (BOLD, f"{rec.get('profile') or '-':<11} "),
              (MAGENTA, f"{scen:<16} "), (CYAN, f"{rec.get('target') or d.get('target') or '':<37} ")]
    pieces.append((YELLOW, "sim " if rec.get("simulated") else "    "))  # the status stays in its column
    pieces.append((GREEN if status and status < 400 else RED, f"{status if status is not None else '-':>3} "))
    pieces.append(("", f"{_ms(rec.get('duration_ms')):>6} "))
    if isinstance(rec.get("cost_usd"), (int, float)):
        pieces.append((GREEN, f"${rec['cost_usd']:.4f} "))
    if rec.get("endpoint") not in (None, "messages"):
        pieces.append((DIM, f"[{rec['endpoint']}] "))
    if rec.get("error") or rec.get("stream_error"):
        pieces.append((RED, str(rec.get("error") or rec.get("stream_error"))))
    return pieces


def render(rec: dict, width: int, color: bool = True) -> str:
    """One line of at most ``width - 1`` characters (the last column stays free so that no terminal wraps)."""
    room = max(10, width - 1)
    out = []
    for style, text in row(rec):
        text = text.replace("\n", " ")
        if len(text) > room:
            text = text[:max(0, room - 1)] + "…"
        room -= len(text)
        out.append(f"{style}{text}{RESET}" if color and style else text)
        if room <= 0:
            break
    return "".join(out).rstrip()


def width() -> int:
    """The terminal's width (not $COLUMNS, which the tmux server may have inherited from whoever started it)."""
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except OSError:
        return 120


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llmproxy.demo.logpane")
    ap.add_argument("-n", type=int, default=20, help="recent requests to show first")
    args = ap.parse_args(argv)
    path = paths.request_log()
    color = sys.stdout.isatty()

    every = Filter()
    first = True

    def show(rec: dict) -> None:
        # the newline goes before each line, not after: the cursor stays at the end of the last request rather
        # than on an empty row, so a pane of N rows shows N requests
        nonlocal first
        sys.stdout.write(("" if first else "\n") + render(rec, width(), color))
        sys.stdout.flush()
        first = False

    for rec, _ in read(path, every, last=args.n):
        show(rec)
    try:
        for rec, _ in follow(path):
            if every(rec):
                show(rec)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
