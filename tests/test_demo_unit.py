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
