"""With proxy API keys set, the whole life cycle works through the real CLI, unchanged: serve --daemon returns
once the daemon answers, status shows it (uptime and all), reload reloads, ui prints the page and the hint
with ``[auth]`` intact, env and code hand out the key for Claude Code, stop stops. The key itself is never
printed by any of them except env and code, whose job it is; nor written to daemon.log."""

from __future__ import annotations

import json
import stat

from tests.conftest import PROXY_KEY, free_port
from tests.helpers import cli
from tests.security.keyed_daemon import daemon, get


def test_lifecycle_with_keys(home, tmp_path):
    with daemon(home) as port:
        assert (home / "llmproxy.pid").exists()
        st = cli("status", home=home)
        assert st.returncode == 0, st.stderr
        assert "running" in st.stdout and "uptime" in st.stdout and "requests served" in st.stdout
        js = json.loads(cli("status", "--json", home=home).stdout)
        assert js["running"] is True and js["port"] == port and js["health"]["uptime_s"] >= 0
        rl = cli("reload", home=home)
        assert rl.returncode == 0 and "configuration reloaded" in rl.stdout, rl.stderr
        ui = cli("ui", "--no-open", home=home)
        assert ui.returncode == 0, ui.stderr
        assert ui.stdout.strip() == f"http://127.0.0.1:{port}/ui"
        assert "one of [auth] api_keys" in " ".join(ui.stderr.split())
        env = cli("env", home=home)
        assert env.returncode == 0 and f"ANTHROPIC_AUTH_TOKEN={PROXY_KEY}" in env.stdout
        assert f"http://127.0.0.1:{port}/p/balanced" in env.stdout
        # code: exec "claude" (a script recording its environment) against the running daemon
        claude = tmp_path / "claude"
        claude.write_text('#!/bin/sh\necho "token=$ANTHROPIC_AUTH_TOKEN url=$ANTHROPIC_BASE_URL"\n')
        claude.chmod(claude.stat().st_mode | stat.S_IXUSR)
        code = cli("code", "--claude", str(claude), home=home)
        assert code.returncode == 0, code.stderr
        assert f"token={PROXY_KEY} url=http://127.0.0.1:{port}/p/balanced" in code.stdout
        # the daemon still requires the key from everyone else
        assert get(port, "/health") == (200, {"status": "ok"})
        assert get(port, "/v1/models")[0] == 401
        assert get(port, "/v1/models", PROXY_KEY)[0] == 200
        printed = [st, rl, ui]
    stopped = cli("status", home=home)
    assert stopped.returncode == 1 and "not running" in stopped.stdout
    assert not (home / "llmproxy.pid").exists()
    for r in printed:
        assert PROXY_KEY not in r.stdout + r.stderr
    assert PROXY_KEY not in (home / "logs" / "daemon.log").read_text()


def test_status_with_a_wrong_key_says_so(home):
    """The CLI's config carries a key the daemon does not accept: one clear line, not a KeyError."""
    with daemon(home) as _port:
        (home / "config.toml").write_text('[auth]\napi_keys = ["not-the-daemons-key"]\n')
        st = cli("status", home=home)
    assert st.returncode == 1 and "Traceback" not in st.stderr + st.stdout
    assert "proxy API key" in st.stderr and "not-the-daemons-key" not in st.stderr + st.stdout


def test_stop_with_keys_from_the_environment(home):
    """Keys from ``auth.api_keys_env`` (LLMPROXY_API_KEYS) work the same for serve --daemon and status."""
    env = {"LLMPROXY_API_KEYS": "env-key-0123456789"}
    (home / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
    port = free_port()
    r = cli("serve", "--daemon", "--simulate", "--port", str(port), home=home, env=env, timeout=60)
    try:
        assert r.returncode == 0, r.stderr
        st = cli("status", home=home, env=env)
        assert st.returncode == 0 and "uptime" in st.stdout, st.stderr
    finally:
        stop = cli("stop", home=home, env=env)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert "env-key-0123456789" not in r.stdout + r.stderr + stop.stdout
