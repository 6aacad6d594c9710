"""CLI glue for `llmproxy demo` (`code` and `env` live in claudeenv.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from rich.text import Text

from llmproxy import paths
from llmproxy.cli.common import simulated_providers
from llmproxy.cli.console import CLIError, err, out


def _fail(msg: str) -> int:
    raise CLIError(msg)


def install_claude(home: Path) -> str | None:
    from llmproxy.demo import setup as S

    target = S.demo_home(home) / "claude-code"
    target.mkdir(parents=True, exist_ok=True)
    out.print(f"installing Claude Code with npm into {target} …")
    res = subprocess.run(["npm", "install", "--silent", "--prefix", str(target), "@anthropic-ai/claude-code"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        err.print(res.stderr.strip()[-1000:])
        return None
    return S.find_claude(None, home)


def terminal_size() -> tuple[int, int]:
    """The size the grid is laid out for: this terminal's ($COLUMNS/$LINES first), else 200×50."""
    import shutil

    size = shutil.get_terminal_size((200, 50))
    return size.columns, size.lines


def _attach_lines(socket: str | None) -> list[str]:
    from llmproxy.demo import setup as S
    from llmproxy.demo.tmux import tmux_prefix

    tmux = " ".join(tmux_prefix(socket))
    return [f"  {tmux} attach -t {S.session_name(p)}" for p in S.PROFILES]


def _reuse(state, socket: str | None, port: int | None, attach: bool) -> int:
    """A demo is up already: say so and attach to it, or refuse when asked for a different one."""
    from llmproxy.demo import setup as S
    from llmproxy.demo import tmux as T

    how = " ".join(T.tmux_prefix(state.socket) + ["attach", "-t", S.GRID])
    running_port = state.base_url.rpartition(":")[2]
    if socket is not None and socket != state.socket:
        return _fail(f"a demo is already running on tmux socket {state.socket or 'default'!r} "
                     f"(attach with `{how}`); stop it first with `llmproxy demo stop`")
    if port is not None and str(port) != running_port:
        return _fail(f"a demo is already running against {state.base_url}; stop it first with "
                     f"`llmproxy demo stop` to start one on port {port}")
    out.print(f"a demo is already running against {state.base_url} (started earlier; reusing it)")
    if attach and sys.stdin.isatty() and sys.stdout.isatty():
        T.attach(state.socket)
    out.print(f"attach with: [bold]{how}[/]   stop with: [bold]llmproxy demo stop[/]")
    return 0


def _start(path: str, home: Path, socket: str | None, port: int | None, workdir: Path | None,
           size: tuple[int, int], attach: bool):
    """Under the demo lock: reuse a demo that is up (the exit code), else clear what is left of an earlier
    one, start the daemon if none runs, and the sessions: (state, the daemon's base URL)."""
    from llmproxy.demo import setup as S
    from llmproxy.demo import tmux as T
    from llmproxy.demo.daemon import daemon_for, proxy_token
    from llmproxy.demo.state import DemoState, demo_lock
    from llmproxy.demo.stop import stop

    with demo_lock():
        previous = DemoState.load()
        if previous is not None and T.is_up(previous):
            return _reuse(previous, socket, port, attach)
        if previous is not None:  # a demo half gone: remove what is left of it before starting afresh
            for line in stop():
                out.print(f"previous demo: {line}")
        base_url, started, daemon_pid = daemon_for(port=port)
        wd = S.ensure_workspace(workdir or S.demo_home(home) / "workspace")
        state = T.start(claude=path, socket=socket, workdir=wd, base_url=base_url, token=proxy_token(),
                        started_daemon=started, daemon_pid=daemon_pid, width=size[0], height=size[1],
                        titles=T.pane_titles())
    return state, base_url


def _announce(state, base_url: str, width: int, height: int, socket: str | None) -> bool:
    """Say what runs where (and which providers are simulated); whether the grid fits this terminal."""
    from llmproxy.daemonctl import get_health
    from llmproxy.demo import setup as S

    host, _, port_s = base_url.removeprefix("http://").rpartition(":")
    health = get_health(host, int(port_s)) or {}
    sims = simulated_providers(health)
    out.print(f"[bold]llmproxy demo[/]: four Claude Code sessions ({', '.join(state.sessions[:-1])}) "
              f"against {base_url}, grid session [bold]{S.GRID}[/] laid out for {width}×{height}")
    if sims:
        out.print("[bold yellow]No provider keys for: " + ", ".join(sims) + " — those answers come from the "
                  "offline simulator, and say so.[/]")
    g = S.geometry(width, height)
    if not g.fits:
        out.print(f"[bold yellow]This terminal ({width}×{height}) is too small for the grid (it needs at least "
                  f"{g.minimum}); attach to one session at a time instead:[/]")
        for line in _attach_lines(socket):
            out.print(line)
    return g.fits


def _drive(socket: str | None, prompts: dict[str, str] | None, wait: bool, timeout: float, t0: float) -> None:
    """Wait for the sessions (with ``wait``), type the prompts (unless None) and wait for the answers."""
    from llmproxy.demo import tmux as T

    if prompts is None and not wait:
        return
    srv = T.server(socket)
    T.wait_ready(srv, timeout)
    out.print(f"all four prompts ready after {time.monotonic() - t0:.1f} s")
    if prompts is not None:
        T.type_prompts(srv, prompts)
        if wait:
            T.wait_answers(srv, prompts, timeout)
            out.print(f"all four prompts answered after {time.monotonic() - t0:.1f} s")


def demo(prompts_on: bool, prompt_file: Path | None, attach: bool, workdir: Path | None, claude: str | None,
         install: bool, socket: str | None, wait: bool, timeout: float, port: int | None = None) -> int:
    from llmproxy.demo import setup as S
    from llmproxy.demo import tmux as T
    from llmproxy.demo.state import DemoError

    t0 = time.monotonic()
    home = paths.home()
    if not S.tmux_available():
        return _fail("tmux is not installed (Debian/Ubuntu: apt-get install tmux; macOS: brew install tmux)")
    path = S.find_claude(claude, home)
    if path is None and install:
        path = install_claude(home)
    if path is None:
        return _fail("Claude Code was not found: install it with `llmproxy demo --install-claude` (or `make demo`), "
                     "`npm install -g @anthropic-ai/claude-code`, or pass --claude PATH")
    width, height = terminal_size()
    try:
        prompts = S.load_prompts(prompt_file)
        started = _start(path, home, socket, port, workdir, (width, height), attach)
    except (DemoError, ValueError) as exc:
        return _fail(str(exc))
    if isinstance(started, int):
        return started  # a demo that is up, reused
    state, base_url = started
    fits = _announce(state, base_url, width, height, socket)
    try:
        _drive(socket, prompts if prompts_on else None, wait, timeout, t0)
    except DemoError as exc:
        return _fail(f"{exc} (the sessions are still up: `llmproxy demo status`, `llmproxy demo stop`)")
    how = " ".join(T.tmux_prefix(socket) + ["attach", "-t", S.GRID])
    if attach and fits and sys.stdin.isatty() and sys.stdout.isatty():
        T.attach(socket)
    out.print(f"attach with: [bold]{how}[/]   (one session: {' '.join(T.tmux_prefix(socket))} attach -t "
              f"llmproxy-intelligent)   stop with: [bold]llmproxy demo stop[/]")
    return 0


def demo_status(json_out: bool) -> int:
    from llmproxy.demo.stop import status

    st = status()
    if json_out:
        out.print_json(data=st)
        return 0 if st["running"] else 1
    if not st["sessions"]:
        out.print("no demo is running")
        return 1
    for name, info in st["sessions"].items():
        for line in session_lines(name, info, st["routes"].get(name.removeprefix("llmproxy-"), [])):
            out.print(line, soft_wrap=True)
    out.print(f"grid session: {'up' if st.get('grid') else 'gone'}; proxy {st.get('base_url')}")
    return 0 if st["running"] else 1


def session_lines(name: str, info: dict, routes: list[dict]) -> list[Text]:
    """A session's line (is Claude Code up?) and, under it, one line per request of this demo, oldest first:
    ``10:00:02  keyword:planning → openrouter/deepseek/deepseek-r1-0528  200``."""
    from llmproxy.cli.format import UNROUTED

    state = (("Claude Code up", "green") if info["claude"] else (str(info.get("command")), "yellow")) \
        if info["exists"] else ("gone", "red")
    lines = [Text.assemble((f"{name:<22} ", "bold"), state)]
    for r in routes:
        when = str(r.get("time") or "")[11:19]
        if r.get("scenario"):
            where = r["scenario"] + (f":{r['concept']}" if r.get("concept") else "") + f" → {r.get('target') or '…'}"
        else:
            where = UNROUTED
        status = r.get("status")
        line = Text(f"    {when}  {where}  ")
        line.append(str(status if status is not None else "-"), "green" if status and status < 400 else "red")
        if r.get("error"):
            line.append(f"  {r['error']}", "red")
        lines.append(line)
    if not routes:
        lines.append(Text("    no requests yet", style="dim"))
    return lines


def demo_stop() -> int:
    from llmproxy.demo.state import DemoError, demo_lock
    from llmproxy.demo.stop import stop

    try:
        with demo_lock():
            lines = stop()
    except DemoError as exc:
        return _fail(str(exc))
    for line in lines:
        out.print(line)
    return 0


# --------------------------------------------------------------------------------------- code and env
