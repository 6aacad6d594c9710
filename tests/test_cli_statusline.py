"""`llmproxy statusline`: Claude Code's status bar line from a recorded session JSON and a request log."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

from llmproxy.cli import statusline
from tests.helpers import REPO

SID = "4f3c2a1b-9e8d-4c7b-a6f5-0e1d2c3b4a59"
# what Claude Code 2.x writes on the status line command's stdin (fields it documents; values recorded)
SESSION = {
    "hook_event_name": "Status", "session_id": SID,
    "transcript_path": f"/home/u/.claude/projects/-work-app/{SID}.jsonl", "cwd": "/work/app",
    "model": {"id": "claude-opus-4-8", "display_name": "Opus 4.8 (1M context)"},
    "workspace": {"current_dir": "/work/app", "project_dir": "/work/app"},
    "version": "2.1.197", "output_style": {"name": "default"},
    "cost": {"total_cost_usd": 1.734, "total_duration_ms": 600_000, "total_api_duration_ms": 41_000,
             "total_lines_added": 12, "total_lines_removed": 3},
    "exceeds_200k_tokens": False,
}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def record(i: int, t: float, sid: str = SID, **kw) -> dict:
    r = {"time": iso(t), "request_id": f"req_{i}", "endpoint": "messages",
         "client": {"address": "127.0.0.1", "session_id": sid}, "profile": "intelligent",
         "decision": {"scenario": "default", "concept": None}, "target": "anthropic/claude-sonnet-4-5",
         "status": 200, "cost_usd": 0.01, "simulated": False}
    r.update(kw)
    return r


def write_log(path, recs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def run(log, session=SESSION, environ=None, now=None, tty="/nonexistent/tty") -> str:
    buf = io.StringIO()
    assert statusline.main(io.StringIO(json.dumps(session)), buf, environ or {}, log=log, now=now, tty=tty) == 0
    return buf.getvalue()


def test_profile_last_route_and_session_cost(tmp_path):
    now = time.time()
    log = tmp_path / "logs" / "requests.jsonl"
    write_log(log, [
        record(0, now - 3600, cost_usd=5.0),  # same id, long before this session began: not counted
        record(1, now - 300),
        record(2, now - 200, sid="someone-else", cost_usd=9.0),
        record(3, now - 100, decision={"scenario": "keyword", "concept": "planning"},
               target="openrouter/deepseek/deepseek-r1-0528", cost_usd=0.02),
        record(4, now - 90, decision={"scenario": "background", "concept": None},
               target="groq/llama-3.1-8b-instant", cost_usd=0.0005),  # a side task is not "the last route"
        record(5, now - 80, endpoint="count_tokens", target=None, cost_usd=None),
    ])
    line = run(log, environ={"COLUMNS": "200"}, now=now)
    assert line.count("\n") == 1
    assert line.strip() == ("llmproxy intelligent · proxy not running · keyword:planning · $0.0305 (+1 unpriced) · "
                            "openrouter/deepseek/deepseek-r1-0528")


def test_simulated_route_and_no_requests_yet(tmp_path):
    now = time.time()
    log = tmp_path / "requests.jsonl"
    write_log(log, [record(1, now - 5, simulated=True, profile="fast", cost_usd=0.0)])
    assert " · default · sim · $0.0000 · anthropic/claude-sonnet-4-5" in run(log, SESSION, {"COLUMNS": "120"}, now)
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:3456/p/cheap"}
    assert run(log, {**SESSION, "session_id": "new"}, env, now).startswith("llmproxy cheap · no requests yet")
    assert run(tmp_path / "missing.jsonl", environ=env, now=now).startswith("llmproxy cheap · no requests yet")


def test_garbage_on_stdin_still_prints_a_line(tmp_path):
    buf = io.StringIO()
    assert statusline.main(io.StringIO("not json"), buf, {}, log=tmp_path / "x") == 0
    assert buf.getvalue().startswith("llmproxy")


def test_rotated_files_are_read_until_the_session_start(tmp_path):
    now = time.time()
    log = tmp_path / "requests.jsonl"
    write_log(tmp_path / "requests.jsonl.1", [record(1, now - 50, cost_usd=0.5)])
    write_log(log, [record(2, now - 10, cost_usd=0.25)])
    assert "$0.7500" in run(log, now=now)


def test_subprocess_imports_no_typer_rich_or_aiohttp(home):
    log = home / "logs" / "requests.jsonl"
    write_log(log, [record(1, time.time() - 5)])
    env = {**os.environ, "LLMPROXY_HOME": str(home)}
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmproxy", "statusline"],
                         input=json.dumps(SESSION), capture_output=True, text=True, env=env, cwd=REPO, timeout=30,
                         start_new_session=True)
    assert res.returncode == 0 and res.stdout.startswith("llmproxy intelligent · proxy "), res.stdout
    assert " · default · $0.0100" in res.stdout and len(res.stdout) <= 56
    imported = {ln.split("|")[-1].strip() for ln in res.stderr.splitlines() if ln.startswith("import time:")}
    assert not {m for m in imported if m.split(".")[0] in ("typer", "rich", "aiohttp", "click")}


# ------------------------------------------------------------------------------ the line fits its pane

DEMO = dict(profile="intelligent", decision={"scenario": "keyword", "concept": "planning"},
            target="openrouter/deepseek/deepseek-r1-0528", simulated=True, cost_usd=0.0305)


def line_at(environ, tty="/nonexistent/tty", running=True) -> str:
    rec = record(1, time.time() - 5, **DEMO)
    return statusline.render(SESSION, [rec], {}, running, statusline.line_width(environ, tty))


def test_a_59_column_pane_gets_the_compact_line_whole():
    """The demo at 120×40 gives each Claude Code ~59 columns: profile, concept, sim and cost all show; only the
    model id (without its provider) gives way."""
    assert line_at({"COLUMNS": "59"}) == "llmproxy intelligent · planning · sim · $0.0305 · deep…"
    assert line_at({}) == "llmproxy intelligent · planning · sim · $0.0305 · deep…"  # no width known at all
    assert line_at({"COLUMNS": "59"}, running=False).startswith("llmproxy intelligent · proxy down · planning · ")


def test_100_columns_get_the_scenario_and_the_whole_target():
    assert line_at({"COLUMNS": "100"}) == ("llmproxy intelligent · keyword:planning · sim · $0.0305 · "
                                           "openrouter/deepseek/deepseek-r1-0528")
    assert line_at({"COLUMNS": "80"}) == "llmproxy intelligent · keyword:planning · sim · $0.0305 · deepseek-r1-0528"


def test_without_columns_the_terminal_size_is_used():
    """Claude Code passes no width: the line reads the size of the terminal it runs in."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    try:
        for cols, want in ((59, "llmproxy intelligent · planning · sim · $0.0305 · deep…"),
                           (100, "llmproxy intelligent · keyword:planning · sim · $0.0305 · "
                                 "openrouter/deepseek/deepseek-r1-0528")):
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
            assert line_at({}, tty=os.ttyname(slave)) == want
    finally:
        os.close(master)
        os.close(slave)


def test_the_printed_line_fits_59_columns(home):
    now = time.time()
    log = home / "logs" / "requests.jsonl"
    write_log(log, [record(1, now - 5, **DEMO)])
    line = run(log, environ={"COLUMNS": "59"}, now=now).rstrip("\n")
    assert len(line) <= 55 and line.startswith("llmproxy intelligent · proxy down · planning"), line
