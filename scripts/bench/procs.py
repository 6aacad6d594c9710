"""Processes of a benchmark run, measured from the outside: free ports, a process's CPU seconds and RSS read
from /proc (optionally over its children: a multi-worker proxy), ``Proc`` (one started party) and
``Cleanup``, which owns every process, temp dir and worktree a run creates and undoes them in reverse.
Also the small HTTP helpers that wait for a party to answer and read its JSON, and the run's log line.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_tree(pid: int) -> list[int]:
    """pid and its descendants (a --workers supervisor's children count as the proxy)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo and len(out) < 256:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int, tree: bool = False) -> float:
    total = 0
    for p in proc_tree(pid) if tree else [pid]:
        try:
            with open(f"/proc/{p}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime + stime, clock ticks, all threads of the process
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def rss_mb(pid: int, tree: bool = False, field_name: str = "VmRSS") -> float:
    total = 0
    for p in proc_tree(pid) if tree else [pid]:
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith(field_name + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    port: int
    home: Path | None = None
    logfile: Path | None = None
    tree: bool = False  # sum CPU/RSS over its children (multi-worker proxy)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid, self.tree)

    def rss(self) -> float:
        return rss_mb(self.pid, self.tree)

    def tail(self, n: int = 15) -> str:
        if self.logfile and self.logfile.exists():
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        return ""


class Cleanup:
    """Owns every process, temp dir and worktree the run creates; undone in reverse, always."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []
        self.dirs: list[Path] = []
        self.worktrees: list[Path] = []

    def stop(self, p: Proc, grace: float = 5.0) -> None:
        if p.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)  # its own session: the group is this proxy and its workers
            try:
                p.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.popen.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def close(self) -> None:
        for p in reversed(list(self.procs)):
            self.stop(p)
        for w in self.worktrees:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(w)],
                           capture_output=True, timeout=60)
        if self.worktrees:
            subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True, timeout=60)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


def wait_http(port: int, path: str, timeout: float, proc: subprocess.Popen | None = None) -> float:
    """Poll GET path until it answers 200; returns the time it took. Bounded by timeout."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {path} answered")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            ok = c.getresponse().status == 200
            c.close()
            if ok:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"nothing answered GET {path} on port {port} within {timeout:.0f} s")


def get_json(port: int, path: str) -> dict:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    body = json.loads(c.getresponse().read())
    c.close()
    return body


def post_json(port: int, path: str) -> None:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", path, body=b"{}")
    c.getresponse().read()
    c.close()
