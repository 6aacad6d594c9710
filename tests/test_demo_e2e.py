"""`llmproxy demo` end to end: real tmux (own socket), real Claude Code, the simulator; then `demo stop`."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

import libtmux
import pytest

from llmproxy.pidfile import pid_alive
from tests.conftest import free_port
from tests.helpers import cli, require_claude

pytestmark = pytest.mark.e2e
EXPECTED = {"fast": "default", "intelligent": "keyword", "balanced": "default", "cheap": "default"}


def test_demo_four_sessions_answered_and_stopped(home, tmp_path):
    claude = require_claude()
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed; .ci/run must install it")
        pytest.skip("SKIPPED LOUDLY: tmux is not installed")
    (home / "config.toml").write_text(f"[server]\nport = {free_port()}\nsimulator_speed = 4\n")
    socket = f"llmproxy-test-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    r = cli("demo", "--socket", socket, "--claude", claude, "--wait", "--timeout", "150", home=home, timeout=240)
    elapsed = time.monotonic() - t0
    server = libtmux.Server(socket_name=socket)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "all four prompts answered" in r.stdout and "simulator" in r.stdout
        names = {s.session_name for s in server.sessions}
        assert names == {"llmproxy-fast", "llmproxy-intelligent", "llmproxy-balanced", "llmproxy-cheap", "llmproxy-demo"}
        grid = server.sessions.get(session_name="llmproxy-demo").active_window
        assert len(grid.panes) == 5  # four nested sessions and the log
        for profile in EXPECTED:
            pane = server.sessions.get(session_name=f"llmproxy-{profile}").active_window.active_pane
            screen = "\n".join(pane.capture_pane(join_wrapped=True))
            assert f"[llmproxy simulator] profile={profile}" in screen, screen
        recs = [json.loads(line) for line in (home / "logs" / "requests.jsonl").read_text().splitlines()]
        main_turns = {}
        for rec in recs:
            d = rec.get("decision") or {}
            if d.get("scenario") != "background" and rec.get("endpoint") == "messages":
                main_turns.setdefault(rec["profile"], set()).add(d["scenario"])
        for profile, scenario in EXPECTED.items():
            assert scenario in main_turns.get(profile, set()), (profile, main_turns)
        st = json.loads(cli("demo", "status", "--json", home=home).stdout)
        assert all(s["claude"] for s in st["sessions"].values())
        assert st["routes"]["intelligent"] and st["grid"] is True
        state = json.loads((home / "demo" / "state.json").read_text())
        assert state["started_daemon"] and state["daemon_pid"] and len(state["grid_pids"]) == 5
        print(f"\ndemo: four prompts answered {elapsed:.1f} s after `llmproxy demo` started")
        # a second demo reuses the first; asked for another tmux socket, it refuses; the record is untouched
        again = cli("demo", "--socket", socket, "--claude", claude, home=home, timeout=60)
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
        other = cli("demo", "--socket", socket + "-other", "--claude", claude, home=home, timeout=60)
        assert other.returncode == 1 and "already running on tmux socket" in other.stderr
        assert " ".join(other.stderr.split()).count("error:") == 1
        assert not libtmux.Server(socket_name=socket + "-other").is_alive()
        assert json.loads((home / "demo" / "state.json").read_text()) == state
        # half of it gone: the next demo removes what is left of the first, then starts afresh
        server.kill_session("llmproxy-cheap")
        fresh = cli("demo", "--socket", socket, "--claude", claude, "--no-prompts", home=home, timeout=90)
        assert fresh.returncode == 0 and "previous demo: killed tmux session llmproxy-demo" in fresh.stdout
        assert not any(pid_alive(p) for p in state["pane_pids"].values())
        state = json.loads((home / "demo" / "state.json").read_text())
        assert len(state["sessions"]) == 5 and state["started_daemon"]
    finally:
        stop = cli("demo", "stop", home=home)
    assert stop.returncode == 0, stop.stderr
    assert not server.is_alive() or not [s for s in server.sessions if s.session_name.startswith("llmproxy-")]
    from llmproxy.demo.tmux import socket_path

    assert not socket_path(socket).exists()  # the demo started this tmux server; nothing of it is left
    for _ in range(50):
        if not any(pid_alive(p) for p in state["pane_pids"].values()):
            break
        time.sleep(0.1)
    assert not any(pid_alive(p) for p in state["pane_pids"].values())
    assert cli("status", home=home).returncode != 0  # the demo started the daemon, so it stopped it
    assert not (home / "demo" / "state.json").exists()
