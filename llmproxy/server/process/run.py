"""Running the daemon in the foreground: bind, write the pid file, serve until a signal, shut down
gracefully (in-flight responses get ``grace_seconds``), remove the pid file. SIGHUP reloads."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from llmproxy import paths
from llmproxy.pidfile import read_pid_file, write_pid_file
from llmproxy.server.process.app import create_app, reload
from llmproxy.server.process.connection import Runner
from llmproxy.server.state import State, this_worker

#: generation-0 threshold while serving: parsing a 90 KB Claude Code body allocates thousands of containers,
#: and at CPython's default (700) the collector runs several times inside every parse; see docs/BENCHMARKS.md
GC_THRESHOLDS = (20_000, 20, 20)


#: seconds between checks whether a burst is over and memory can be returned
TRIM_EVERY = 5.0
#: pending connections the kernel queues for us: a burst of a thousand clients must not be refused
LISTEN_BACKLOG = 2048


def tune_gc() -> None:
    """Move everything built at start-up (config, compiled profiles, imported modules) out of the
    collector's sight, and collect young objects less often. Cycles are still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim, which hands freed heap pages back to the system; None elsewhere. Looked up in the
    process's own symbols (no library search, which would run ``ldconfig``)."""
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


async def return_memory(state: State, every: float = TRIM_EVERY) -> None:
    """After a burst, once nothing is in flight, give the freed memory back: a thousand Claude Code bodies
    parsed at once leave the heap large and fragmented, and RSS would stay at the peak."""
    trim = _malloc_trim()
    if trim is None:
        return
    seen = state.served
    while True:
        await asyncio.sleep(every)
        if state.in_flight == 0 and state.served != seen:
            seen = state.served
            gc.collect()
            trim(0)


def make_runner(app: web.Application, grace_seconds: float = 10.0) -> Runner:
    """The runner the daemon serves ``app`` with: its connections have a head deadline, a cap on heads in
    progress, and parser errors in the API's shape (``server/process/connection.py``)."""
    return Runner(app, handler_cancellation=True, shutdown_timeout=grace_seconds, access_log=None)


class StartupError(Exception):
    """One clear line for the user; no traceback."""


async def bind_error(exc: OSError, host: str, port: int) -> StartupError:
    """The one line a user reads when the address cannot be had."""
    if exc.errno == errno.EADDRINUSE:
        return StartupError(f"port {port} on {host} is already in use{await _who_holds(host, port)}; "
                            f"stop it, or choose another port with --port")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StartupError(f"not allowed to bind {host}:{port}: {exc.strerror}")
    return StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


async def serve(state: State, host: str, port: int, *, on_ready: Callable[[State], None] | None = None,
                listeners: list | None = None, sock: socket.socket | None = None) -> None:
    """Serve until SIGINT/SIGTERM. Alone, it binds ``host:port`` and owns the pid file; as one of several
    workers (``server/process/workers.py``) it serves on the supervisor's listening ``sock`` instead."""
    cfg = state.runtime.cfg
    if (worker := this_worker()) is not None:
        state.worker = worker[0]
    app = create_app(state, listeners)
    runner = make_runner(app, cfg.server.grace_seconds)
    await runner.setup()
    site = (web.SockSite(runner, sock) if sock is not None
            else web.TCPSite(runner, host, port, reuse_address=True, backlog=LISTEN_BACKLOG))
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise await bind_error(exc, host, port) from None
    tune_gc()
    pid_path = paths.pid_file()
    try:
        if sock is None:
            write_pid_file(pid_path, host, port)
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"cannot write pid file {pid_path}: {exc.strerror}") from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def _hup() -> None:
        loop.create_task(reload(state))  # reload logs what happened and keeps it for /health

    loop.add_signal_handler(signal.SIGHUP, _hup)
    trimmer = loop.create_task(return_memory(state), name="return memory")
    if on_ready:  # the banner renders in a worker thread: /health answers meanwhile
        loop.run_in_executor(None, on_ready, state)
    try:
        await stop.wait()
    finally:
        trimmer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        with contextlib.suppress(OSError):
            data = read_pid_file(pid_path)
            if data and data.get("pid") == os.getpid():
                pid_path.unlink()


async def _who_holds(host: str, port: int) -> str:
    """' by llmproxy (pid N, home H)' when another llmproxy answers there, else ''."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as s:
            async with s.get(f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/health") as r:
                info = await r.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return ""
    if not isinstance(info, dict) or info.get("status") != "ok":
        return ""
    if "pid" not in info:
        return " by an llmproxy that requires its API key to say more"
    return f" by llmproxy pid {info['pid']} (LLMPROXY_HOME {info.get('home', '?')})"
