"""serve / stop / status / reload: the daemon's life cycle, with one clear line per failure."""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
import time
from pathlib import Path

from llmproxy import paths
from llmproxy.cli.console import CLIError, err, note, out
from llmproxy.cli.options import ServeOptions
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


def _not_running(note_: str | None) -> str:
    return f"llmproxy is not running{f' ({note_})' if note_ else ''}"


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
            _print_reload(rec.get("problems") or [])
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


RELOADED = "configuration reloaded"
RELOAD_FAILED = "reload failed:"


def _print_reload(problems: list[str]) -> None:
    if not problems:
        out.print(f"[green]{RELOADED}[/]")
        return
    for p in problems:
        err.print(f"[red]{RELOAD_FAILED}[/] {p}", soft_wrap=True, markup=True, highlight=False)
    err.print("[yellow]previous configuration stays in force[/]")


def stop() -> int:
    """Nothing to stop is not a failure: exit 0 with a message (the same rule as `demo stop`)."""
    from llmproxy.daemonctl import terminate

    live, stale = running()
    if live is None:
        out.print(f"{_not_running(stale)}; nothing to stop")
        return 0
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
    """Exit 0 when a healthy daemon runs, 1 otherwise (scripts ask `llmproxy status` whether to start one)."""
    from llmproxy.cli.format import fmt_uptime, providers_table

    live, stale = running()
    if live is None:
        if json_out:
            out.print_json(data={"running": False, "note": stale})
        else:
            out.print(_not_running(stale))
        return 1
    health = get_health(live["host"], live["port"])
    if json_out:
        out.print_json(data={"running": True, **live, "health": health})
        return 0 if health else 1
    out.print(f"llmproxy is [green]running[/]: pid {live['pid']}, http://{live['host']}:{live['port']}")
    if health is None:
        raise CLIError("the daemon does not answer /health")
    out.print(f"uptime {fmt_uptime(health['uptime_s'])}, requests served {health['requests_served']}, "
              f"in flight {health['in_flight']}")
    out.print(f"profiles: {', '.join(health['profiles'])} (default {health['default_profile']})")
    for line in stale_lines(health):
        out.print(line, soft_wrap=True)
    out.print(providers_table(health))
    return 0


def stale_lines(health: dict) -> list[str]:
    """'config stale since …' and why, when the last reload failed (the daemon keeps the previous config)."""
    since = health.get("config_stale_since")
    if not since:
        return []
    lines = [f"[bold yellow]config stale since {since}[/]: the last reload failed; the previous configuration "
             f"stays in force (fix it, then `llmproxy reload`)"]
    from llmproxy.cli.console import escape

    return lines + [f"  [red]{escape(p)}[/]" for p in health.get("reload_problems") or []]


# ------------------------------------------------------------------------------------------------ reload

def reload() -> int:
    """POST /api/reload (synchronous: the answer says whether it worked); a daemon without that route gets
    SIGHUP, and the outcome is read from what it writes to daemon.log."""
    from llmproxy.cli.common import proxy_token
    from llmproxy.daemonctl import post_json

    live, stale = running()
    if live is None:
        raise CLIError(_not_running(stale))
    token = proxy_token(_lenient_cfg())
    answer = post_json(live["host"], live["port"], "/api/reload", {}, token=token, timeout=60)
    if answer is None:
        raise CLIError(f"the daemon (pid {live['pid']}) does not answer on {live['host']}:{live['port']}")
    status_, body = answer
    if status_ == 404:
        return _reload_by_signal(live["pid"])
    if status_ == 401:
        raise CLIError("the daemon refused the reload: proxy API key missing or wrong "
                       "(auth.api_keys / api_keys_env in the config the daemon runs with)")
    problems = [str(p) for p in (body.get("problems") or [])] if isinstance(body, dict) else []
    if status_ == 200 and isinstance(body, dict) and body.get("ok"):
        out.print(f"{RELOADED} (pid {live['pid']})")
        return 0
    raise _reload_error(problems or [f"HTTP {status_}: {body!r}"[:300]])


def _reload_error(problems: list[str]) -> CLIError:
    return CLIError(f"reload failed with {len(problems)} problem(s); the previous configuration stays in force",
                    details=[f"reload: {p}" for p in problems])


def _reload_by_signal(pid: int, timeout: float = 5.0) -> int:
    logf = paths.daemon_log()
    start = logf.stat().st_size if logf.exists() else 0
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with logf.open("rb") as fh:
                fh.seek(start)
                lines = fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            lines = []
        failed = [ln.split(RELOAD_FAILED, 1)[1].strip() for ln in lines if RELOAD_FAILED in ln]
        if failed:
            raise _reload_error(failed)
        if any(RELOADED in ln for ln in lines):
            out.print(f"{RELOADED} (pid {pid})")
            return 0
        time.sleep(0.05)
    out.print(f"sent SIGHUP to pid {pid}; no answer in {logf} yet (a daemon started in the foreground "
              f"prints the outcome on its console)")
    return 0


def _lenient_cfg():
    from llmproxy import config as config_mod

    return config_mod.load(strict=False)[0]
