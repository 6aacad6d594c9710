"""``llmproxy statusline``: the one line Claude Code shows in its status bar.

Claude Code runs the command for every refresh and writes the session as JSON on stdin (``session_id``,
``model.display_name``, ``workspace.current_dir``, ``cost.total_duration_ms``, …). We answer with the profile,
the last route of this session (scenario → provider/model) and what llmproxy logged the session to cost, read
backwards from the end of the request log and no further back than the session's start. Standard library
and the light ``obs/reader`` only: ``cli/main.py`` dispatches here before Typer or Rich are imported.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

MAX_BYTES = 8 << 20  # never read more than this much of the log for one refresh
SLACK_S = 120.0  # the log's clock and Claude Code's session clock are not the same clock


def _profile_from_env(environ) -> str | None:
    url = environ.get("ANTHROPIC_BASE_URL", "")
    _, sep, rest = url.partition("/p/")
    return rest.strip("/").split("/")[0] or None if sep else None


def _iso_bound(session: dict, now: float) -> str | None:
    """The earliest log time that can belong to this session, as the log writes times (UTC ISO with
    milliseconds, so strings compare like times)."""
    dur = (session.get("cost") or {}).get("total_duration_ms")
    if not isinstance(dur, int | float):
        return None
    t = now - dur / 1000 - SLACK_S
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}+00:00"


def session_records(log: Path, session_id: str, since: str | None, max_bytes: int = MAX_BYTES) -> list[dict]:
    """This session's records, newest first: the newest file backwards, then the rotated ones, stopping at
    ``since`` or after ``max_bytes``."""
    from llmproxy.obs.reader import log_files, reverse_lines, whole_end

    needle = session_id.encode()
    found: list[dict] = []
    budget = max_bytes
    for f in reversed(log_files(log)):
        try:
            fh = f.open("rb")
        except OSError:
            continue
        with fh:
            for line in reverse_lines(fh, whole_end(fh, os.fstat(fh.fileno()).st_size)):
                budget -= len(line) + 1
                if budget < 0:
                    return found
                if since is not None and _time_of(line) < since:
                    return found
                if needle in line and (rec := _parse(line)) and (rec.get("client") or {}).get("session_id") == session_id:
                    found.append(rec)
    return found


def _parse(line: bytes) -> dict | None:
    """json, not orjson: importing orjson costs more than parsing a session's records with json."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _time_of(line: bytes) -> str:
    """The record's ``time`` without parsing the line ("~" sorts after every time: unknown never stops us)."""
    i = line.find(b'"time":')
    if i < 0:
        return "~"
    j = line.find(b'"', i + 7)
    return line[j + 1:line.find(b'"', j + 1)].decode("ascii", "replace") if j >= 0 else "~"


def render(session: dict, records: list[dict], environ, running: bool | None = True) -> str:
    """One short line: ``llmproxy <profile> · <scenario> → <provider/model> · $<cost>``."""
    routed = [r for r in records if r.get("endpoint", "messages") == "messages" and r.get("target")]
    main = next((r for r in routed if (r.get("decision") or {}).get("scenario") != "background"), None)
    last = main or (routed[0] if routed else None)
    profile = (last or {}).get("profile") or environ.get("LLMPROXY_PROFILE") or _profile_from_env(environ)
    parts = [f"llmproxy {profile}" if profile else "llmproxy"]
    if last is None:
        parts.append("no requests yet")
    else:
        d = last.get("decision") or {}
        scen = d.get("scenario", "?") + (f":{d['concept']}" if d.get("concept") else "")
        parts.append(f"{scen} → {last['target']}" + (" (simulated)" if last.get("simulated") else ""))
        costs = [r.get("cost_usd") for r in records if "cost_usd" in r]
        known = sum(c for c in costs if isinstance(c, int | float))
        cost = f"${known:.4f}" if known < 1 else f"${known:.2f}"
        unknown = sum(1 for c in costs if c is None)
        parts.append(cost + (f" (+{unknown} unpriced)" if unknown else ""))
    if running is False:
        parts.append("proxy not running")
    return " · ".join(parts)


def _daemon_running() -> bool:
    from llmproxy import paths
    from llmproxy.pidfile import pid_alive, read_pid_file

    data = read_pid_file(paths.pid_file())
    return data is not None and pid_alive(data["pid"])


def main(stdin=None, stdout=None, environ=None, log: Path | None = None, now: float | None = None) -> int:
    """Print the line; never fail (a broken status line is worse than a plain one)."""
    stdin, stdout, environ = stdin or sys.stdin, stdout or sys.stdout, os.environ if environ is None else environ
    try:
        session = json.loads(stdin.read() or "{}")
    except (ValueError, OSError):
        session = {}
    if not isinstance(session, dict):
        session = {}
    try:
        from llmproxy import paths

        sid = session.get("session_id")
        records = session_records(log or paths.request_log(), sid, _iso_bound(session, now or time.time())) \
            if isinstance(sid, str) and sid else []
        line = render(session, records, environ, _daemon_running())
    except Exception as exc:  # noqa: BLE001 - see the docstring
        line = f"llmproxy: {type(exc).__name__}: {exc}"[:120]
    stdout.write(line + "\n")
    stdout.flush()
    return 0
