"""`llmproxy reload` against the daemon's POST /api/reload contract (and the SIGHUP fallback for a daemon
without it), and `status` showing a stale configuration. The daemon is a small fake HTTP server here."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from typer.testing import CliRunner

from llmproxy.cli import lifecycle, reloadcmd
from llmproxy.cli.app import app

runner = CliRunner()


class FakeDaemon:
    def __init__(self, reload_status: int, reload_body: dict | None, health: dict | None = None):
        self.calls: list[tuple[str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status: int, body) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.calls.append((self.path, dict(self.headers)))
                self._send(reload_status, reload_body)

            def do_GET(self):
                self._send(200, health or {})

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def daemon(monkeypatch):
    made = []

    def make(status: int, body: dict | None, health: dict | None = None) -> FakeDaemon:
        d = FakeDaemon(status, body, health)
        made.append(d)
        for module in (lifecycle, reloadcmd):
            monkeypatch.setattr(module, "running", lambda: ({"pid": 4242, "host": "127.0.0.1", "port": d.port}, None))
        return d

    yield make
    for d in made:
        d.close()


def test_reload_ok(home, daemon):
    (home / "config.toml").write_text('[auth]\napi_keys = ["proxy-key-123"]\n')
    d = daemon(200, {"ok": True, "problems": [], "config_stale_since": None})
    r = runner.invoke(app, ["reload"])
    assert r.exit_code == 0, r.output
    assert "configuration reloaded" in r.stdout
    path, headers = d.calls[0]
    assert path == "/api/reload" and headers.get("x-api-key") == "proxy-key-123"


def test_reload_failed_exits_non_zero_with_the_problems(home, daemon):
    daemon(422, {"ok": False, "problems": ["/x/profiles/kg/mine/broken.md:2: priority:: expected a whole number"],
                 "config_stale_since": "2026-11-26T10:00:00+00:00"})
    r = runner.invoke(app, ["reload"])
    assert r.exit_code == 1
    assert "broken.md:2: priority::" in r.stderr and "previous configuration stays in force" in r.stderr
    assert r.stderr.count("error:") == 1


def test_reload_unauthorized(home, daemon):
    daemon(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid proxy API key"}})
    r = runner.invoke(app, ["reload"])
    assert r.exit_code == 1 and "api_keys" in r.stderr


def test_reload_falls_back_to_sighup_and_reads_the_outcome_from_daemon_log(home, daemon, monkeypatch):
    daemon(404, {"type": "error", "error": {"type": "not_found_error", "message": "no route"}})
    log = home / "logs" / "daemon.log"
    log.parent.mkdir(parents=True)
    log.write_text("earlier: reload failed: old news\n")
    sent = []

    def fake_kill(pid, sig):
        sent.append((pid, sig))
        with log.open("a") as fh:
            fh.write("reload failed: /x/mine.toml: default: unknown provider 'ghost'\n"
                     "previous configuration stays in force\n")

    monkeypatch.setattr(reloadcmd.os, "kill", fake_kill)
    r = runner.invoke(app, ["reload"])
    assert r.exit_code == 1 and sent and sent[0][0] == 4242
    assert "unknown provider 'ghost'" in r.stderr and "old news" not in r.stderr

    def ok_kill(pid, sig):
        with log.open("a") as fh:
            fh.write("configuration reloaded\n")

    monkeypatch.setattr(reloadcmd.os, "kill", ok_kill)
    r = runner.invoke(app, ["reload"])
    assert r.exit_code == 0 and "configuration reloaded" in r.stdout


def test_status_shows_stale_config(home, daemon):
    health = {"status": "ok", "version": "0", "pid": 4242, "uptime_s": 5, "default_profile": "balanced",
              "profiles": ["balanced"], "providers": {}, "requests_served": 0, "in_flight": 0,
              "config_stale_since": "2026-11-26T10:00:00+00:00",
              "reload_problems": ["/x/mine.toml: default: unknown provider 'ghost'"]}
    daemon(200, {}, health)
    r = runner.invoke(app, ["status"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "config stale since 2026-11-26T10:00:00+00:00" in r.stdout and "unknown provider 'ghost'" in r.stdout
