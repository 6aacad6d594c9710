"""The demo grid at common terminal sizes: real tmux (own sockets), real Claude Code, the simulator.

The demo is started as from a W×H terminal ($COLUMNS/$LINES); a second tmux server of exactly W×H attaches to
the grid the way a user's terminal would, so its capture is the screen the user sees, borders and titles
included. Each Claude Code pane must show its answer's ``profile=… scenario=…`` line and the log pane at least
eight request lines.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid

import pytest

from llmproxy.demo import setup as S
from tests.conftest import free_port
from tests.helpers import cli, require_claude

pytestmark = pytest.mark.e2e
SIZES = [(120, 40), (160, 45), (200, 50), (240, 60)]
TITLES = {"fast": "fast · fast & expensive", "intelligent": "intelligent · routes by intent",
          "balanced": "balanced · cost/quality balance", "cheap": "cheap · slow & cheap"}
LOG_ROW = re.compile(r"^\d\d:\d\d:\d\d \w+")


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10).stdout


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def grid_panes(socket: str) -> dict[str, dict]:
    """role -> {id, left, top, width, height} of the grid's panes."""
    out = {}
    for line in tmux(socket, "list-panes", "-t", "llmproxy-demo", "-F",
                     "#{@llmproxy_role} #{pane_id} #{pane_left} #{pane_top} #{pane_width} #{pane_height}").splitlines():
        role, pid, *nums = line.split()
        out[role] = {"id": pid, **dict(zip(("left", "top", "width", "height"), map(int, nums), strict=True))}
    return out


def answer_visible(screen: list[str], profile: str) -> bool:
    """The simulator's answer line, as Claude Code wraps it in a narrow pane."""
    text = " ".join(ln.strip() for ln in screen)
    return re.search(rf"● \[llmproxy simulator\] profile={profile} scenario=\w+", text) is not None


@pytest.fixture
def tmux_required():
    if shutil.which("tmux") is None:
        pytest.skip("SKIPPED LOUDLY: tmux is not installed")


@pytest.mark.parametrize("width,height", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_grid_readable(home, width, height, tmux_required):
    claude = require_claude()
    (home / "config.toml").write_text(f"[server]\nport = {free_port()}\nsimulator_speed = 4\n")
    socket, viewer = f"llmproxy-grid-{uuid.uuid4().hex[:8]}", f"llmproxy-view-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    try:
        r = cli("demo", "--socket", socket, "--claude", claude, "--wait", "--timeout", "90", home=home, timeout=150,
                env={"COLUMNS": str(width), "LINES": str(height)})
        assert r.returncode == 0, r.stdout + r.stderr
        assert "too small" not in r.stdout
        # the user's terminal: exactly width × height, attached to the grid
        subprocess.run(["tmux", "-L", viewer, "-f", "/dev/null", "new-session", "-d", "-s", "view", "-x", str(width), "-y",
                        str(height), f"env -u TMUX tmux -L {socket} attach-session -t llmproxy-demo"],
                       check=True, timeout=10)
        panes = grid_panes(socket)
        assert set(panes) == {"fast", "intelligent", "balanced", "cheap", "log"}
        g = S.geometry(width, height)
        assert panes["log"]["height"] == g.log >= 8 and panes["log"]["width"] == width
        for role in TITLES:
            assert panes[role]["height"] >= S.MIN_PANE_ROWS, (role, panes[role])

        def log_rows():
            rows = [ln for ln in tmux(socket, "capture-pane", "-p", "-t", panes["log"]["id"]).splitlines()
                    if LOG_ROW.match(ln)]
            return rows if len(rows) >= 8 else None

        rows = wait_for(log_rows, 20, "eight request lines in the log pane")
        assert all(len(ln) < width for ln in rows)  # one screen line each: nothing wraps
        for profile in TITLES:
            screen = tmux(socket, "capture-pane", "-p", "-t", panes[profile]["id"]).splitlines()
            assert answer_visible(screen, profile), "\n".join(screen)
        screen = wait_for(lambda: (s := tmux(viewer, "capture-pane", "-p", "-t", "view")).strip() and s, 10,
                          "the viewer's screen").splitlines()
        for profile, title in TITLES.items():
            p = panes[profile]
            border = screen[p["top"] - 1][p["left"]:p["left"] + p["width"]]
            assert title in border, (profile, border)
            body = [ln[p["left"]:p["left"] + p["width"]] for ln in screen[p["top"]:p["top"] + p["height"]]]
            assert answer_visible(body, profile), "\n".join(body)
        log_body = screen[panes["log"]["top"]:]
        assert "requests" in screen[panes["log"]["top"] - 1]
        assert sum(bool(LOG_ROW.match(ln)) for ln in log_body) >= 8, "\n".join(log_body)
        print(f"\n--- grid at {width}×{height} ({time.monotonic() - t0:.1f} s) ---\n" + "\n".join(screen))
    finally:
        subprocess.run(["tmux", "-L", viewer, "kill-server"], capture_output=True, timeout=10)
        from llmproxy.demo.tmux import socket_path

        socket_path(viewer).unlink(missing_ok=True)
        stop = cli("demo", "stop", home=home)
    assert stop.returncode == 0, stop.stderr
    assert not (home / "demo" / "state.json").exists()
