"""``serve --workers N``: one supervisor and N worker processes sharing one listening socket.

The supervisor binds the address, writes the pid file (its own pid, which ``stop``/``status``/``reload`` use),
forks the workers — each a whole daemon (``server/run.serve``) on the inherited socket, so the kernel spreads
connections over them — and then only watches: a worker that dies is started again (with a pause when
they keep dying), SIGHUP is passed to every worker (each reloads), SIGTERM/SIGINT stop them all gracefully
within ``grace_seconds`` and then remove the pid file.

What the workers share and how: the request log is one file that every worker appends to under a file
lock (``obs/log.py``); Prometheus metrics are summed across workers through prometheus-client's
multiprocess mode (a directory under ``$LLMPROXY_HOME/run``); dashboard events reach every worker's feed
(``obs/hub.py``); only worker 1 runs batch work. Circuit breakers are per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable

from llmproxy import paths
from llmproxy.pidfile import read_pid_file, write_pid_file
from llmproxy.server.process.run import LISTEN_BACKLOG, StartupError, bind_error, serve
from llmproxy.server.state import WORKER_ENV, State

log = logging.getLogger("llmproxy")
RESTART_PAUSE = 1.0                  # seconds between restarts of a worker that keeps dying


def worker_count(value: str | int) -> int:
    """``--workers``: a number, or ``auto`` for one per core."""
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    n = int(value)
    if n < 1:
        raise ValueError("--workers must be at least 1 (or auto)")
    return n


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG, reuse_port=False)
    except OSError as exc:
        raise asyncio.run(bind_error(exc, host, port)) from None
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, state: State, host: str, port: int, workers: int,
                 on_ready: Callable[[State], None] | None, listeners: list | None):
        self.state, self.host, self.port, self.n = state, host, port, workers
        self.on_ready, self.listeners = on_ready, listeners
        self.children: dict[int, int] = {}       # pid -> worker index
        self.stopping = False
        self.metrics_dir = paths.home() / "run" / f"metrics-{os.getpid()}"

    def run(self) -> None:
        sock = bind(self.host, self.port)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)  # before any worker imports the client
        pid_path = paths.pid_file()
        try:
            write_pid_file(pid_path, self.host, self.port, workers=self.n)
        except OSError as exc:
            raise StartupError(f"cannot write pid file {pid_path}: {exc.strerror}") from None
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._forward_hup)
        try:
            for i in range(1, self.n + 1):
                self._spawn(i, sock)
            self._watch(sock)
        finally:
            self._stop_all()
            sock.close()
            with contextlib.suppress(OSError):
                data = read_pid_file(pid_path)
                if data and data.get("pid") == os.getpid():
                    pid_path.unlink()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _spawn(self, i: int, sock: socket.socket) -> None:
        pid = os.fork()
        if pid:
            self.children[pid] = i
            return
        code = 0  # the worker: a whole daemon on the shared socket
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            os.environ[WORKER_ENV] = f"{i}/{self.n}"
            asyncio.run(serve(self.state, self.host, self.port, sock=sock,
                              on_ready=self.on_ready if i == 1 else None, listeners=self.listeners))
        except KeyboardInterrupt:
            pass
        except BaseException:  # noqa: BLE001 - a worker reports and exits; the supervisor restarts it
            log.exception("worker %d failed", i)
            code = 1
        finally:
            os._exit(code)

    def _watch(self, sock: socket.socket) -> None:
        recent: list[float] = []
        while not self.stopping:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.2)
                continue
            i = self.children.pop(pid, None)
            if i is None or self.stopping:
                continue
            self._mark_dead(pid)
            log.error("worker %d (pid %d) exited with status %d; starting it again", i, pid,
                      os.waitstatus_to_exitcode(status))
            now = time.monotonic()
            recent = [t for t in recent if now - t < 10] + [now]
            if len(recent) > 3:
                time.sleep(RESTART_PAUSE)
            if not self.stopping:
                self._spawn(i, sock)

    def _mark_dead(self, pid: int) -> None:
        with contextlib.suppress(Exception):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, str(self.metrics_dir))

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def _forward_hup(self, *_: object) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    def _stop_all(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.state.runtime.cfg.server.grace_seconds + 2
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()


def serve_workers(state: State, host: str, port: int, workers: int, *,
                  on_ready: Callable[[State], None] | None = None, listeners: list | None = None) -> None:
    Supervisor(state, host, port, workers, on_ready, listeners).run()
