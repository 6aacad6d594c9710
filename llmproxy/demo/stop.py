"""A recorded demo, checked against what is running: ``status`` reports its sessions and their last routes,
``stop`` removes what the demo recorded it created, and nothing else."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from libtmux.exc import LibTmuxException

from llmproxy import config, paths
from llmproxy.daemonctl import running, terminate
from llmproxy.demo import setup as S
from llmproxy.demo.state import DemoState
from llmproxy.demo.tmux import profile_pane, server, socket_path
from llmproxy.obs.reader import Filter, read
from llmproxy.pidfile import pid_alive


def status() -> dict:
    state = DemoState.load()
    out: dict = {"running": False, "sessions": {}, "routes": {}}
    if state is None:
        return out
    srv = server(state.socket)
    alive = srv.is_alive()
    for profile in S.PROFILES:
        name = S.session_name(profile)
        info = {"exists": False, "claude": False}
        if alive and srv.has_session(name):
            pane = profile_pane(srv, profile)
            info = {"exists": True, "claude": pane.pane_current_command in ("claude", "node"),
                    "command": pane.pane_current_command}
        out["sessions"][name] = info
        # this demo's requests: the profile's, since the demo started (an older demo's are not its)
        recent = read(paths.request_log(), Filter(profile=profile, since=state.started or None), last=3)
        out["routes"][profile] = [route(r) for r, _ in recent]
    out["running"] = any(s["exists"] for s in out["sessions"].values())
    out["grid"] = alive and srv.has_session(S.GRID)
    out["base_url"] = state.base_url
    return out


def route(rec: dict) -> dict:
    """One logged request as `demo status` lists it (``scenario`` None: refused before routing)."""
    d = rec.get("decision") or {}
    return {"time": rec.get("time"), "scenario": d.get("scenario"), "concept": d.get("concept"),
            "target": rec.get("target") or d.get("target"), "status": rec.get("status"),
            "error": rec.get("error") or rec.get("stream_error")}


def _descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (Linux /proc); Claude Code starts helpers of its own."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def stop() -> list[str]:
    """Remove what the demo recorded it created, and nothing else. Returns what was done, one line each."""
    state = DemoState.load()
    if state is None:
        return ["no demo is recorded; nothing to stop"]
    done = []
    srv = server(state.socket)
    roots = [*state.pane_pids.values(), *state.grid_pids]
    pids = [p for pid in roots for p in (pid, *_descendants(pid))]
    for name in [S.GRID, *[s for s in state.sessions if s != S.GRID]]:
        try:  # the server exits by itself once its last session is gone
            if srv.is_alive() and srv.has_session(name):
                srv.kill_session(name)
                done.append(f"killed tmux session {name}")
        except LibTmuxException:
            pass
    if state.started_server:
        with contextlib.suppress(LibTmuxException):
            if srv.is_alive() and not srv.sessions:
                srv.kill()
                done.append("stopped the tmux server the demo started")
        sock = socket_path(state.socket)
        with contextlib.suppress(OSError, LibTmuxException):
            for _ in range(20):  # the server may still be exiting
                if not srv.is_alive():
                    break
                time.sleep(0.05)
            if sock.exists() and not srv.is_alive():
                sock.unlink()  # tmux leaves its socket file behind when killed
                done.append(f"removed the tmux socket {sock}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for p in pids:
        if pid_alive(p):
            try:
                os.kill(p, signal.SIGKILL)
                done.append(f"killed leftover process {p}")
            except ProcessLookupError:
                pass
    if state.started_daemon:
        live, _ = running()
        # the daemon the demo started, not one started since by someone else (pid recorded since this version)
        if live is not None and state.daemon_pid in (None, live["pid"]):
            terminate(live["pid"], config.load(strict=False)[0].server.grace_seconds)
            done.append(f"stopped the llmproxy daemon the demo started (pid {live['pid']})")
    DemoState.path().unlink(missing_ok=True)
    return done
