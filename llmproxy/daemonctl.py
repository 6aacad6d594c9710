"""Controlling the daemon from outside: is it running, is it healthy, stop it. No printing and no aiohttp,
so the CLI and the demo share it and stay quick to start. With proxy API keys set, it presents the configured
key to the daemon (the header is added here, once, for every command)."""

from __future__ import annotations

import json
import os
import signal
import time

from llmproxy import paths
from llmproxy.pidfile import is_llmproxy_process, pid_alive, read_pid_file


class _Configured:
    """``key=CONFIGURED``: present the key of the configuration this process reads."""


CONFIGURED = _Configured()


def configured_key() -> str | None:
    """The proxy API key the CLI presents to its own daemon: the first of ``auth.api_keys`` (and the keys of
    the variable ``auth.api_keys_env`` names) in the configuration it reads, the daemon's unless that was
    started with ``--config``; None when the proxy needs no key. Never printed."""
    from llmproxy import config as config_mod  # here, not at the top: status/stop/reload stay quick to start

    try:
        cfg = config_mod.load(strict=False)[0]
    except Exception:  # noqa: BLE001 - a broken config: ask without a key (the daemon says the rest)
        return None
    return cfg.api_keys[0] if cfg.api_keys else None


def _key_header(key: str | _Configured | None) -> dict[str, str]:
    key = configured_key() if isinstance(key, _Configured) else key
    return {"x-api-key": key} if key else {}


def get_health(host: str, port: int, timeout: float = 1.0, *,
               key: str | _Configured | None = CONFIGURED) -> dict | None:
    """The daemon's ``/health``: the whole picture with its key (by default the configured one), only
    ``{"status": "ok"}`` without. ``key=None`` for a port that may not be ours (the key is not sent there)."""
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/health", headers=_key_header(key))
        resp = conn.getresponse()
        return json.loads(resp.read()) if resp.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def post_json(host: str, port: int, path: str, data: dict, *, key: str | _Configured | None = CONFIGURED,
              timeout: float = 30.0) -> tuple[int, object] | None:
    """POST ``data`` as JSON to the daemon with its key (by default the configured one); (status, decoded
    body or None), or None if it does not answer."""
    import http.client

    headers = {"content-type": "application/json", **_key_header(key)}
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
