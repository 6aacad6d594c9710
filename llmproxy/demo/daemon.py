"""The daemon the demo's sessions talk to (also `llmproxy code` and `llmproxy ui`): reuse the running one or
start it, and when its port is taken, say by what and offer a free one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llmproxy import config
from llmproxy.daemonctl import get_health, running
from llmproxy.demo.state import DemoError


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
    # no key: whatever holds the port may not be ours (a keyed llmproxy then says only that it is up)
    health = get_health("127.0.0.1" if host in ("0.0.0.0", "::", "") else host, port, key=None) or {}
    pid = health.get("pid")
    if health.get("status") == "ok" and not isinstance(pid, int):
        pid = _listening_pid(port)
    if isinstance(pid, int):
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
    cfg, _ = config.load(strict=False)
    return cfg.api_keys[0] if cfg.api_keys else "llmproxy-demo"
