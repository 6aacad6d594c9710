"""The pid file: JSON {pid, host, port, started[, workers]}. Light on purpose (no aiohttp): `stop` and `status` use it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from llmproxy import paths


def write_pid_file(path: Path, host: str, port: int, **extra: object) -> None:
    """The daemon's pid (with ``--workers``, the supervisor's), address and start time, plus ``extra``."""
    paths.private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    data = json.dumps({"pid": os.getpid(), "host": host, "port": port, "started": time.time(), **extra}).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # 0600 whatever the umask
    try:
        os.fchmod(fd, 0o600)  # a leftover .tmp from an older version may be 0644
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_pid_file(path: Path | None = None) -> dict | None:
    path = path or paths.pid_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still "exists"; treat it as gone
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def is_llmproxy_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return pid_alive(pid)  # no /proc (macOS): trust the pid file
    return b"llmproxy" in cmdline
