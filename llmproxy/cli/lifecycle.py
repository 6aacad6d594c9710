"""serve / stop / status / reload: the daemon's life cycle, with one clear line per failure."""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
import time
from pathlib import Path

from rich.console import Console

from llmproxy import paths
from llmproxy.daemonctl import get_health, running

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def fail(msg: str) -> int:
    err.print(f"[bold red]error:[/] {msg}")
    return 1


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ensure_home() -> str | None:
    home = paths.home()
    try:
        paths.log_dir().mkdir(parents=True, exist_ok=True)
        probe = home / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return f"cannot write to {home} ({exc.strerror}); set LLMPROXY_HOME to a writable directory"
    return None


def serve(host: str | None, port: int | None, config: Path | None, profile_dirs: list[Path], verbose: int,
          simulate: bool, daemon: bool, allow_remote: bool) -> int:
    from llmproxy import config as config_mod
    from llmproxy.routing import KGError, compile_profiles

    if problem := _ensure_home():
        return fail(problem)
    try:
        cfg, _ = config_mod.load(config, profile_dirs)
        profiles = compile_profiles(cfg)
    except config_mod.ConfigError as exc:
        for p in exc.problems:
            err.print(f"[red]config:[/] {p}")
        return fail(f"{len(exc.problems)} configuration problem(s); run 'llmproxy config check'")
    except KGError as exc:
        return fail(str(exc))
    host = host or cfg.server.host
    port = port if port is not None else cfg.server.port
    if not _is_loopback(host) and not cfg.api_keys and not allow_remote:
        return fail(f"refusing to bind {host} without proxy API keys (set auth.api_keys, or pass --allow-remote)")
    live, note = running()
    if note:
        err.print(f"[yellow]note:[/] {note}")
    if live:
        return fail(f"llmproxy is already running (pid {live['pid']} on {live['host']}:{live['port']})")
    if daemon:
        return _spawn_daemon(cfg, profiles, host, port, config, profile_dirs, verbose, simulate)
    return _foreground(cfg, profiles, host, port, config, profile_dirs, verbose, simulate)


def _spawn_daemon(cfg, profiles, host: str, port: int, config: Path | None, profile_dirs: list[Path], verbose: int,
                  simulate: bool) -> int:
    """Fork the already-configured process into the background (new session, output to daemon.log) and
    return once the child answers /health — no second interpreter start, no second import of aiohttp."""
    logf = paths.daemon_log()
    start_at = logf.stat().st_size if logf.exists() else 0
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the daemon
        rc = 1
        try:
            os.setsid()
            fd = os.open(logf, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.environ.setdefault("COLUMNS", "200")
            rc = _foreground(cfg, profiles, host, port, config, profile_dirs, verbose, simulate)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            tail = _log_tail(logf, start_at)
            return fail(tail or f"daemon exited with status {os.waitstatus_to_exitcode(status)}; see {logf}")
        health = get_health(host, port, timeout=0.5)
        if health and health.get("pid") == pid:
            sims = [n for n, p in health["providers"].items() if not p["live"] and p["kind"] != "simulator"]
            out.print(f"llmproxy running (pid {pid}) on http://{host}:{port}  log: {logf}")
            if sims:
                out.print(f"[yellow]simulated providers:[/] {', '.join(sims)}")
            # the launcher has nothing left to clean up: skip interpreter teardown, measured at ~0.2 s here
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        time.sleep(0.02)
    os.kill(pid, signal.SIGTERM)
    return fail(f"daemon did not answer /health within 20 s; see {logf}")


def _log_tail(path: Path, start: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errs = [ln for ln in lines if "error" in ln.lower()]
    return (errs[-1] if errs else lines[-1] if lines else "").removeprefix("error: ").strip()


def _foreground(cfg, profiles, host: str, port: int, config: Path | None, profile_dirs: list[Path], verbose: int,
                simulate: bool) -> int:
    import asyncio
    import logging

    from llmproxy.cli.format import providers_table, request_row
    from llmproxy.server.handlers import health_info
    from llmproxy.server.run import StartupError, serve
    from llmproxy.server.state import Options, Runtime, State

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = Options(config_path=config, profile_dirs=tuple(profile_dirs), simulate=simulate, verbose=verbose)
    state = State(runtime=Runtime(cfg=cfg, profiles=profiles, providers={}), options=options)

    def on_ready(st: State) -> None:
        info = health_info(st)
        out.print(f"[bold]llmproxy[/] {info['version']} listening on [bold]http://{host}:{port}[/] "
                  f"(pid {info['pid']}); default profile [bold]{info['default_profile']}[/]")
        for name, prof in sorted(st.runtime.profiles.items()):
            out.print(f"  profile [bold]{name:<12}[/] {prof.config.default[0]}  "
                      f"[dim]ANTHROPIC_BASE_URL=http://{host}:{port}/p/{name}  {prof.config.description}[/]")
        out.print(providers_table(info))
        sims = [n for n, p in info["providers"].items() if not p["live"] and p["kind"] != "simulator"]
        if sims:
            out.print(f"[bold yellow]SIMULATED:[/] {', '.join(sims)} — answers for these come from the offline "
                      f"simulator and say so. Set the providers' API key variables to use them for real.")
        out.print(f"request log: {paths.request_log()}", style="dim")

    def listener(rec: dict) -> None:
        if rec.get("event") == "reload":
            if rec["problems"]:
                for p in rec["problems"]:
                    err.print(f"[red]reload failed:[/] {p}")
                err.print("[yellow]previous configuration stays in force[/]")
            else:
                out.print("[green]configuration reloaded[/]")
            return
        if verbose:
            out.print(request_row(rec), soft_wrap=True)
            if verbose >= 2:
                from rich.json import JSON
                for key in ("request_body", "response_body"):
                    if key in rec:
                        out.print(f"[dim]{key}:[/]")
                        out.print(JSON.from_data(rec[key]))

    try:
        asyncio.run(serve(state, host, port, on_ready=on_ready, listeners=[listener]))
    except StartupError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        pass
    out.print("llmproxy stopped")
    return 0


def stop() -> int:
    from llmproxy.daemonctl import terminate

    live, note = running()
    if live is None:
        return fail(f"llmproxy is not running{f' ({note})' if note else ''}")
    if terminate(live["pid"], _grace()) == "killed":
        err.print(f"[yellow]pid {live['pid']} did not stop within the grace period; sent SIGKILL[/]")
        out.print(f"llmproxy killed (pid {live['pid']})")
    else:
        out.print(f"llmproxy stopped (pid {live['pid']})")
    return 0


def _grace() -> float:
    from llmproxy import config as config_mod

    try:
        return config_mod.load(strict=False)[0].server.grace_seconds
    except Exception:  # noqa: BLE001 - stopping must work even with a broken config
        return 10.0


def status(json_out: bool) -> int:
    from llmproxy.cli.format import fmt_uptime, providers_table

    live, note = running()
    if live is None:
        if json_out:
            out.print_json(data={"running": False, "note": note})
        else:
            out.print(f"llmproxy is not running{f' ({note})' if note else ''}")
        return 1
    health = get_health(live["host"], live["port"])
    if json_out:
        out.print_json(data={"running": True, **live, "health": health})
        return 0 if health else 1
    out.print(f"llmproxy is [green]running[/]: pid {live['pid']}, http://{live['host']}:{live['port']}")
    if health is None:
        return fail("the daemon does not answer /health")
    out.print(f"uptime {fmt_uptime(health['uptime_s'])}, requests served {health['requests_served']}, "
              f"in flight {health['in_flight']}")
    out.print(f"profiles: {', '.join(health['profiles'])} (default {health['default_profile']})")
    out.print(providers_table(health))
    return 0


def reload() -> int:
    live, note = running()
    if live is None:
        return fail(f"llmproxy is not running{f' ({note})' if note else ''}")
    os.kill(live["pid"], signal.SIGHUP)
    out.print(f"sent SIGHUP to pid {live['pid']}; problems (if any) appear in the daemon's log")
    return 0
