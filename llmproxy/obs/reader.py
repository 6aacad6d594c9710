"""Reading the request log back: the rotated files in order, filters, reading backwards from the end, and
following a file that rotates. Pure apart from file reads; used by `llmproxy logs`, `stats`, `statusline` and
`demo status`. Standard library only at import (the status line starts in a few milliseconds)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """'10m', '1h', '2d', '30s' or an ISO timestamp -> a unix time (None for no limit)."""
    from datetime import UTC, datetime

    if not text:
        return None
    now = time.time() if now is None else now
    m = _DURATION.match(text.strip())
    if m:
        return now - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since: expected e.g. 10m, 2h, 1d or an ISO time, got {text!r}") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def record_time(rec: dict) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(rec["time"]).timestamp()
    except (KeyError, ValueError, TypeError):
        return 0.0


class Filter:
    """Which records to show. A plain class, not a dataclass: `llmproxy statusline` imports this module and
    must start in a few milliseconds."""

    def __init__(self, profile: str | None = None, scenario: str | None = None, provider: str | None = None,
                 status: str | None = None, since: float | None = None):
        self.profile, self.scenario, self.provider = profile, scenario, provider
        self.status = status  # "error", "ok", "429", "5xx"
        self.since = since

    def __call__(self, rec: dict) -> bool:
        if "request_id" not in rec:
            return False
        if self.profile and rec.get("profile") != self.profile:
            return False
        if self.scenario and (rec.get("decision") or {}).get("scenario") != self.scenario:
            return False
        if self.provider and not str(rec.get("target") or (rec.get("decision") or {}).get("target", "")
                                     ).startswith(self.provider + "/"):
            return False
        if self.status:
            st = int(rec.get("status") or 0)
            failed = st >= 400 or bool(rec.get("stream_error"))
            want = self.status.lower()
            if want == "error" and not failed or want == "ok" and failed:
                return False
            if want.endswith("xx") and str(st)[:1] != want[:1]:
                return False
            if want.isdigit() and st != int(want):
                return False
        return not (self.since and record_time(rec) < self.since)


def log_files(path: Path) -> list[Path]:
    """Oldest first: requests.jsonl.N … .1, requests.jsonl."""
    rotated = sorted((p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
                     key=lambda p: -int(p.suffix[1:]))
    return rotated + ([path] if path.exists() else [])


def _inode(p: Path) -> int | None:
    try:
        return p.stat().st_ino
    except OSError:
        return None


def parse_line(line: bytes) -> dict | None:
    import orjson  # here, not at the top: importing orjson costs ~15 ms, and `llmproxy statusline` must not pay it

    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def read(path: Path, flt: Filter, last: int | None = None) -> list[tuple[dict, bytes]]:
    """Matching (record, raw line) pairs, oldest first; with ``last``, only the newest ``last`` of them (read
    from the end of the newest file backwards, so the size of the log does not matter)."""
    if last:
        found, pos = tail(path, flt, last)
        pos.close()
        return found
    out: list[tuple[dict, bytes]] = []
    for f in log_files(path):
        try:
            data = f.read_bytes()
        except OSError:
            continue
        out += [(rec, line) for line in data.splitlines() if (rec := parse_line(line)) is not None and flt(rec)]
    return out


def reverse_lines(fh: io.BufferedReader, end: int, block: int = 1 << 16) -> Iterator[bytes]:
    """The lines of ``fh[:end]``, last first; ``end`` is a line boundary (0 or just after a newline)."""
    pos, rest = end, b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        fh.seek(pos)
        lines = (fh.read(step) + rest).split(b"\n")
        rest = lines.pop(0)  # may continue in the block before
        yield from reversed(lines)
    yield rest


def _newest_matching(fh: io.BufferedReader, end: int, flt: Filter, last: int, found: list) -> None:
    for line in reverse_lines(fh, end):
        if len(found) >= last:
            return
        rec = parse_line(line)
        if rec is not None and flt(rec):
            found.append((rec, line))


class Position:
    """Where reading stopped: the open newest file and the offset just after its last whole line."""

    def __init__(self, fh: io.BufferedReader | None, offset: int = 0):
        self.fh, self.offset = fh, offset

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def tail(path: Path, flt: Filter, last: int) -> tuple[list[tuple[dict, bytes]], Position]:
    """The newest ``last`` matching records (oldest first), read backwards from the end, and the exact
    position after them for ``follow(path, position=…)``: nothing written in between is lost, not even across
    a rotation (the open file keeps its inode)."""
    try:
        fh: io.BufferedReader | None = path.open("rb")
    except FileNotFoundError:
        fh = None
    found: list[tuple[dict, bytes]] = []
    pos = Position(fh)
    try:
        ino = None
        if fh is not None:
            st = os.fstat(fh.fileno())
            ino, pos.offset = st.st_ino, whole_end(fh, st.st_size)
            _newest_matching(fh, pos.offset, flt, last, found)
        for f in reversed(log_files(path)):  # the rotated files, newest first
            if len(found) >= last:
                break
            if f == path or _inode(f) == ino:
                continue
            with contextlib.suppress(OSError), f.open("rb") as src:
                _newest_matching(src, os.fstat(src.fileno()).st_size, flt, last, found)
    except BaseException:
        pos.close()
        raise
    found.reverse()
    return found, pos


def whole_end(fh: io.BufferedReader, end: int) -> int:
    """``end`` moved back to just after the last newline before it: a line the writer has not finished yet
    is left for the next read."""
    back = min(end, 1 << 16)
    while True:
        fh.seek(end - back)
        nl = fh.read(back).rfind(b"\n")
        if nl >= 0:
            return end - back + nl + 1
        if back == end:
            return 0
        back = min(end, back * 4)


class _Lines:
    """The records in the chunks of a file as they are read; a partial line waits for the rest of it."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, chunk: bytes) -> Iterator[tuple[dict, bytes]]:
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            rec = parse_line(line)
            if rec is not None:
                yield rec, line


def _was_rotated(path: Path, fh: io.BufferedReader, ino: int | None) -> bool:
    """Whether ``path`` is no longer the file ``fh`` reads (renamed away, a new file in its place) or was
    truncated."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return st.st_ino != ino or st.st_size < fh.tell()


def _rotated_after(path: Path, ino: int | None) -> list[Path]:
    """The rotated files newer than the one with inode ``ino``, oldest first: after more than one rotation
    since the last poll, these have not been read."""
    files = log_files(path)[:-1]
    inodes = [_inode(f) for f in files]
    return files[inodes.index(ino) + 1:] if ino in inodes else []


def follow(path: Path, poll: float = 0.2, stop=lambda: False, from_start: bool = False,
           position: Position | None = None) -> Iterator[tuple[dict, bytes]]:
    """New records appended to ``path`` (all of it with ``from_start``; from exactly ``position``, the file
    ``tail`` left open, when given), surviving rotation (rename + new file) and truncation. Partial lines
    wait until their newline arrives."""
    fh = None
    ino = None
    lines = _Lines()
    if position is not None:
        if position.fh is None:
            from_start = True  # there was no file: everything in the one that appears is new
        else:
            fh, position.fh = position.fh, None
            fh.seek(position.offset)
            ino = os.fstat(fh.fileno()).st_ino
    try:
        while not stop():
            if fh is None:
                try:
                    fh = path.open("rb")
                except FileNotFoundError:
                    time.sleep(poll)
                    continue
                ino = os.fstat(fh.fileno()).st_ino
                if not from_start:
                    fh.seek(0, os.SEEK_END)
            chunk = fh.read()
            if chunk:
                yield from lines.feed(chunk)
                continue
            if not _was_rotated(path, fh, ino):
                time.sleep(poll)
                continue
            yield from lines.feed(fh.read())  # whatever reached the old file just before the rename
            fh.close()
            fh = None
            lines.buf = b""
            for f in _rotated_after(path, ino):
                with contextlib.suppress(OSError):
                    yield from lines.feed(f.read_bytes())
                    lines.buf = b""
            from_start = True  # the new file is read from its start
    finally:
        if fh is not None:
            fh.close()
