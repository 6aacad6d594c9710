"""The CLI edge in-process (typer's CliRunner): route-test, config check, kg check, env, code's arguments,
errors rendered once, exit-code rules, logs/stats formatting, the start-up banner."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from llmproxy.cli.app import app

runner = CliRunner()


def invoke(*args: str, **kw):
    return runner.invoke(app, list(args), **kw)


def broken_profile(home):
    (home / "profiles").mkdir(exist_ok=True)
    (home / "profiles" / "mine.toml").write_text('default = "ghost,model-x"\n')


# ------------------------------------------------------------------------------------------ route-test

def test_route_test_without_profile_shows_every_profile(home):
    r = invoke("route-test", "plan this")
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:] if line and not line.startswith("one ")}
    assert set(rows) >= {"fast", "intelligent", "balanced", "cheap"}
    assert "keyword:planning" in rows["intelligent"]  # the hint the default profile alone never gave
    assert "--profile NAME" in r.stdout


@pytest.mark.parametrize("text, expect", [
    ("add a plan column to the orders table", "suppressed"),   # a word used as a name
    ("lay out the steps to get us off the old queue", "fires"),
    ("rename the variable", "no term"),
])
def test_route_test_why_not_explains_a_miss(home, text, expect):
    r = invoke("route-test", "--why-not", "planning", text)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("intelligent: planning ") and expect in r.stdout


def test_route_test_why_not_unknown_concept_lists_the_known_ones(home):
    r = invoke("route-test", "--why-not", "nope", "x")
    assert r.exit_code == 2 and "planning" in r.output and r.output.count("error:") == 1


def test_route_test_one_profile_in_detail(home):
    r = invoke("route-test", "plan the design", "--profile", "intelligent")
    assert r.exit_code == 0, r.output
    assert "planning" in r.stdout and "chain" in r.stdout and "reason" in r.stdout
    js = json.loads(invoke("route-test", "help me plan this", "-p", "intelligent", "--json").stdout)
    assert js["scenario"] == "keyword" and js["concept"] == "planning"
    many = json.loads(invoke("route-test", "rename foo", "--json").stdout)
    assert {d["profile"] for d in many} >= {"fast", "intelligent", "balanced", "cheap"}


def test_route_test_broken_profile_is_reported_and_the_others_still_route(home):
    broken_profile(home)
    r = invoke("route-test", "plan this")
    assert r.exit_code == 0, r.output
    assert "profile 'mine' left out" in r.stderr and "unknown provider 'ghost'" in r.stderr
    assert "intelligent" in r.stdout and "mine" not in r.stdout
    assert invoke("route-test", "x", "--profile", "fast").exit_code == 0


def test_route_test_errors_once(home):
    r = invoke("route-test", "x", "--profile", "nope")
    assert r.exit_code == 2  # a wrong value, like an unknown concept
    assert r.stderr.count("error:") == 1 and "unknown profile 'nope'" in r.stderr
    r = invoke("route-test")
    assert r.exit_code == 2 and r.stderr.count("error:") == 1 and "--request" in r.stderr


def test_route_test_recorded_request(home, tmp_path):
    from tests.routing import shapes as S

    req = tmp_path / "req.json"
    req.write_text(json.dumps({"headers": {"X-Claude-Code-Agent-Id": "a1"}, "body": S.subagent_request("plan")[0]}))
    r = invoke("route-test", "--request", str(req), "--profile", "fast", "--json")
    assert json.loads(r.stdout)["scenario"] == "subagent"


# ------------------------------------------------------------------------------- config check, kg check

def test_config_check_blames_the_file_with_the_problem(home):
    broken_profile(home)
    r = invoke("config", "check")
    assert r.exit_code == 1
    assert "mine.toml: default: unknown provider 'ghost'" in r.stdout
    summary = r.stdout.strip().splitlines()[-1]
    assert "<bundled>" not in summary and summary.endswith("mine.toml"), summary
    (home / "config.toml").write_text('[server]\nport = "x"\n')
    summary = invoke("config", "check").stdout.strip().splitlines()[-1]
    assert summary.startswith("2 problem(s) in ") and "config.toml" in summary and "mine.toml" in summary


def test_config_check_ok(home):
    r = invoke("config", "check")
    assert r.exit_code == 0 and "ok" in r.stdout


def _kg_profile(home, files: dict[str, str]):
    kg = home / "profiles" / "kg" / "mine"
    kg.mkdir(parents=True)
    (home / "profiles" / "mine.toml").write_text(
        'default = "anthropic,claude-haiku-4-5"\nkg = "kg/mine"\n[scenarios]\nkeyword = "anthropic,claude-opus-4-8"\n')
    for name, text in files.items():
        (kg / name).write_text(text)


def test_kg_check_reports_every_problem_at_once(home):
    _kg_profile(home, {
        "alpha.md": "synonyms:: zap\npriority:: lots\n",  # does not parse
        "beta.md": "scenario:: nonsense\nhook:: telepathy\n",  # two problems in one file: both reported
        "gamma.md": "synonyms:: refactor\nroute:: ghost,model\n",  # parses, but routes nowhere
        "delta.md": "synonyms:: refactor, x\n",  # duplicate term, one-letter term
    })
    r = invoke("kg", "check", "mine")
    assert r.exit_code == 1
    out = r.stdout
    assert "alpha.md:2: priority::" in out and "beta.md:1: scenario::" in out and "beta.md:2: hook::" in out
    assert "unknown provider 'ghost'" in out and "'refactor' is in both" in out and "shorter than two" in out
    assert "6 problem(s)" in out
    assert invoke("kg", "check", "nope").stderr.count("error:") == 1


def test_kg_check_clean(home):
    r = invoke("kg", "check")
    assert r.exit_code == 0, r.output
    assert "intelligent:" in r.stdout


# ----------------------------------------------------------------------------------------- env and code

def test_env_defaults_to_the_configured_default_profile_and_unsets_the_api_key(home):
    (home / "config.toml").write_text('[server]\ndefault_profile = "fast"\nport = 4567\n')
    r = invoke("env")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:4567/p/fast" in lines
    assert "unset ANTHROPIC_API_KEY" in lines
    assert any('"statusLine"' in ln and "llmproxy statusline" in ln for ln in lines)
    assert all(ln.startswith(("export ", "unset ", "#")) for ln in lines)  # safe for eval


@pytest.mark.parametrize(("shell", "unset"), [("fish", "set -e ANTHROPIC_API_KEY;"),
                                             ("powershell", "Remove-Item Env:ANTHROPIC_API_KEY")])
def test_env_other_shells(home, shell, unset):
    r = invoke("env", "--shell", shell, "-p", "cheap")
    assert r.exit_code == 0 and unset in r.stdout and "/p/cheap" in r.stdout


def test_env_errors(home):
    r = invoke("env", "-p", "nope")
    assert r.exit_code == 1 and r.stderr.count("error:") == 1 and "known: balanced" in r.stderr
    assert invoke("env", "--shell", "tcsh").exit_code == 2


def test_code_passes_unknown_arguments_to_claude(home, monkeypatch, tmp_path):
    from llmproxy.cli import claudeenv
    from llmproxy.demo import daemon as D

    fake = tmp_path / "claude"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    seen = {}
    monkeypatch.setattr(D, "ensure_daemon", lambda **kw: ("http://127.0.0.1:9", False))
    monkeypatch.setattr(claudeenv.os, "execvpe", lambda path, argv, env: seen.update(argv=argv, env=env))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-user")
    r = invoke("code", "--claude", str(fake), "-p", "say hi", "--model", "opus")
    assert r.exit_code == 0, r.output
    argv, env = seen["argv"], seen["env"]
    assert argv[0] == str(fake) and argv[1] == "--settings" and argv[3:] == ["-p", "say hi", "--model", "opus"]
    assert json.loads(open(argv[2]).read())["statusLine"]["type"] == "command"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/p/balanced" and "ANTHROPIC_API_KEY" not in env
    r = invoke("code", "--profile", "fast", "--claude", str(fake), "--settings", "mine.json")
    assert seen["argv"][1:] == ["--settings", "mine.json"] and seen["env"]["ANTHROPIC_BASE_URL"].endswith("/p/fast")


def test_seed_statusline_keeps_other_settings(tmp_path):
    from llmproxy.cli.claudeenv import seed_statusline

    d = tmp_path / "cfg"
    d.mkdir()
    (d / "settings.json").write_text(json.dumps({"theme": "light", "statusLine": {"type": "command", "command": "x"}}))
    path = seed_statusline(d)
    data = json.loads(path.read_text())
    assert data["theme"] == "light" and data["statusLine"]["command"] == "llmproxy statusline"
    assert seed_statusline(tmp_path / "new") .exists()


# -------------------------------------------------------------------------------- exit codes, one error

def test_stop_with_nothing_running_exits_0(home):
    r = invoke("stop")
    assert r.exit_code == 0 and "not running" in r.stdout and "nothing to stop" in r.stdout


def test_reload_with_nothing_running_is_one_error(home):
    r = invoke("reload")
    assert r.exit_code == 1 and r.stderr.count("error:") == 1 and "not running" in r.stderr


def test_config_init_refuses_to_overwrite_once(home):
    assert invoke("config", "init").exit_code == 0
    r = invoke("config", "init")
    assert r.exit_code == 1 and r.stderr.count("error:") == 1 and "--force" in r.stderr


# ------------------------------------------------------------------------------------------ logs, stats

def _log(home, recs):
    (home / "logs").mkdir(exist_ok=True)
    (home / "logs" / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_logs_rejects_unknown_scenario(home):
    r = invoke("logs", "--scenario", "keywrod")
    assert r.exit_code == 2 and r.stderr.count("error:") == 1
    assert "unknown scenario 'keywrod'" in r.stderr and "keyword" in r.stderr
    assert invoke("logs", "--scenario", "keyword").exit_code == 0


LONG = "openrouter/qwen/qwen3-coder-480b-a35b-instruct:free"


def _stats_records():
    from tests.test_observability import FIXTURE

    return FIXTURE + [dict(FIXTURE[0], target=LONG, request_id="x9")]


def test_stats_in_a_pipe_is_plain_and_whole(home):
    _log(home, _stats_records())
    r = invoke("stats", env={"COLUMNS": "80"})
    assert r.exit_code == 0
    assert "\x1b[" not in r.stdout and "━" not in r.stdout  # plain text, no table borders
    assert LONG in r.stdout.splitlines()  # never cut in a pipe: on its own line when COLUMNS is too narrow
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    assert "anthropic/claude-sonnet-4-5" in r.stdout


def test_stats_fits_80_columns(home):
    from llmproxy.cli.logs import compute, stats_lines

    lines = stats_lines(compute(_stats_records()), width=80)
    assert max(len(line) for line in lines) <= 80
    i = lines.index(LONG)  # a long model name gets its own line, its numbers the next
    assert re.match(r"^\s+1\s+0\s+100ms", lines[i + 1])
    assert any(line.startswith("fast ") for line in lines)


# --------------------------------------------------------------------------------------------- banner

def test_banner_columns_are_aligned(home):
    from llmproxy import config
    from llmproxy.cli.format import banner_lines
    from llmproxy.routing import compile_profiles

    cfg, _ = config.load()
    info = {"version": "0", "pid": 1, "default_profile": "balanced",
            "providers": {"anthropic": {"kind": "anthropic", "live": False, "simulated_reason": "no key"}}}
    lines = [str(x) for x in banner_lines(info, compile_profiles(cfg), "127.0.0.1", 3456, home / "r.jsonl")
             if not isinstance(x, str) or not x.startswith("[")]
    rows = [ln for ln in lines if "/p/" in ln or "ANTHROPIC_BASE_URL" in ln]
    assert len(rows) == 1 + len(cfg.profiles)
    for marker in ("http://", ):
        cols = {ln.index(marker) for ln in rows[1:]}
        assert len(cols) == 1, rows
    assert len({ln.index("ANTHROPIC_BASE_URL") for ln in rows[:1]} | {ln.index("http://") for ln in rows[1:]}) == 1


def test_attempts_note_counts_fallbacks_not_failed_tries():
    from llmproxy.cli.format import attempts_note

    one_failed = {"target": None, "status": 502, "attempts": [{"target": "anthropic/m", "status": 502}]}
    assert attempts_note(one_failed) == ""
    fell_back = {"target": "backup/m", "attempts": [{"target": "anthropic/m", "status": 529}]}
    assert attempts_note(fell_back) == "fallbacks=1"
    retried = {"target": "anthropic/m", "attempts": [{"target": "anthropic/m", "status": 429, "retried": True}]}
    assert attempts_note(retried) == "retries=1"
    both = {"target": None, "attempts": [{"target": "a/m", "retried": True}, {"target": "a/m"}, {"target": "b/m"}]}
    assert attempts_note(both) == "fallbacks=1 retries=1"
