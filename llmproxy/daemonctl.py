"""Controlling the daemon from outside: is it running, is it healthy, stop it. No printing and no aiohttp,
so the CLI and the demo share it and stay quick to start."""

from __future__ import annotations

import json
import os
import signal
import time

from llmproxy import paths


def get_health(host: str, port: int, timeout: float = 1.0) -> dict | None:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        return json.loads(resp.read()) if resp.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def post_json(host: str, port: int, path: str, data: dict, *, token: str | None = None,
              timeout: float = 30.0) -> tuple[int, object] | None:
    """POST ``data`` as JSON to the daemon; (status, decoded body or None), or None if it does not answer."""
    import http.client

    headers = {"content-type": "application/json"}
    if token:
        headers["x-api-key"] = token
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(data), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, None


def running() -> tuple[dict | None, str | None]:
    """(pid file data of a live llmproxy, or None; note about a stale pid file that was removed)."""
    from llmproxy.pidfile import is_llmproxy_process, pid_alive, read_pid_file

    pf = paths.pid_file()
    data = read_pid_file(pf)
    if data is None:
        if pf.exists():
            pf.unlink(missing_ok=True)
            return None, f"removed unreadable pid file {pf}"
        return None, None
    pid = data["pid"]
    if pid_alive(pid) and is_llmproxy_process(pid):
        return data, None
    pf.unlink(missing_ok=True)
    return None, f"removed stale pid file {pf} (pid {pid} is not a running llmproxy)"


def terminate(pid: int, grace: float) -> str:
    """SIGTERM, wait for the grace period (+5 s), then SIGKILL. Returns "stopped" or "killed"."""
    from llmproxy.pidfile import pid_alive

    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace + 5
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            paths.pid_file().unlink(missing_ok=True)
            return "stopped"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not pid_alive(pid):
            break
        time.sleep(0.02)
    paths.pid_file().unlink(missing_ok=True)
    return "killed"
