"""The demo's tmux side (libtmux): the four sessions and the grid that shows them beside the request log,
typing the prompts and waiting for the answers, attaching."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from pathlib import Path

import libtmux
from libtmux.constants import PaneDirection
from libtmux.exc import LibTmuxException

from llmproxy import config, paths
from llmproxy.demo import setup as S
from llmproxy.demo.relayout import relayout as apply_layout
from llmproxy.demo.state import DemoError, DemoState


def server(socket: str | None) -> libtmux.Server:
    return libtmux.Server(socket_name=socket) if socket else libtmux.Server()


def socket_path(socket: str | None) -> Path:
    """Where tmux puts the socket of ``tmux -L socket`` (the default server's is named "default")."""
    return Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / (socket or "default")


def tmux_prefix(socket: str | None) -> list[str]:
    return ["tmux"] + (["-L", socket] if socket else [])


def is_up(state: DemoState) -> bool:
    """Every session the demo recorded is there."""
    srv = server(state.socket)
    try:
        return srv.is_alive() and all(srv.has_session(name) for name in state.sessions)
    except LibTmuxException:
        return False


def pane_titles() -> dict[str, str]:
    """``fast · fast & expensive`` … from the profiles' descriptions."""
    cfg, _ = config.load(strict=False)
    return {p: S.pane_title(p, cfg.profiles[p].description if p in cfg.profiles else "") for p in S.PROFILES}


def capture(pane: libtmux.Pane, history: bool = False) -> list[str]:
    """The pane's screen (with ``history``, and what scrolled off it: in a short pane the prompt does)."""
    return pane.capture_pane(start=-500 if history else None, join_wrapped=True) or []


# ------------------------------------------------------------------------------------------------ start

def start(*, claude: str, socket: str | None, workdir: Path, base_url: str, token: str, started_daemon: bool,
          width: int = 200, height: int = 50, daemon_pid: int | None = None,
          titles: dict[str, str] | None = None) -> DemoState:
    """Create the four sessions (each sized as its pane of a ``width`` × ``height`` grid) and the grid.
    Call with no demo recorded (the caller reuses or cleans up a previous one first)."""
    if DemoState.load() is not None:
        raise DemoError("a demo is already recorded; `llmproxy demo stop` first")
    srv = server(socket)
    started_server = not srv.is_alive()
    wanted = [S.session_name(p) for p in S.PROFILES] + [S.GRID]
    for name in wanted:
        if srv.is_alive() and srv.has_session(name):
            raise DemoError(f"a tmux session named {name!r} already exists and is not the demo's; "
                            f"remove it (`{shlex.join(tmux_prefix(socket))} kill-session -t {name}`) or use --socket")
    home = S.demo_home(paths.home())
    g = S.geometry(width, height)
    size = {"fast": (g.left, g.top), "intelligent": (g.right, g.top), "balanced": (g.left, g.bottom),
            "cheap": (g.right, g.bottom)}
    state = DemoState(socket=socket, sessions=[], started_daemon=started_daemon, started_server=started_server,
                      base_url=base_url, workdir=str(workdir), daemon_pid=daemon_pid if started_daemon else None,
                      started=time.time())
    state.save()  # before anything exists: a failure below still leaves `demo stop` able to clean up
    for profile in S.PROFILES:
        cfg_dir = home / profile
        S.seed_claude_config(cfg_dir, workdir)
        env = S.session_env(profile, base_url, token, cfg_dir, paths.home())
        name = S.session_name(profile)
        sess = srv.new_session(session_name=name, start_directory=str(workdir), window_name=profile,
                               window_command=S.claude_command(claude, env), x=size[profile][0],
                               y=size[profile][1])
        state.sessions.append(name)
        pane = sess.active_window.active_pane
        state.pane_pids[name] = int(pane.pane_pid)
        state.save()
        # no status bar (the grid's pane border names the session), and no renaming by the program inside
        srv.cmd("set-option", "-t", name, "status", "off")
        srv.cmd("set-option", "-w", "-t", f"{name}:", "allow-rename", "off")
        srv.cmd("set-option", "-w", "-t", f"{name}:", "automatic-rename", "off")
    state.sessions.append(S.GRID)
    state.save()
    _grid(srv, socket, state, g, titles or {p: p for p in S.PROFILES})
    state.save()
    return state


def _grid(srv: libtmux.Server, socket: str | None, state: DemoState, g: S.Geometry, titles: dict[str, str]) -> None:
    """One window: the four sessions in two rows (nested tmux clients), the request log below; each pane's
    title on its top border from a pane option (which the program inside cannot change)."""
    def attach(profile: str) -> str:
        return shlex.join(["env", "-u", "TMUX", *tmux_prefix(socket), "attach-session", "-t",
                           S.session_name(profile)])

    logs = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", f"LLMPROXY_HOME={paths.home()}", sys.executable,
                       "-m", "llmproxy.demo.logpane", "-n", "20"])
    grid = srv.new_session(session_name=S.GRID, window_name="llmproxy", window_command=attach("fast"),
                           x=g.width, y=g.height)
    win = grid.active_window
    wid = win.window_id
    for opt, val in (("pane-border-status", "top"), ("allow-rename", "off"), ("automatic-rename", "off"),
                     ("pane-border-format", " #[bold]#{@llmproxy_title}#[default] "),
                     ("pane-border-lines", "heavy")):
        srv.cmd("set-option", "-w", "-t", wid, opt, val)
    srv.cmd("set-option", "-t", S.GRID, "status", "off")
    srv.cmd("set-option", "-t", S.GRID, "set-titles", "on")
    srv.cmd("set-option", "-t", S.GRID, "set-titles-string", "llmproxy demo")
    fast = win.active_pane
    log = fast.split(direction=PaneDirection.Below, shell=logs, size=g.log)
    intelligent = fast.split(direction=PaneDirection.Right, shell=attach("intelligent"), size=g.right)
    balanced = fast.split(direction=PaneDirection.Below, shell=attach("balanced"), size=g.bottom)
    cheap = intelligent.split(direction=PaneDirection.Below, shell=attach("cheap"), size=g.bottom)
    panes = {"fast": fast, "intelligent": intelligent, "balanced": balanced, "cheap": cheap, "log": log}
    titles = {**titles, "log": "requests · llmproxy logs -f"}
    for role, pane in panes.items():
        srv.cmd("set-option", "-p", "-t", pane.pane_id, "@llmproxy_title", titles[role])
        srv.cmd("set-option", "-p", "-t", pane.pane_id, "@llmproxy_role", role)
        with contextlib.suppress(TypeError, ValueError):
            state.grid_pids.append(int(pane.pane_pid))
    relayout = shlex.join([sys.executable, "-m", "llmproxy.demo.relayout"])
    srv.cmd("set-hook", "-w", "-t", wid, "window-resized",
            f"run-shell -b \"{relayout} '#{{socket_path}}' '#{{window_id}}'\"")
    apply_layout(srv.cmd("display-message", "-p", "#{socket_path}").stdout[0], wid)
    fast.select()


def wait_until(predicate, timeout: float, what: str, poll: float = 0.25) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(poll)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")


def profile_pane(srv: libtmux.Server, profile: str) -> libtmux.Pane:
    sess = srv.sessions.get(session_name=S.session_name(profile))
    return sess.active_window.active_pane


def wait_ready(srv: libtmux.Server, timeout: float) -> None:
    for profile in S.PROFILES:
        pane = profile_pane(srv, profile)
        wait_until(lambda p=pane: S.prompt_ready(capture(p)), timeout, f"Claude Code's prompt in {profile}")


def type_prompts(srv: libtmux.Server, prompts: dict[str, str]) -> None:
    for profile in S.PROFILES:
        pane = profile_pane(srv, profile)
        pane.send_keys(prompts[profile], enter=False, literal=True)
        time.sleep(0.3)
        pane.send_keys("Enter", enter=False)


def wait_answers(srv: libtmux.Server, prompts: dict[str, str], timeout: float) -> None:
    for profile in S.PROFILES:
        pane = profile_pane(srv, profile)
        wait_until(lambda p=pane, q=prompts[profile]: S.answered(capture(p, history=True), q), timeout,
                   f"the answer in {profile}")


def attach(socket: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # from inside tmux: nest rather than refuse
    os.execvpe("tmux", tmux_prefix(socket) + ["attach-session", "-t", S.GRID], env)
