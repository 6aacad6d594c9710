"""The request log: one JSON line per request in $LLMPROXY_HOME/logs/requests.jsonl.

The request handler only appends a dict to an in-memory queue; a background task redacts, serialises
and writes batches in a worker thread, rotating by size (requests.jsonl.1 … .N). Listeners (the
``--verbose`` console) get each record after it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import orjson

from llmproxy.obs.redact import redact

Listener = Callable[[dict], None]


class RotatingWriter:
    """Appends lines to a file and rotates it by size. Not thread-safe: one writer thread at a time."""

    def __init__(self, path: Path, max_bytes: int, keep: int):
        self.path, self.max_bytes, self.keep = path, max_bytes, max(1, keep)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab")

    def write_lines(self, lines: list[bytes]) -> None:
        """Append whole lines; a file never grows past ``max_bytes`` except by a single oversized line."""
        pending: list[bytes] = []
        size = self._fh.tell()
        for line in lines:
            if self.max_bytes and size + len(line) > self.max_bytes and (size > 0):
                if pending:
                    self._fh.write(b"".join(pending))
                    pending = []
                self.rotate()
                size = 0
            pending.append(line)
            size += len(line)
        if pending:
            self._fh.write(b"".join(pending))
        self._fh.flush()

    def rotate(self) -> None:
        self._fh.close()
        for i in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        last = self.path.with_name(f"{self.path.name}.{self.keep + 1}")
        with contextlib.suppress(FileNotFoundError):
            last.unlink()
        self._fh = self.path.open("ab")

    def close(self) -> None:
        self._fh.close()


class RequestLog:
    def __init__(self, path: Path, max_bytes: int = 50 << 20, keep: int = 5,
                 secrets: tuple[str, ...] = (), body_max_bytes: int = 64 * 1024, enabled: bool = True):
        self.path = path
        self.body_max_bytes = body_max_bytes
        self.enabled = enabled
        self._writer = RotatingWriter(path, max_bytes, keep)
        self._queue: list[dict] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listeners: list[Listener] = []
        self.secrets = secrets

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def record(self, rec: dict) -> None:
        """Hot path: O(1), no I/O."""
        self._queue.append(rec)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="request-log")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.05)  # let a burst gather into one write
            batch, self._queue = self._queue, []
            if batch:
                await loop.run_in_executor(None, self._write, batch)

    def _truncate(self, rec: dict) -> dict:
        for key in ("request_body", "response_body"):
            if key in rec:
                raw = orjson.dumps(rec[key], default=str)
                if len(raw) > self.body_max_bytes:
                    rec = {**rec, key: {"_truncated": True, "bytes": len(raw),
                                        "head": raw[:self.body_max_bytes].decode("utf-8", "ignore")}}
        return rec

    def _write(self, batch: list[dict]) -> None:
        safe = [redact(self._truncate(r), extra_secrets=self.secrets) for r in batch]
        if self.enabled:
            self._writer.write_lines([orjson.dumps(r, default=str) + b"\n" for r in safe])
        for rec in safe:
            for fn in self._listeners:
                try:
                    fn(rec)
                except Exception:  # noqa: BLE001 - a broken listener must not stop the log
                    pass

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue:
            batch, self._queue = self._queue, []
            await asyncio.get_running_loop().run_in_executor(None, self._write, batch)
        self._writer.close()
