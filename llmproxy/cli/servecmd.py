"""serve: the proxy in the foreground, or forked into a daemon that answers /health before the command
returns; one clear line per failure."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from llmproxy import paths
from llmproxy.cli.console import CLIError, note, out
from llmproxy.cli.options import ServeOptions
from llmproxy.daemonctl import get_health, running
from llmproxy.demo.daemon import port_message
from llmproxy.obs.logfile import mark, read_since

PUMP_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); from llmproxy.obs.logfile import main; "
             "main(sys.argv[2:])")


def _ensure_home() -> None:
    home = paths.home()
    try:
        paths.private_dir(paths.log_dir())
        probe = home / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise CLIError(f"cannot write to {home} ({exc.strerror}); set LLMPROXY_HOME to a writable directory") from None


def serve(opts: ServeOptions) -> int:
    from llmproxy.cli.common import load_config
    from llmproxy.routing import KGError, compile_profiles
    from llmproxy.server.process.runtime import open_without_keys

    paths.make_private()  # before anything is created: whatever the daemon writes is its owner's alone
    _ensure_home()
    _workers(opts.workers)  # a bad value is said here, before a daemon forks
    cfg = load_config(opts.paths)
    try:
        profiles = compile_profiles(cfg)
    except KGError as exc:
        raise CLIError(str(exc)) from None
    host = opts.host or cfg.server.host
    port = opts.port if opts.port is not None else cfg.server.port
    if open_without_keys(host, cfg, opts.allow_remote):
        raise CLIError(f"refusing to bind {host} without proxy API keys (set auth.api_keys, or pass --allow-remote)")
    live, stale = running()
    if stale:
        note(stale)
    if live:
        raise CLIError(f"llmproxy is already running (pid {live['pid']} on {live['host']}:{live['port']})")
    if (taken := port_message(host, port, "serve")) is not None:  # what holds it, said before anything forks
        raise CLIError(taken)
    if opts.daemon:
        return _spawn_daemon(cfg, profiles, host, port, opts)
    return _foreground(cfg, profiles, host, port, opts)


def _spawn_daemon(cfg, profiles, host: str, port: int, opts: ServeOptions) -> int:
    """Fork the already-configured process into the background (new session, output to daemon.log through
    the log pump) and return once the child answers /health (asked with the configured key) — no second
    import of aiohttp, no second reading of the config."""
    from llmproxy.cli.common import simulated_providers

    logf = paths.daemon_log()
    since = mark(logf)
    sys.stdout.flush()
    sys.stderr.flush()
    log_w, pump_pid = _start_log_pump(logf, cfg.log.rotate_bytes, cfg.log.rotate_keep)
    pid = os.fork()
    if pid == 0:  # the daemon
        _daemon(log_w, cfg, profiles, host, port, opts)
    os.close(log_w)  # the pump ends when the daemon (and its workers) have closed theirs
    key = cfg.api_keys[0] if cfg.api_keys else None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _wait(pump_pid, 5)  # everything the daemon said is in the log
            tail = _log_tail(logf, since)
            raise CLIError(tail or f"daemon exited with status {os.waitstatus_to_exitcode(status)}; see {logf}")
        health = get_health(host, port, timeout=0.5, key=key)
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


def _daemon(log_w: int, cfg, profiles, host: str, port: int, opts: ServeOptions) -> NoReturn:
    """The forked daemon: its own session, stdin from /dev/null, stdout and stderr into the log pump."""
    rc = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_w, 1)
        os.dup2(log_w, 2)
        os.close(log_w)
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


def _start_log_pump(logf: Path, rotate_bytes: int, keep: int) -> tuple[int, int]:
    """daemon.log rotated by size like the request log (``log.rotate_bytes`` × ``log.rotate_keep``): the
    daemon writes into a pipe, and a small process of its own copies the pipe into the rotating file — so a
    flood of lines (a traceback, aiohttp's complaints) cannot fill the disk, and nothing the daemon or its
    workers write, even while dying, is lost. The pump is a fresh interpreter that imports one module (~10 MB;
    a fork of this process kept ~23 MB of its heap). (The pipe's write end, the pump's pid.)"""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(r)
        return w, pid
    try:
        os.setsid()  # not in the launcher's terminal session: a Ctrl-C there must not end the log
        os.close(w)
        os.dup2(r, 0)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)  # nothing of the launcher's terminal (or of a caller waiting on its output)
        os.dup2(null, 2)
        for sig in (signal.SIGINT, signal.SIGHUP):  # stays ignored across exec
            signal.signal(sig, signal.SIG_IGN)
        # -P and an explicit path: this very llmproxy, never a package in the current directory
        os.execv(sys.executable, [sys.executable, "-P", "-c", PUMP_CODE, str(paths.REPO_ROOT),
                                  str(logf), str(rotate_bytes), str(keep)])
    finally:
        os._exit(1)  # only if exec failed


def _wait(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        time.sleep(0.01)


def _log_tail(path: Path, since: tuple[int, int]) -> str:
    lines = [ln for ln in read_since(path, since).decode("utf-8", "replace").splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower()]
    return (errs[-1] if errs else lines[-1] if lines else "").removeprefix("error: ").strip()


def _foreground(cfg, profiles, host: str, port: int, opts: ServeOptions) -> int:
    import asyncio
    import logging

    from llmproxy.cli.format import banner_lines, request_row
    from llmproxy.routing import Router
    from llmproxy.server.process.health import health_info
    from llmproxy.server.process.run import StartupError, serve
    from llmproxy.server.state import Options, Runtime, State

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workers = _workers(opts.workers)
    options = Options(config_path=opts.paths.config, profile_dirs=opts.paths.profile_dirs, simulate=opts.simulate,
                      verbose=opts.verbose, host=host, allow_remote=opts.allow_remote)
    state = State(runtime=Runtime(router=Router(cfg, profiles), providers={}), options=options)

    def on_ready(st: State) -> None:
        for line in banner_lines(health_info(st), st.runtime.profiles, host, port, paths.request_log()):
            out.print(line, soft_wrap=True)

    def listener(rec: dict) -> None:
        if opts.verbose:
            out.print(request_row(rec), soft_wrap=True)
            if opts.verbose >= 2:
                from llmproxy.cli.common import print_bodies

                print_bodies(out, rec)

    try:
        if workers > 1:
            from llmproxy.server.process.workers import serve_workers

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
    from llmproxy.server.process.workers import worker_count

    try:
        return worker_count(value)
    except ValueError:
        raise CLIError(f"--workers: expected a number of at least 1 or 'auto', got {value!r}", code=2) from None
