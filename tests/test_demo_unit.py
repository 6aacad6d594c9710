"""The demo's pure parts: seeded Claude Code config, each session's environment, prompts, screen reading."""

from __future__ import annotations

import json
import shlex

import pytest

from llmproxy.demo import setup as S
from tests.helpers import cli


def test_seeded_config_skips_onboarding_and_trusts_the_workdir(tmp_path):
    wd = tmp_path / "work"
    wd.mkdir()
    cfg = tmp_path / "demo" / "fast"
    S.seed_claude_config(cfg, wd)
    data = json.loads((cfg / ".claude.json").read_text())
    assert data["hasCompletedOnboarding"] is True
    assert data["projects"][str(wd.resolve())]["hasTrustDialogAccepted"] is True
    data["numStartups"] = 7
    (cfg / ".claude.json").write_text(json.dumps(data))
    S.seed_claude_config(cfg, wd)  # re-seeding keeps what Claude Code wrote
    assert json.loads((cfg / ".claude.json").read_text())["numStartups"] == 7


def test_session_env_and_command(tmp_path):
    env = S.session_env("intelligent", "http://127.0.0.1:3456/", "tok", tmp_path / "cfg")
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:3456/p/intelligent"
    assert env["ANTHROPIC_AUTH_TOKEN"] == "tok"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["CLAUDE_CONFIG_DIR"] == str(tmp_path / "cfg")
    argv = shlex.split(S.claude_command("/opt/claude code/claude", env))
    assert argv[0] == "env" and argv[-1] == "/opt/claude code/claude"
    assert "-uANTHROPIC_API_KEY" in argv and "-uTMUX" in argv  # the user's own key and tmux never leak in
    assert f"CLAUDE_CONFIG_DIR={tmp_path / 'cfg'}" in argv
    assert "LLMPROXY_HOME" not in env
    env = S.session_env("fast", "http://127.0.0.1:3456", "tok", tmp_path / "cfg", tmp_path / "home")
    assert env["LLMPROXY_HOME"] == str(tmp_path / "home")  # the status line reads this demo's daemon


def test_seeded_settings_configure_the_status_line(tmp_path):
    wd = tmp_path / "work"
    wd.mkdir()
    cfg = tmp_path / "demo" / "fast"
    cfg.mkdir(parents=True)
    (cfg / "settings.json").write_text(json.dumps({"env": {"DISABLE_AUTOUPDATER": "1"}}))
    S.seed_claude_config(cfg, wd)
    settings = json.loads((cfg / "settings.json").read_text())
    assert settings["env"] == {"DISABLE_AUTOUPDATER": "1"}  # what was there stays
    line = settings["statusLine"]
    assert line["type"] == "command"
    argv = shlex.split(line["command"])
    assert argv[-1] == "statusline" and "llmproxy" in " ".join(argv[:-1])
    assert json.loads((cfg / ".claude.json").read_text())["leftArrowOpensAgents"] is False


@pytest.mark.parametrize("width,height", [(120, 40), (160, 45), (200, 50), (240, 60)])
def test_geometry_fits_common_terminals(width, height):
    g = S.geometry(width, height)
    assert g.fits
    assert g.log >= S.MIN_LOG_ROWS and g.top >= g.bottom >= S.MIN_PANE_ROWS
    assert g.left + 1 + g.right == width and g.top + g.bottom + g.log + 3 == height


@pytest.mark.parametrize("width,height", [(80, 24), (100, 40), (120, 30)])
def test_geometry_says_when_too_small(width, height):
    g = S.geometry(width, height)
    assert not g.fits and g.minimum == "101×37"


def test_pane_titles_come_from_the_profiles(home):
    from llmproxy.demo.tmux import pane_titles

    titles = pane_titles()
    assert titles["fast"] == "fast · fast & expensive"
    assert titles["cheap"] == "cheap · slow & cheap"
    assert titles["intelligent"].startswith("intelligent · ") and titles["balanced"].startswith("balanced · ")
    assert S.pane_title("x", "LLM routing: more") == "x · LLM routing" and S.pane_title("x", "") == "x"


def test_log_pane_rows_fit_the_width():
    from llmproxy.demo.logpane import render

    rec = {"time": "2026-01-01T10:00:00.000+00:00", "request_id": "r", "profile": "intelligent",
           "decision": {"scenario": "keyword", "concept": "planning"}, "status": 200, "simulated": True,
           "target": "openrouter/deepseek/deepseek-r1-0528", "duration_ms": 612.0, "cost_usd": 0.0,
           "error": "x" * 300}
    for width in (40, 59, 120, 240):
        line = render(rec, width, color=False)
        assert len(line) < width and line.startswith("10:00:00 intelligent")
    assert "keyword:planning" in render(rec, 120, color=False) and "sim 200" in render(rec, 120, color=False)


def test_relayout_commands_size_every_pane():
    from llmproxy.demo.relayout import commands

    g = S.geometry(120, 40)
    panes = {"fast": "%0", "intelligent": "%1", "balanced": "%2", "cheap": "%3", "log": "%4"}
    cmds = commands(g, panes)
    assert ["resize-pane", "-t", "%4", "-y", str(g.log)] in cmds
    assert ["resize-pane", "-t", "%0", "-y", str(g.top)] in cmds and ["resize-pane", "-t", "%0", "-x", "60"] in cmds


def test_port_held_by_another_program_names_it_and_offers_a_port():
    import os
    import socket

    from llmproxy.demo.daemon import port_message

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        msg = port_message("127.0.0.1", port)
    assert msg is not None and f"port {port}" in msg and f"pid {os.getpid()}" in msg
    assert "llmproxy demo --port " in msg
    assert port_message("127.0.0.1", port) is None  # free again


def test_port_held_by_another_llmproxy(tmp_path, home):
    """Another LLMPROXY_HOME's daemon holds the port: its pid and home, how to stop it, and --port; one `error:`."""
    from tests.conftest import free_port

    other = tmp_path / "other-home"
    other.mkdir()
    port = free_port()
    (other / "config.toml").write_text(f"[server]\nport = {port}\n")
    (home / "config.toml").write_text(f"[server]\nport = {port}\n")
    assert cli("serve", "--daemon", "--simulate", home=other).returncode == 0
    try:
        pid = json.loads((other / "llmproxy.pid").read_text())["pid"]
        fake_claude = tmp_path / "claude"
        fake_claude.write_text("#!/bin/sh\n")
        fake_claude.chmod(0o755)
        r = cli("demo", "--claude", str(fake_claude), "--no-prompts", home=home, env={"COLUMNS": "400"})
        if r.returncode == 1 and "tmux is not installed" in r.stderr:
            pytest.skip("SKIPPED LOUDLY: tmux is not installed")
        assert r.returncode == 1
        line = " ".join(r.stderr.split())
        assert f"port {port}" in line and f"another llmproxy (pid {pid}, LLMPROXY_HOME={other})" in line, line
        assert f"LLMPROXY_HOME={other} llmproxy stop" in line and "--port" in line, line
        assert line.count("error:") == 1, line
        assert not (home / "demo" / "state.json").exists()  # nothing was started, nothing recorded
    finally:
        cli("stop", home=other)


def test_daemon_for_starts_the_daemon_on_the_port_asked(home):
    from llmproxy.daemonctl import running, terminate
    from llmproxy.demo.daemon import daemon_for
    from llmproxy.demo.state import DemoError
    from tests.conftest import free_port

    port = free_port()
    try:
        url, started, pid = daemon_for(verbose=False, port=port)
        assert url.endswith(f":{port}") and started and running()[0]["pid"] == pid
        assert daemon_for(port=port)[1] is False  # running already: reused, not started again
        with pytest.raises(DemoError, match="already running on port"):
            daemon_for(port=port + 1)
    finally:
        live, _ = running()
        if live:
            terminate(live["pid"], 5)


def test_demo_stop_with_nothing_recorded(home):
    r = cli("demo", "stop", home=home)
    assert r.returncode == 0 and "nothing to stop" in r.stdout


def test_prompts(tmp_path):
    assert S.load_prompts(None) == S.DEFAULT_PROMPTS
    assert "plan" in S.DEFAULT_PROMPTS["intelligent"]
    f = tmp_path / "p.toml"
    f.write_text('fast = "rename x"\n')
    assert S.load_prompts(f)["fast"] == "rename x" and S.load_prompts(f)["cheap"] == S.DEFAULT_PROMPTS["cheap"]
    f.write_text('turbo = "x"\n')
    with pytest.raises(ValueError, match="turbo"):
        S.load_prompts(f)


READY = ["╭─── Claude Code v2.1.197 ───╮", "│ Welcome back! │", "─" * 40, "❯ ", "─" * 40,
         "  ? for shortcuts · ← for agents                         ● high · /effort"]
ANSWERED = READY[:3] + ["❯ summarise this project", "● [llmproxy simulator] profile=cheap scenario=default",
                        "  You said: summarise this project", "✻ Worked for 2s"] + READY[2:]


def test_screen_predicates():
    assert S.prompt_ready(READY) and not S.prompt_ready(["Loading…"])
    assert not S.answered(READY, "summarise this project")  # the effort indicator is not an answer
    assert not S.answered(ANSWERED[:5], "summarise this project")  # still working: no ✻ … for Ns yet
    assert S.answered(ANSWERED, "summarise this project")


def test_workspace_created_once(tmp_path):
    ws = S.ensure_workspace(tmp_path / "ws")
    assert sorted(p.name for p in ws.iterdir()) == ["README.md", "storage.py", "todo.py"]
    (ws / "README.md").write_text("mine")
    S.ensure_workspace(ws)
    assert (ws / "README.md").read_text() == "mine"


@pytest.mark.parametrize("shell,line", [("bash", "export ANTHROPIC_BASE_URL=http://127.0.0.1:3456/p/fast"),
                                        ("fish", "set -gx ANTHROPIC_BASE_URL 'http://127.0.0.1:3456/p/fast';"),
                                        ("powershell", '$env:ANTHROPIC_BASE_URL = "http://127.0.0.1:3456/p/fast"')])
def test_env_command(home, shell, line):
    r = cli("env", "--profile", "fast", "--shell", shell, home=home)
    assert r.returncode == 0 and line in r.stdout.splitlines()
    assert cli("env", "--profile", "nope", home=home).returncode == 1


def test_demo_says_how_to_get_missing_tools(home, tmp_path):
    r = cli("demo", "--claude", str(tmp_path / "no-such-claude"), home=home)
    assert r.returncode == 1 and "install-claude" in r.stderr and "Traceback" not in r.stderr


def test_log_pane_keeps_the_deepseek_target_whole_and_shows_when_requests_ended():
    from llmproxy.demo.logpane import render

    rec = {"time": "2026-01-01T10:00:00.000+00:00", "request_id": "r", "profile": "intelligent",
           "decision": {"scenario": "keyword", "concept": "planning"}, "status": 200, "simulated": True,
           "target": "openrouter/deepseek/deepseek-r1-0528", "duration_ms": 2612.0, "cost_usd": 0.0}
    line = render(rec, 120, color=False)
    assert line.startswith("10:00:02 intelligent")  # started 10:00:00, ended (and logged) 2.6 s later
    assert "openrouter/deepseek/deepseek-r1-0528  sim 200" in line
    live = render({**rec, "simulated": False, "target": "groq/llama-3.1-8b-instant"}, 120, color=False)
    assert live.index("200") == line.index("200")  # the status stays in its column without "sim"
    refused = render({"time": rec["time"], "profile": "fast", "status": 400, "duration_ms": 0.2,
                      "error": "messages: List should have at least 1 item"}, 120, color=False)
    assert "not routed" in refused and "None" not in refused and refused.index("400") == line.index("200")


def test_demo_status_lists_this_demos_requests_one_per_line(home):
    import time

    from llmproxy.cli.democmd import session_lines
    from llmproxy.demo.state import DemoState
    from llmproxy.demo.stop import status

    started = time.time() - 60
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(t))  # noqa: E731
    recs = [{"time": iso(started - 600), "request_id": "old", "profile": "intelligent", "status": 200,
             "decision": {"scenario": "default", "concept": None}, "target": "anthropic/claude-opus-4-8"},
            {"time": iso(started + 5), "request_id": "a", "profile": "intelligent", "status": 200,
             "decision": {"scenario": "keyword", "concept": "planning"}, "target": "openrouter/deepseek/deepseek-r1-0528"},
            {"time": iso(started + 9), "request_id": "b", "profile": "intelligent", "status": 400,
             "error": "messages: List should have at least 1 item"}]
    log = home / "logs" / "requests.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    DemoState(socket="llmproxy-test-nonexistent", sessions=[], started=started).save()
    routes = status()["routes"]["intelligent"]
    assert [r["target"] for r in routes] == ["openrouter/deepseek/deepseek-r1-0528", None]  # not the older demo's
    lines = [t.plain for t in session_lines("llmproxy-intelligent", {"exists": True, "claude": True}, routes)]
    assert lines[0].split() == ["llmproxy-intelligent", "Claude", "Code", "up"]
    assert lines[1].endswith("keyword:planning → openrouter/deepseek/deepseek-r1-0528  200")
    assert "not routed  400  messages: List should have at least 1 item" in lines[2]
    assert not any("None" in line for line in lines)
