"""`llmproxy ui`: the daemon ensured, the URL printed, a browser opened only where one can show the page."""

from __future__ import annotations

import urllib.request
import webbrowser

import pytest

from llmproxy.cli import ui as ui_cli
from tests.conftest import free_port
from tests.helpers import cli


def test_dashboard_url():
    assert ui_cli.dashboard_url("http://127.0.0.1:3456") == "http://127.0.0.1:3456/ui"
    assert ui_cli.dashboard_url("http://0.0.0.0:3456/") == "http://127.0.0.1:3456/ui"
    assert ui_cli.dashboard_url("http://[::]:80") == "http://127.0.0.1:80/ui"


@pytest.fixture
def fake_daemon(monkeypatch, home):
    from llmproxy.demo import daemon as D

    opened: list[str] = []
    monkeypatch.setattr(D, "ensure_daemon", lambda verbose, port, command: ("http://127.0.0.1:4567", True))
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: opened.append(url) or True)
    return opened


def test_opens_the_page_in_a_desktop_session(fake_daemon, monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(ui_cli, "can_open_browser", lambda: True)
    assert ui_cli.run(None, True) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "http://127.0.0.1:4567/ui"
    assert "started the llmproxy daemon" in out.err
    assert fake_daemon == ["http://127.0.0.1:4567/ui"]


def test_no_browser_without_a_display_or_with_no_open(fake_daemon, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if ui_cli.sys.platform not in ("darwin", "win32"):
        assert ui_cli.can_open_browser() is False
        assert ui_cli.run(None, True) == 0
        assert "no graphical browser here" in capsys.readouterr().err
    assert ui_cli.run(None, False) == 0
    assert fake_daemon == []


def test_text_browsers_are_never_used(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(webbrowser, "get", lambda: webbrowser.GenericBrowser("w3m"))
    assert ui_cli.can_open_browser() is False
    monkeypatch.setattr(webbrowser, "get", lambda: webbrowser.GenericBrowser("/usr/bin/firefox"))
    assert ui_cli.can_open_browser() is True


def test_ui_starts_the_daemon_and_the_page_answers(home):
    port = free_port()
    (home / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
    try:
        r = cli("ui", "--no-open", "--port", str(port), home=home, env={"DISPLAY": ""})
        assert r.returncode == 0, r.stderr + r.stdout
        url = r.stdout.strip()
        assert url == f"http://127.0.0.1:{port}/ui"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and b"llmproxy" in resp.read()
        # a second call reuses the running daemon
        r = cli("ui", "--no-open", home=home)
        assert r.returncode == 0 and r.stdout.strip() == url and "started" not in r.stderr
    finally:
        cli("stop", home=home)
