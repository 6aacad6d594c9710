"""The request log: one JSON line per request in $LLMPROXY_HOME/logs/requests.jsonl.

The request handler only appends a dict to an in-memory queue; a background task redacts, serialises
and writes batches in a worker thread, rotating by size (requests.jsonl.1 … .N). Listeners (the
``--verbose`` console) get each record after it is written.

The log cannot die. A record that cannot be serialised as it is (nested deeper than orjson's limit,
values orjson does not know, non-string keys, integers beyond 64 bits, a cycle) is written anyway: the
offending parts are replaced by markers and the line carries a ``"log_note"`` saying what was done. A
field bigger than ``body_max_bytes`` is cut to a head (request and response bodies always were). An I/O
error (disk full, file removed, permissions) drops that batch, is counted and reported once to the
``llmproxy`` logger (daemon.log), and the next batch tries again, reopening the file. ``health()`` says
how the writer is doing, for ``/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from llmproxy.obs.logfile import RotatingWriter
from llmproxy.obs.safejson import (
    DEPTH_MARKER,
    LOG_MAX_DEPTH,
    NODES_MARKER,
    describe,
    make_safe,
    safe_scalar,
    safe_str,
)
from llmproxy.redact import needs_redaction, redact

__all__ = ["DEPTH_MARKER", "NODES_MARKER", "LOG_MAX_DEPTH", "RequestLog", "RotatingWriter", "make_safe"]

Listener = Callable[[dict], None]
log = logging.getLogger("llmproxy")

#: records waiting for the writer at most; beyond this (the writer stalled on a slow disk) they are dropped
MAX_QUEUE = 100_000


# ------------------------------------------------------------------------------------------ the log

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
        self._lock = threading.Lock()  # a cancelled batch may still be writing when close() flushes
        self.secrets = secrets
        self.written = 0
        self.dropped = 0
        self.truncated = 0
        self.last_error: str | None = None
        self._failing = False

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def record(self, rec: dict) -> None:
        """Hot path: O(1), no I/O."""
        if len(self._queue) >= MAX_QUEUE:
            self.dropped += 1
            return
        self._queue.append(rec)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="request-log")

    def health(self) -> dict:
        """How the writer is doing: ``writing`` is true while the writer task runs and its last write (if
        any) succeeded; ``written``/``dropped``/``truncated`` count lines since start; ``last_error`` is the
        latest write or serialisation problem (None if there never was one)."""
        alive = self._task is not None and not self._task.done()
        return {"writing": bool(self.enabled and alive and not self._failing), "enabled": self.enabled,
                "written": self.written, "dropped": self.dropped, "truncated": self.truncated,
                "queued": len(self._queue), "last_error": self.last_error}

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.05)  # let a burst gather into one write
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                await loop.run_in_executor(None, self._write, batch)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - _write handles everything; this is the last net
                self._failed(f"request log writer: {describe(exc)}", len(batch))

    # ------------------------------------------------------------------------------- worker thread

    def _failed(self, message: str, dropped: int) -> None:
        self.dropped += dropped
        first = not self._failing or message != self.last_error
        self._failing = True
        self.last_error = message
        if first:  # once per distinct problem, not once per batch
            log.error("%s (%d record(s) dropped so far; the log keeps trying)", message, self.dropped)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("request log %s is being written again (%d record(s) were dropped)", self.path,
                        self.dropped)

    def _cut(self, value: Any) -> tuple[Any, int]:
        """(value, its serialised size); a value bigger than ``body_max_bytes`` becomes a truncated head."""
        raw = orjson.dumps(value, default=str)
        if len(raw) > self.body_max_bytes:
            return {"_truncated": True, "bytes": len(raw),
                    "head": raw[:self.body_max_bytes].decode("utf-8", "ignore")}, len(raw)
        return value, len(raw)

    def _truncate(self, rec: dict) -> dict:
        for key in ("request_body", "response_body"):
            if key in rec:
                val, _ = self._cut(rec[key])
                if val is not rec[key]:
                    rec = {**rec, key: val}
        return rec

    def _line(self, rec: Any) -> tuple[dict, bytes]:
        """(the redacted record, its JSON line). Never raises, whatever the record holds."""
        notes: list[str] = []
        try:
            safe, line = self._serialisable(rec, notes)
            limit = max(4 * self.body_max_bytes, 256 * 1024)
            if len(line) > limit:
                safe = self._shrink(safe, limit, notes)
            if notes:
                note = "; ".join(notes)
                if safe.get("log_note"):
                    note = f"{safe_str(safe['log_note'])}; {note}"
                safe["log_note"] = note
                line = orjson.dumps(safe, default=str)
        except Exception as exc:  # noqa: BLE001 - keep the essentials whatever happened
            notes.append(f"only the essentials kept ({describe(exc)})")
            safe = self._essentials(rec)
            safe["log_note"] = "; ".join(notes)
            line = orjson.dumps(safe)
        if notes:
            self.truncated += 1
        return safe, line + b"\n"

    def _serialisable(self, rec: Any, notes: list[str]) -> tuple[dict, bytes]:
        """The record redacted, bodies cut to ``body_max_bytes``; made safe first if it has to be."""
        if not isinstance(rec, dict):
            notes.append(f"record was a {type(rec).__name__}, not an object")
            rec = {"record": rec}
        try:
            cut = self._truncate(rec)
            line = orjson.dumps(cut, default=str)
            if not needs_redaction(line, self.secrets):  # nothing to mask: no deep copy (most records)
                return dict(cut), line
            safe = redact(cut, extra_secrets=self.secrets)
            return safe, orjson.dumps(safe, default=str)
        except Exception as exc:  # noqa: BLE001 - too deep, unknown types, bad keys, cycles …
            notes.append(f"record could not be written as it was ({describe(exc)})")
        safe = redact(self._truncate(make_safe(rec, notes)), extra_secrets=self.secrets)
        return safe, orjson.dumps(safe)

    def _shrink(self, safe: dict, limit: int, notes: list[str]) -> dict:
        """A line over ``limit`` bytes: every big field cut to a head; if still too big, the essentials."""
        big = []
        for key, val in list(safe.items()):
            cut, size = self._cut(val)
            if cut is not val:
                safe[key] = cut
                big.append(f"{key} ({size} bytes)")
        notes.append(f"line over {limit} bytes; cut to a head: {', '.join(big) or 'nothing'}")
        if len(orjson.dumps(safe, default=str)) > limit:
            notes.append(f"line still over {limit} bytes: only the essentials kept")
            safe = self._essentials(safe)
        return safe

    @staticmethod
    def _essentials(rec: Any) -> dict:
        out: dict = {}
        if isinstance(rec, dict):
            for key in ("time", "request_id", "endpoint", "profile", "target", "status", "error", "duration_ms"):
                val = rec.get(key)
                if val is not None:
                    out[key] = safe_scalar(val) if isinstance(val, int | float | bool) else safe_str(val)[:1000]
        return out

    def _write(self, batch: list[dict]) -> None:
        with self._lock:
            safe: list[dict] = []
            lines: list[bytes] = []
            for rec in batch:
                try:
                    s, line = self._line(rec)
                except Exception as exc:  # noqa: BLE001 - _line does not raise; belt and braces
                    self._failed(f"request log: a record could not be serialised: {describe(exc)}", 1)
                    continue
                safe.append(s)
                lines.append(line)
            if self.enabled and lines:
                try:
                    self._writer.write_lines(lines)
                except Exception as exc:  # noqa: BLE001 - disk full, permissions, file removed …
                    self._failed(f"request log {self.path}: {describe(exc)}", len(lines))
                else:
                    self.written += len(lines)
                    self._recovered()
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
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._write, batch)
            except Exception as exc:  # noqa: BLE001 - closing must not fail
                self._failed(f"request log writer: {describe(exc)}", len(batch))
        with self._lock, contextlib.suppress(Exception):
            self._writer.close()
