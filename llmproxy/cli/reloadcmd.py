"""reload: the running daemon re-reads its configuration (POST /api/reload, or SIGHUP for a daemon without
that route), and the lines a daemon prints about how a reload went, which the SIGHUP path reads back."""

from __future__ import annotations

import os
import signal
import time

from llmproxy import paths
from llmproxy.cli.console import CLIError, err, out
from llmproxy.cli.lifecycle import not_running
from llmproxy.daemonctl import running
from llmproxy.obs.logfile import mark, read_since

RELOADED = "configuration reloaded"
RELOAD_FAILED = "reload failed:"


def print_reload(problems: list[str]) -> None:
    if not problems:
        out.print(f"[green]{RELOADED}[/]")
        return
    for p in problems:
        err.print(f"[red]{RELOAD_FAILED}[/] {p}", soft_wrap=True, markup=True, highlight=False)
    err.print("[yellow]previous configuration stays in force[/]")


def reload() -> int:
    """POST /api/reload (synchronous: the answer says whether it worked); a daemon without that route gets
    SIGHUP, and the outcome is read from what it writes to daemon.log."""
    from llmproxy.daemonctl import post_json

    live, stale = running()
    if live is None:
        raise CLIError(not_running(stale))
    answer = post_json(live["host"], live["port"], "/api/reload", {}, timeout=60)
    if answer is None:
        raise CLIError(f"the daemon (pid {live['pid']}) does not answer on {live['host']}:{live['port']}")
    status_, body = answer
    if status_ == 404:
        return _reload_by_signal(live["pid"])
    if status_ == 401:
        raise CLIError("the daemon refused the reload: proxy API key missing or wrong (auth.api_keys / "
                       "api_keys_env in the config the daemon runs with); to reload after changing the keys, "
                       f"`kill -HUP {live['pid']}` (the outcome is in daemon.log)")
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
    since = mark(logf)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = read_since(logf, since).decode("utf-8", "replace").splitlines()
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
