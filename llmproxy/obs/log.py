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
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from llmproxy.obs.redact import redact

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

Listener = Callable[[dict], None]
log = logging.getLogger("llmproxy")

#: nesting kept in a line whose record could not be serialised as it is (the record is level 1, a request
#: body level 2; validated bodies nest at most 64 levels). Far below orjson's 254 and the recursion limit.
LOG_MAX_DEPTH = 128
#: containers and values copied from one such record at most; the rest is replaced by a marker
LOG_MAX_NODES = 200_000
#: records waiting for the writer at most; beyond this (the writer stalled on a slow disk) they are dropped
MAX_QUEUE = 100_000
DEPTH_MARKER = f"[llmproxy: dropped here, nested deeper than {LOG_MAX_DEPTH} levels]"
NODES_MARKER = f"[llmproxy: dropped here, record has more than {LOG_MAX_NODES} values]"
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # what orjson serialises


class RotatingWriter:
    """Appends lines to a file and rotates it by size. Not thread-safe: one writer thread at a time.

    After any I/O error the file is closed; the next ``write_lines`` reopens it (and starts a fresh line
    if the failed write left half of one)."""

    def __init__(self, path: Path, max_bytes: int, keep: int):
        self.path, self.max_bytes, self.keep = path, max_bytes, max(1, keep)
        self._fh = None
        self._torn = False
        with contextlib.suppress(OSError):  # an unwritable place fails on the first write, not here
            self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")
        if self._torn:
            self._torn = False
            if self._fh.tell() > 0:
                with self.path.open("rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        self._fh.write(b"\n")

    def _discard(self) -> None:
        """Close after an error; data still buffered is thrown away rather than written later."""
        fh, self._fh = self._fh, None
        self._torn = True
        if fh is not None:
            with contextlib.suppress(Exception):
                fh.close()

    def write_lines(self, lines: list[bytes]) -> None:
        """Append whole lines; a file never grows past ``max_bytes`` except by a single oversized line.
        Several processes (``serve --workers N``) may share the file: each batch is written, and the file
        rotated, under an exclusive lock, after reopening the file if another process rotated it."""
        with self._locked():
            self._write_lines(lines)

    @contextlib.contextmanager
    def _locked(self):
        if fcntl is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _current(self) -> bool:
        """Whether the open file is still the one at ``path`` (another process may have rotated it)."""
        try:
            return os.fstat(self._fh.fileno()).st_ino == os.stat(self.path).st_ino
        except (OSError, ValueError):
            return False

    def _write_lines(self, lines: list[bytes]) -> None:
        try:
            if self._fh is None or self._fh.closed or not self._current():
                self.close()
                self._open()
            pending: list[bytes] = []
            size = os.fstat(self._fh.fileno()).st_size
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
        except BaseException:
            self._discard()
            raise

    def rotate(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        for i in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        last = self.path.with_name(f"{self.path.name}.{self.keep + 1}")
        with contextlib.suppress(FileNotFoundError):
            last.unlink()
        self._open()

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


# -------------------------------------------------------------------------------- making records safe

def _safe_str(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - str() of a hostile object may raise anything
        return f"<unprintable {type(value).__name__}>"
    if not isinstance(text, str):
        return f"<unprintable {type(value).__name__}>"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: orjson refuses them
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _safe_scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return value
        try:
            return str(value)
        except ValueError:  # more digits than int->str allows
            return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return _safe_str(value)


def make_safe(rec: Any, notes: list[str]) -> Any:
    """A copy of ``rec`` that orjson can always serialise and that every recursive walk (redaction) can
    walk: at most LOG_MAX_DEPTH levels and LOG_MAX_NODES values, string keys, JSON values only. Iterative.
    What was changed is appended to ``notes``."""
    seen = {"deep": 0, "nodes": 0, "strs": 0, "keys": 0}
    count = 0

    def convert(value: Any, depth: int) -> tuple[Any, bool]:
        """(the scalar or an empty container, whether it is a container to fill)."""
        nonlocal count
        count += 1
        if count > LOG_MAX_NODES:
            seen["nodes"] += 1
            return NODES_MARKER, False
        if isinstance(value, dict | list | tuple | set | frozenset):
            if depth > LOG_MAX_DEPTH:
                seen["deep"] += 1
                return DEPTH_MARKER, False
            return ({} if isinstance(value, dict) else []), True
        if isinstance(value, str):
            out = _safe_str(value)
            seen["strs"] += out is not value
            return out, False
        out = _safe_scalar(value)
        seen["strs"] += type(out) is not type(value)
        return out, False

    root, fill = convert(rec, 1)
    stack: list[tuple[Any, Any, int]] = [(rec, root, 1)] if fill else []
    while stack:
        src, dst, depth = stack.pop()
        if isinstance(src, dict):
            for k, v in list(src.items()):
                key = k if isinstance(k, str) else _safe_str(k)
                if key is not k:
                    seen["keys"] += 1
                key = _safe_str(key)
                val, fill = convert(v, depth + 1)
                dst[key] = val
                if fill:
                    stack.append((v, val, depth + 1))
        else:
            for v in list(src):
                val, fill = convert(v, depth + 1)
                dst.append(val)
                if fill:
                    stack.append((v, val, depth + 1))
    if seen["deep"]:
        notes.append(f"{seen['deep']} sub-tree(s) nested deeper than {LOG_MAX_DEPTH} levels replaced by a marker")
    if seen["nodes"]:
        notes.append(f"record cut after {LOG_MAX_NODES} values")
    if seen["strs"]:
        notes.append(f"{seen['strs']} value(s) JSON cannot hold written as strings")
    if seen["keys"]:
        notes.append(f"{seen['keys']} non-string key(s) written as strings")
    return root


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_safe_str(exc)[:300]}"


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
                self._failed(f"request log writer: {_describe(exc)}", len(batch))

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
                    note = f"{_safe_str(safe['log_note'])}; {note}"
                safe["log_note"] = note
                line = orjson.dumps(safe, default=str)
        except Exception as exc:  # noqa: BLE001 - keep the essentials whatever happened
            notes.append(f"only the essentials kept ({_describe(exc)})")
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
            safe = redact(self._truncate(rec), extra_secrets=self.secrets)
            return safe, orjson.dumps(safe, default=str)
        except Exception as exc:  # noqa: BLE001 - too deep, unknown types, bad keys, cycles …
            notes.append(f"record could not be written as it was ({_describe(exc)})")
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
                    out[key] = _safe_scalar(val) if isinstance(val, int | float | bool) else _safe_str(val)[:1000]
        return out

    def _write(self, batch: list[dict]) -> None:
        with self._lock:
            safe: list[dict] = []
            lines: list[bytes] = []
            for rec in batch:
                try:
                    s, line = self._line(rec)
                except Exception as exc:  # noqa: BLE001 - _line does not raise; belt and braces
                    self._failed(f"request log: a record could not be serialised: {_describe(exc)}", 1)
                    continue
                safe.append(s)
                lines.append(line)
            if self.enabled and lines:
                try:
                    self._writer.write_lines(lines)
                except Exception as exc:  # noqa: BLE001 - disk full, permissions, file removed …
                    self._failed(f"request log {self.path}: {_describe(exc)}", len(lines))
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
                self._failed(f"request log writer: {_describe(exc)}", len(batch))
        with self._lock, contextlib.suppress(Exception):
            self._writer.close()
