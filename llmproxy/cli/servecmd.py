"""serve: the proxy in the foreground, or forked into a daemon that answers /health before the command
returns; one clear line per failure."""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
import time
from pathlib import Path

from llmproxy import paths
from llmproxy.cli.console import CLIError, note, out
from llmproxy.cli.options import ServeOptions
from llmproxy.cli.reloadcmd import print_reload
from llmproxy.daemonctl import get_health, running


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ensure_home() -> None:
    home = paths.home()
    try:
        paths.log_dir().mkdir(parents=True, exist_ok=True)
        probe = home / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise CLIError(f"cannot write to {home} ({exc.strerror}); set LLMPROXY_HOME to a writable directory") from None


def serve(opts: ServeOptions) -> int:
    from llmproxy.cli.common import load_config
    from llmproxy.routing import KGError, compile_profiles

    _ensure_home()
    _workers(opts.workers)  # a bad value is said here, before a daemon forks
    cfg = load_config(opts.source)
    try:
        profiles = compile_profiles(cfg)
    except KGError as exc:
        raise CLIError(str(exc)) from None
    host = opts.host or cfg.server.host
    port = opts.port if opts.port is not None else cfg.server.port
    if not _is_loopback(host) and not cfg.api_keys and not opts.allow_remote:
        raise CLIError(f"refusing to bind {host} without proxy API keys (set auth.api_keys, or pass --allow-remote)")
    live, stale = running()
    if stale:
        note(stale)
    if live:
        raise CLIError(f"llmproxy is already running (pid {live['pid']} on {live['host']}:{live['port']})")
    if opts.daemon:
        return _spawn_daemon(cfg, profiles, host, port, opts)
    return _foreground(cfg, profiles, host, port, opts)


def _spawn_daemon(cfg, profiles, host: str, port: int, opts: ServeOptions) -> int:
    """Fork the already-configured process into the background (new session, output to daemon.log) and
    return once the child answers /health — no second interpreter start, no second import of aiohttp."""
    from llmproxy.cli.common import simulated_providers

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
            try:
                rc = _foreground(cfg, profiles, host, port, opts)
            except CLIError as exc:
                from llmproxy.cli.console import render_error

                render_error(exc)
                rc = exc.code
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            tail = _log_tail(logf, start_at)
            raise CLIError(tail or f"daemon exited with status {os.waitstatus_to_exitcode(status)}; see {logf}")
        health = get_health(host, port, timeout=0.5)
        if health and health.get("pid") == pid:
            out.print(f"llmproxy running (pid {pid}) on http://{host}:{port}  log: {logf}")
            if sims := simulated_providers(health):
                out.print(f"[yellow]simulated providers:[/] {', '.join(sims)}")
            # the launcher has nothing left to clean up: skip interpreter teardown, measured at ~0.2 s here
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        time.sleep(0.02)
    os.kill(pid, signal.SIGTERM)
    raise CLIError(f"daemon did not answer /health within 20 s; see {logf}")


def _log_tail(path: Path, start: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errs = [ln for ln in lines if "error" in ln.lower()]
    return (errs[-1] if errs else lines[-1] if lines else "").removeprefix("error: ").strip()


def _foreground(cfg, profiles, host: str, port: int, opts: ServeOptions) -> int:
    import asyncio
    import logging

    from llmproxy.cli.format import banner_lines, request_row
    from llmproxy.routing import Router
    from llmproxy.server.health import health_info
    from llmproxy.server.run import StartupError, serve
    from llmproxy.server.state import Options, Runtime, State

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workers = _workers(opts.workers)
    options = Options(config_path=opts.source.config, profile_dirs=opts.source.profile_dirs, simulate=opts.simulate,
                      verbose=opts.verbose)
    state = State(runtime=Runtime(router=Router(cfg, profiles), providers={}), options=options)

    def on_ready(st: State) -> None:
        for line in banner_lines(health_info(st), st.runtime.profiles, host, port, paths.request_log()):
            out.print(line, soft_wrap=True)

    def listener(rec: dict) -> None:
        if rec.get("event") == "reload":  # the daemon's console (daemon.log) says how a reload went
            print_reload(rec.get("problems") or [])
            return
        if opts.verbose:
            out.print(request_row(rec), soft_wrap=True)
            if opts.verbose >= 2:
                from llmproxy.cli.common import print_bodies

                print_bodies(out, rec)

    try:
        if workers > 1:
            from llmproxy.server.workers import serve_workers

            serve_workers(state, host, port, workers, on_ready=on_ready, listeners=[listener])
        else:
            asyncio.run(serve(state, host, port, on_ready=on_ready, listeners=[listener]))
    except StartupError as exc:
        raise CLIError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    out.print("llmproxy stopped")
    return 0


def _workers(value: str) -> int:
    from llmproxy.server.workers import worker_count

    try:
        return worker_count(value)
    except ValueError:
        raise CLIError(f"--workers: expected a number of at least 1 or 'auto', got {value!r}", code=2) from None
