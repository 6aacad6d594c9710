"""The CLI against a real daemon (subprocesses): the status line after a routed request, and a reload that
fails (non-zero, the problem named, `status` says the config is stale) then succeeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import free_port
from tests.helpers import REPO, cli
from tests.test_cli_statusline import SESSION


@pytest.fixture
def daemon(home):
    port = free_port()
    r = cli("serve", "--daemon", "--simulate", "--port", str(port), home=home)
    assert r.returncode == 0, r.stderr + r.stdout
    yield port
    cli("stop", home=home)


def test_statusline_after_a_request_through_the_daemon(home, daemon):
    body = {"model": "claude-opus-4-8", "max_tokens": 30,
            "messages": [{"role": "user", "content": "help me plan out the migration"}]}
    req = urllib.request.Request(f"http://127.0.0.1:{daemon}/p/intelligent/v1/messages", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json",
                                          "X-Claude-Code-Session-Id": SESSION["session_id"]})  # as Claude Code sends it
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    log = home / "logs" / "requests.jsonl"
    for _ in range(150):  # the log writer flushes in the background
        if log.exists() and log.read_text().strip():
            break
        time.sleep(0.02)
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "llmproxy", "statusline"], input=json.dumps(SESSION),
                         capture_output=True, text=True, timeout=30, cwd=REPO,
                         env={**os.environ, "LLMPROXY_HOME": str(home), "COLUMNS": "200"})
    took = time.monotonic() - t0
    line = res.stdout.strip()
    assert res.returncode == 0 and "\n" not in line
    assert line.startswith("llmproxy intelligent · keyword:planning · sim · $"), line
    assert line.endswith(" · openrouter/deepseek/deepseek-r1-0528") and "not running" not in line
    assert took < 5  # a loose bound for a loaded CI box; the real figure is measured in the closing note


def test_reload_failure_is_non_zero_and_status_says_stale(home, daemon):
    (home / "profiles").mkdir()
    mine = home / "profiles" / "mine.toml"
    mine.write_text('default = "ghost,model-x"\n')
    r = cli("reload", home=home)
    assert r.returncode == 1
    assert "mine.toml: default: unknown provider 'ghost'" in r.stderr and r.stderr.count("error:") == 1
    s = cli("status", home=home)
    assert s.returncode == 0 and "config stale since" in s.stdout and "unknown provider 'ghost'" in s.stdout
    mine.write_text('default = "anthropic,claude-haiku-4-5"\n')
    r = cli("reload", home=home)
    assert r.returncode == 0 and "configuration reloaded" in r.stdout
    assert "stale" not in cli("status", home=home).stdout
