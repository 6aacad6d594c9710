"""The demo's tmux side (libtmux): create the four sessions and the grid, type the prompts, report, stop.

What the demo created is recorded in $LLMPROXY_HOME/demo/state.json, so `demo stop` removes exactly that:
its sessions, the processes in them, the tmux server (and its socket file) if the demo started it, and the
daemon if the demo started it. A second `demo` reuses the recorded demo while it is up and cleans up what is
left of it otherwise, so the record is never overwritten.
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
    daemon_pid: int | None = None  # the daemon the demo started: `demo stop` stops that process, no other
    grid_pids: list[int] = field(default_factory=list)  # the grid's nested clients and log pane

    @staticmethod
    def path() -> Path:
        return S.demo_home(paths.home()) / "state.json"

    def save(self) -> None:
        self.path().parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, self.path())

    @classmethod
    def load(cls) -> DemoState | None:
        try:
            data = json.loads(cls.path().read_text())
            known = {f for f in cls.__dataclass_fields__}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError):
            return None


@contextlib.contextmanager
def demo_lock():
    """One `demo` (or `demo stop`) at a time per LLMPROXY_HOME: two starts would each record only their own."""
    import fcntl

    path = S.demo_home(paths.home()) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoError("another `llmproxy demo` is starting or stopping right now; try again in a moment") \
                from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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


# ------------------------------------------------------------------------------------------ daemon and port

def _clean(text: str) -> str:
    """The last meaningful line of a child's output, without its own ``error:`` (we print ours)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    while line.lower().startswith("error:"):
        line = line[6:].strip()
    return line


def port_free(host: str, port: int) -> bool:
    import socket as so

    family = so.AF_INET6 if ":" in host else so.AF_INET
    with so.socket(family, so.SOCK_STREAM) as s:
        s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_near(host: str, port: int, tries: int = 50) -> int | None:
    return next((p for p in range(port + 1, min(port + 1 + tries, 65536)) if port_free(host, p)), None)


def _listening_pid(port: int) -> int | None:
    """The process listening on ``port`` (Linux: /proc/net/tcp* socket inode -> /proc/PID/fd); None if unknown."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    if not inodes:
        return None
    for d in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (d / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(d.name)
        except OSError:
            continue
    return None


def _llmproxy_home_of(pid: int, config_source: str | None) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        for item in environ:
            if item.startswith(b"LLMPROXY_HOME="):
                return item.split(b"=", 1)[1].decode()
    except OSError:
        pass
    if config_source and config_source.startswith("/") and config_source.endswith("config.toml"):
        return str(Path(config_source).parent)
    return None


def port_holder(host: str, port: int) -> tuple[str, str] | None:
    """None if ``host:port`` is free, else (who holds it, how to free it), in words: another llmproxy (its pid and
    LLMPROXY_HOME, from its /health and /proc) or some other process (its pid and command line)."""
    if port_free(host, port):
        return None
    from llmproxy.daemonctl import get_health

    health = get_health("127.0.0.1" if host in ("0.0.0.0", "::", "") else host, port) or {}
    if isinstance(health.get("pid"), int):
        pid = health["pid"]
        where = _llmproxy_home_of(pid, health.get("config"))
        if where:
            return f"another llmproxy (pid {pid}, LLMPROXY_HOME={where})", f"stop it with `LLMPROXY_HOME={where} llmproxy stop`"
        return f"another llmproxy (pid {pid})", f"stop it with `kill {pid}`"
    pid = _listening_pid(port)
    if pid is None:
        return "another program", ""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return f"pid {pid}" + (f" ({cmd[:80]})" if cmd else ""), ""


def port_message(host: str, port: int, command: str = "demo") -> str | None:
    """One line when ``host:port`` is taken: what holds it, how to free it, a free port to use instead."""
    holder = port_holder(host, port)
    if holder is None:
        return None
    who, hint = holder
    alt = free_port_near(host, port)
    offer = f"use another port: `llmproxy {command} --port {alt}`" if alt else "pass --port with a free port"
    return f"port {port} on {host} is in use by {who}: {hint + ', or ' if hint else ''}{offer}"


def ensure_daemon(verbose: bool = True, port: int | None = None, command: str = "code") -> tuple[str, bool]:
    """(base URL of the running daemon, whether we started it); see ``daemon_for``."""
    base_url, started, _ = daemon_for(verbose, port, command)
    return base_url, started


def daemon_for(verbose: bool = True, port: int | None = None, command: str = "demo") -> tuple[str, bool, int]:
    """(base URL of the running daemon, whether we started it, its pid). With ``port``, start it there; when the
    port is taken, say by what (pid, and LLMPROXY_HOME for another llmproxy) and offer a free port for
    ``llmproxy <command> --port``."""
    from llmproxy import config
    from llmproxy.daemonctl import running

    live, _ = running()
    if live is not None:
        if port is not None and live["port"] != port:
            raise DemoError(f"llmproxy is already running on port {live['port']} (pid {live['pid']}); "
                            f"use it (drop --port) or stop it first with `llmproxy stop`")
        return f"http://{live['host']}:{live['port']}", False, live["pid"]
    cfg, _ = config.load(strict=False)
    host, port = cfg.server.host, (port if port is not None else cfg.server.port)
    if problem := port_message(host, port, command):
        raise DemoError(problem)
    args = [sys.executable, "-m", "llmproxy", "serve", "--daemon", "--port", str(port)] + (["-v"] if verbose else [])
    res = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise DemoError(f"could not start the llmproxy daemon: {_clean(res.stderr or res.stdout)}")
    live, _ = running()
    if live is None:
        raise DemoError("the llmproxy daemon started but wrote no pid file")
    return f"http://{live['host']}:{live['port']}", True, live["pid"]


def proxy_token() -> str:
    from llmproxy import config

    cfg, _ = config.load(strict=False)
    return cfg.api_keys[0] if cfg.api_keys else "llmproxy-demo"


def pane_titles() -> dict[str, str]:
    """``fast · fast & expensive`` … from the profiles' descriptions."""
    from llmproxy import config

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
                      base_url=base_url, workdir=str(workdir), daemon_pid=daemon_pid if started_daemon else None)
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
    from llmproxy.demo.relayout import relayout as apply

    apply(srv.cmd("display-message", "-p", "#{socket_path}").stdout[0], wid)
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
    """Remove what the demo recorded it created, and nothing else. Returns what was done, one line each."""
    from llmproxy import config
    from llmproxy.daemonctl import running, terminate

    state = DemoState.load()
    if state is None:
        return ["no demo is recorded; nothing to stop"]
    done = []
    srv = server(state.socket)
    roots = [*state.pane_pids.values(), *state.grid_pids]
    pids = [p for pid in roots for p in (pid, *_descendants(pid))]
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
            for _ in range(20):  # the server may still be exiting
                if not srv.is_alive():
                    break
                time.sleep(0.05)
            if sock.exists() and not srv.is_alive():
                sock.unlink()  # tmux leaves its socket file behind when killed
                done.append(f"removed the tmux socket {sock}")
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
        # the daemon the demo started, not one started since by someone else (pid recorded since this version)
        if live is not None and state.daemon_pid in (None, live["pid"]):
            terminate(live["pid"], config.load(strict=False)[0].server.grace_seconds)
            done.append(f"stopped the llmproxy daemon the demo started (pid {live['pid']})")
    DemoState.path().unlink(missing_ok=True)
    return done
