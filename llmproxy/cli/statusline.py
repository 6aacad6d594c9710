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
MARGIN = 4  # Claude Code's status bar indents the line and keeps the last columns free
DEFAULT_WIDTH = 55  # no COLUMNS and no terminal: what a 59-column pane (the demo at 120×40) shows


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


def key_budget(environ, timeout: float = 0.5) -> str | None:
    """``$12.34 left of $50/month`` for the store key in ``LLMPROXY_KEY`` when it has a budget, asked of the
    proxy ``ANTHROPIC_BASE_URL`` names (``GET /api/keys/me``, any store key may ask about itself); None
    without a key, without a budget, or when the proxy does not answer within ``timeout``."""
    key, base = environ.get("LLMPROXY_KEY", ""), environ.get("ANTHROPIC_BASE_URL", "")
    if not key.startswith("llmp_") or not base.startswith(("http://", "https://")):
        return None
    import urllib.request  # only when there is a key to ask about: the plain line stays fast

    origin = "/".join(base.split("/")[:3])
    req = urllib.request.Request(origin + "/api/keys/me", headers={"x-api-key": key})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = json.loads(r.read(64 * 1024))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    left, budget = data.get("remaining_usd"), data.get("budget_usd")
    if not isinstance(left, int | float) or not isinstance(budget, int | float):
        return None
    return f"{_money(left)} left of ${budget:g}/{data.get('budget_period')}"


def render(session: dict, records: list[dict], environ, running: bool | None = True, width: int = 1 << 16,
           budget: str | None = None) -> str:
    """One line that fits ``width``: ``llmproxy <profile> · <scenario:concept> · sim · $<cost> · <target>``
    ("proxy not running" after the profile when it is not). The target, the longest part, comes last; when
    the line is too long it loses, in this order, the target's provider, the scenario before the concept,
    the end of the model id (cut with "…"). ``budget`` (``key_budget``) follows the cost."""
    routed = [r for r in records if r.get("endpoint", "messages") == "messages" and r.get("target")]
    main = next((r for r in routed if (r.get("decision") or {}).get("scenario") != "background"), None)
    last = main or (routed[0] if routed else None)
    profile = (last or {}).get("profile") or environ.get("LLMPROXY_PROFILE") or _profile_from_env(environ)
    head = f"llmproxy {profile}" if profile else "llmproxy"
    if last is None:
        return fit(" · ".join([head, "no requests yet", *([budget] if budget else []),
                               *(["proxy not running"] if running is False else [])]), width)
    d = last.get("decision") or {}
    scenario, concept = d.get("scenario") or "?", d.get("concept")
    costs = [r.get("cost_usd") for r in records if "cost_usd" in r]
    unknown = sum(1 for c in costs if c is None)
    cost = _money(sum(c for c in costs if isinstance(c, int | float))) + (f" (+{unknown} unpriced)" if unknown else "")
    cost += f" · {budget}" if budget else ""
    sim = ["sim"] if last.get("simulated") else []
    target = str(last["target"])
    full, model = f"{scenario}:{concept}" if concept else scenario, target.rsplit("/", 1)[-1]
    for reason, tgt, down in ((full, target, "proxy not running"), (full, model, "proxy not running"),
                              (concept or scenario, model, "proxy down")):
        rest = " · ".join([head, *([down] if running is False else []), reason, *sim, cost])
        if len(rest) + 3 + len(tgt) <= width:
            return f"{rest} · {tgt}"
    room = width - len(rest) - 3
    return f"{rest} · {fit(tgt, room)}" if room >= 5 else fit(rest, width)


def _money(usd: float) -> str:
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def fit(line: str, width: int) -> str:
    """``line`` cut to ``width`` columns, the cut marked with "…"."""
    return line if len(line) <= width else line[:max(width - 1, 0)] + "…"


def line_width(environ, tty: str = "/dev/tty") -> int:
    """The columns the line may use. Claude Code does not say how wide its status bar is: ``COLUMNS`` if set,
    else the size of the terminal Claude Code runs in (our controlling terminal), less the bar's margin;
    without either, a width that fits a 59-column pane (a demo pane at 120×40)."""
    cols = environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return max(int(cols) - MARGIN, 20)
    try:
        fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return DEFAULT_WIDTH
    try:
        return max(os.get_terminal_size(fd).columns - MARGIN, 20)
    except OSError:
        return DEFAULT_WIDTH
    finally:
        os.close(fd)


def _daemon_running() -> bool:
    from llmproxy import paths
    from llmproxy.pidfile import pid_alive, read_pid_file

    data = read_pid_file(paths.pid_file())
    return data is not None and pid_alive(data["pid"])


def main(stdin=None, stdout=None, environ=None, log: Path | None = None, now: float | None = None,
         tty: str = "/dev/tty") -> int:
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
        line = render(session, records, environ, _daemon_running(), line_width(environ, tty), key_budget(environ))
    except Exception as exc:  # noqa: BLE001 - see the docstring
        line = f"llmproxy: {type(exc).__name__}: {exc}"[:120]
    stdout.write(line + "\n")
    stdout.flush()
    return 0
