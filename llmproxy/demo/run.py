"""The demo's tmux side (libtmux): create the four sessions and the grid, type the prompts, report, stop.

What the demo created is recorded in $LLMPROXY_HOME/demo/state.json, so `demo stop` removes exactly that:
its sessions, the processes in them, the tmux server if the demo started it, and the daemon if the demo
started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import libtmux
from libtmux.constants import PaneDirection
from libtmux.exc import LibTmuxException

from llmproxy import paths
from llmproxy.demo import setup as S


class DemoError(Exception):
    """One clear line for the user."""


@dataclass
class DemoState:
    socket: str | None
    sessions: list[str]
    pane_pids: dict[str, int] = field(default_factory=dict)
    started_daemon: bool = False
    started_server: bool = False
    base_url: str = ""
    workdir: str = ""

    @staticmethod
    def path() -> Path:
        return S.demo_home(paths.home()) / "state.json"

    def save(self) -> None:
        self.path().parent.mkdir(parents=True, exist_ok=True)
        self.path().write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls) -> DemoState | None:
        try:
            return cls(**json.loads(cls.path().read_text()))
        except (OSError, ValueError, TypeError):
            return None


def server(socket: str | None) -> libtmux.Server:
    return libtmux.Server(socket_name=socket) if socket else libtmux.Server()


def socket_path(socket: str | None) -> Path:
    """Where tmux puts the socket of ``tmux -L socket`` (the default server's is named "default")."""
    return Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / (socket or "default")


def tmux_prefix(socket: str | None) -> list[str]:
    return ["tmux"] + (["-L", socket] if socket else [])


def ensure_daemon(verbose: bool = True) -> tuple[str, bool]:
    """(base URL of the running daemon, whether we started it)."""
    from llmproxy.daemonctl import running

    live, _ = running()
    if live is None:
        args = [sys.executable, "-m", "llmproxy", "serve", "--daemon"] + (["-v"] if verbose else [])
        res = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise DemoError(f"could not start the llmproxy daemon: {(res.stderr or res.stdout).strip()}")
        live, _ = running()
        if live is None:
            raise DemoError("the llmproxy daemon started but wrote no pid file")
        return f"http://{live['host']}:{live['port']}", True
    return f"http://{live['host']}:{live['port']}", False


def proxy_token() -> str:
    from llmproxy import config

    cfg, _ = config.load(strict=False)
    return cfg.api_keys[0] if cfg.api_keys else "llmproxy-demo"


def capture(pane: libtmux.Pane) -> list[str]:
    return pane.capture_pane(join_wrapped=True) or []


def start(*, claude: str, socket: str | None, workdir: Path, base_url: str, token: str, started_daemon: bool,
          width: int = 120, height: int = 40) -> DemoState:
    srv = server(socket)
    started_server = not srv.is_alive()
    previous = DemoState.load()
    ours = set(previous.sessions) if previous else set()
    wanted = [S.session_name(p) for p in S.PROFILES] + [S.GRID]
    for name in wanted:
        if srv.is_alive() and srv.has_session(name):
            if name not in ours:
                raise DemoError(f"a tmux session named {name!r} already exists and is not the demo's; "
                                f"remove it or use --socket")
            srv.kill_session(name)
    home = S.demo_home(paths.home())
    state = DemoState(socket=socket, sessions=wanted, started_daemon=started_daemon,
                      started_server=started_server, base_url=base_url, workdir=str(workdir))
    for profile in S.PROFILES:
        cfg_dir = home / profile
        S.seed_claude_config(cfg_dir, workdir)
        env = S.session_env(profile, base_url, token, cfg_dir)
        sess = srv.new_session(session_name=S.session_name(profile), start_directory=str(workdir),
                               window_name=profile, window_command=S.claude_command(claude, env),
                               x=width, y=height)
        pane = sess.active_window.active_pane
        state.pane_pids[S.session_name(profile)] = int(pane.pane_pid)
        state.save()  # recorded as soon as it exists: a failure below still leaves `demo stop` able to clean up
    _grid(srv, socket, state)
    state.save()
    return state


def _grid(srv: libtmux.Server, socket: str | None, state: DemoState) -> None:
    """One window: the four sessions side by side (nested tmux clients) and the request log below."""
    def attach(profile: str) -> str:
        return shlex.join(["env", "-u", "TMUX", *tmux_prefix(socket), "attach-session", "-t",
                           S.session_name(profile)])

    logs = shlex.join(["env", f"LLMPROXY_HOME={paths.home()}", "COLUMNS=200", sys.executable, "-m", "llmproxy",
                       "logs", "-f", "-n", "8"])
    grid = srv.new_session(session_name=S.GRID, window_name="llmproxy", window_command=attach("fast"),
                           x=240, y=66)
    win = grid.active_window
    fast = win.active_pane
    fast.split(direction=PaneDirection.Below, shell=logs, size="22%")
    intelligent = fast.split(direction=PaneDirection.Right, shell=attach("intelligent"))
    fast.split(direction=PaneDirection.Below, shell=attach("balanced"))
    intelligent.split(direction=PaneDirection.Below, shell=attach("cheap"))
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
        wait_until(lambda p=pane, q=prompts[profile]: S.answered(capture(p), q), timeout,
                   f"the answer in {profile}")


def attach(socket: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # from inside tmux: nest rather than refuse
    os.execvpe("tmux", tmux_prefix(socket) + ["attach-session", "-t", S.GRID], env)


# ---------------------------------------------------------------------------------------- status / stop

def status() -> dict:
    from llmproxy.obs.reader import Filter, read

    state = DemoState.load()
    out: dict = {"running": False, "sessions": {}, "routes": {}}
    if state is None:
        return out
    srv = server(state.socket)
    alive = srv.is_alive()
    for profile in S.PROFILES:
        name = S.session_name(profile)
        info = {"exists": False, "claude": False}
        if alive and srv.has_session(name):
            pane = profile_pane(srv, profile)
            info = {"exists": True, "claude": pane.pane_current_command in ("claude", "node"),
                    "command": pane.pane_current_command}
        out["sessions"][name] = info
        recent = read(paths.request_log(), Filter(profile=profile), last=3)
        out["routes"][profile] = [{"time": r.get("time"), "scenario": (r.get("decision") or {}).get("scenario"),
                                   "concept": (r.get("decision") or {}).get("concept"), "target": r.get("target"),
                                   "status": r.get("status")} for r, _ in recent]
    out["running"] = any(s["exists"] for s in out["sessions"].values())
    out["grid"] = alive and srv.has_session(S.GRID)
    out["base_url"] = state.base_url
    return out


def _pid_alive(pid: int) -> bool:
    from llmproxy.pidfile import pid_alive

    return pid_alive(pid)


def _descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (Linux /proc); Claude Code starts helpers of its own."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def stop() -> list[str]:
    """Remove what the demo created. Returns what was done, one line each."""
    from llmproxy import config
    from llmproxy.daemonctl import running, terminate

    state = DemoState.load()
    if state is None:
        return ["no demo is recorded; nothing to stop"]
    done = []
    srv = server(state.socket)
    pids = [p for pid in state.pane_pids.values() for p in (pid, *_descendants(pid))]
    for name in [S.GRID, *[s for s in state.sessions if s != S.GRID]]:
        try:  # the server exits by itself once its last session is gone
            if srv.is_alive() and srv.has_session(name):
                srv.kill_session(name)
                done.append(f"killed tmux session {name}")
        except LibTmuxException:
            pass
    if state.started_server:
        with contextlib.suppress(LibTmuxException):
            if srv.is_alive() and not srv.sessions:
                srv.kill()
                done.append("stopped the tmux server the demo started")
        sock = socket_path(state.socket)
        with contextlib.suppress(OSError, LibTmuxException):
            if sock.exists() and not srv.is_alive():
                sock.unlink()  # tmux leaves its socket file behind when killed
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.1)
    for p in pids:
        if _pid_alive(p):
            try:
                os.kill(p, signal.SIGKILL)
                done.append(f"killed leftover process {p}")
            except ProcessLookupError:
                pass
    if state.started_daemon:
        live, _ = running()
        if live is not None:
            terminate(live["pid"], config.load(strict=False)[0].server.grace_seconds)
            done.append("stopped the llmproxy daemon the demo started")
    DemoState.path().unlink(missing_ok=True)
    return done
