"""The daemon's life cycle through the real CLI, as subprocesses."""

from __future__ import annotations

import json
import os
import socket

from tests.conftest import free_port
from tests.helpers import cli


def test_daemon_status_stop(home):
    port = free_port()
    r = cli("serve", "--daemon", "--simulate", "--port", str(port), home=home)
    assert r.returncode == 0, r.stderr + r.stdout
    assert f"127.0.0.1:{port}" in r.stdout
    try:
        s = cli("status", home=home)
        assert s.returncode == 0, s.stderr
        assert "running" in s.stdout and "simulated" in s.stdout
        js = json.loads(cli("status", "--json", home=home).stdout)
        assert js["running"] is True and js["port"] == port
        assert js["health"]["providers"]["anthropic"]["live"] is False
        # a second serve on the same port: one clear line, non-zero, no traceback
        again = cli("serve", "--daemon", "--simulate", "--port", str(port), home=home)
        assert again.returncode != 0
        assert "already running" in again.stderr and "Traceback" not in again.stderr
    finally:
        st = cli("stop", home=home)
    assert st.returncode == 0, st.stderr
    assert "stopped" in st.stdout
    assert not (home / "llmproxy.pid").exists()
    after = cli("status", home=home)
    assert after.returncode != 0 and "not running" in after.stdout


def test_port_in_use_is_one_clear_line(home):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        r = cli("serve", "--simulate", "--port", str(port), home=home)
        r2 = cli("serve", "--daemon", "--simulate", "--port", str(port), home=home)
    for res in (r, r2):
        assert res.returncode != 0
        # what holds the port (this test's own process), and a way out
        assert f"port {port} on 127.0.0.1 is in use by pid {os.getpid()}" in res.stderr, res.stderr
        assert "--port" in res.stderr
        assert "Traceback" not in res.stderr + res.stdout


def test_stale_pid_file(home):
    (home / "llmproxy.pid").write_text(json.dumps({"pid": 999999, "host": "127.0.0.1", "port": 1}))
    s = cli("status", home=home)
    assert s.returncode != 0 and "stale pid file" in s.stdout
    assert not (home / "llmproxy.pid").exists()
    (home / "llmproxy.pid").write_text(json.dumps({"pid": 999999, "host": "127.0.0.1", "port": 1}))
    st = cli("stop", home=home)  # nothing to stop is not a failure (the same rule as `demo stop`)
    assert st.returncode == 0 and "not running" in st.stdout and "stale" in st.stdout
    (home / "llmproxy.pid").write_text("garbage")
    port = free_port()
    r = cli("serve", "--daemon", "--simulate", "--port", str(port), home=home)
    try:
        assert r.returncode == 0, r.stderr
    finally:
        cli("stop", home=home)


def test_unwritable_home(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = cli("serve", "--simulate", home=blocker / "home")
    assert r.returncode != 0
    assert "cannot write" in r.stderr and "LLMPROXY_HOME" in r.stderr
    assert "Traceback" not in r.stderr


def test_config_check_reports_every_problem_with_path(home):
    (home / "config.toml").write_text(
        '[server]\nport = "x"\n[providers.foo]\nkind = "nope"\nbase_url = "ftp://x"\napi_key = "sk-secret"\n')
    (home / "profiles").mkdir()
    (home / "profiles" / "mine.toml").write_text('default = "ghost,model-x"\n')
    r = cli("config", "check", home=home)
    assert r.returncode == 1
    out = r.stdout
    assert "server.port: expected int" in out
    assert "providers.foo.kind" in out
    assert "providers.foo.base_url" in out
    assert "providers.foo.api_key: keys do not belong in the file" in out
    assert "mine.toml: default: unknown provider 'ghost'" in out
    assert "sk-secret" not in out
    # and serve refuses with the same problems, no traceback
    s = cli("serve", "--simulate", home=home)
    assert s.returncode == 1 and "Traceback" not in s.stderr and "config check" in s.stderr


def test_config_init_writes_a_valid_file(home):
    r = cli("config", "init", home=home)
    assert r.returncode == 0
    text = (home / "config.toml").read_text()
    assert text.startswith("#") and "api_key_env" in text
    assert cli("config", "check", home=home).returncode == 0
    assert cli("config", "init", home=home).returncode == 1  # no silent overwrite


def test_refuses_remote_bind_without_keys(home):
    r = cli("serve", "--simulate", "--host", "0.0.0.0", "--port", str(free_port()), home=home)
    assert r.returncode == 1 and "--allow-remote" in r.stderr


def test_help_lists_commands(home):
    r = cli("--help", home=home)
    assert r.returncode == 0
    for cmd in ("serve", "stop", "status", "route-test", "config", "kg"):
        assert cmd in r.stdout


def test_ctrl_c_finishes_in_flight_stream(home):
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    from tests.helpers import REPO

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--simulate", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO,
                            env={**os.environ, "LLMPROXY_HOME": str(home)})
    try:
        for _ in range(200):
            if cli("status", home=home).returncode == 0:
                break
            time.sleep(0.05)
        got: dict = {}

        def client() -> None:  # the cheap profile's simulated Ollama streams slowly (~2-3 s)
            req = urllib.request.Request(f"http://127.0.0.1:{port}/p/cheap/v1/messages", data=json.dumps({
                "model": "m", "max_tokens": 200, "stream": True,
                "messages": [{"role": "user", "content": "tell me a long story please"}]}).encode(),
                headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                got["body"] = resp.read().decode()

        t = threading.Thread(target=client)
        t.start()
        time.sleep(0.6)  # the stream is under way
        proc.send_signal(signal.SIGINT)
        t.join(30)
        out = proc.communicate(timeout=30)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "event: message_stop" in got.get("body", ""), got
    assert proc.returncode == 0 and "llmproxy stopped" in out and "Traceback" not in out
    assert not (home / "llmproxy.pid").exists()
