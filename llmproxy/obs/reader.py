"""Reading the request log back: the rotated files in order, filters, and following a file that rotates.
Pure apart from file reads; used by `llmproxy logs`, `llmproxy stats` and `llmproxy demo status`."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """'10m', '1h', '2d', '30s' or an ISO timestamp -> a unix time (None for no limit)."""
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
    try:
        return datetime.fromisoformat(rec["time"]).timestamp()
    except (KeyError, ValueError, TypeError):
        return 0.0


@dataclass
class Filter:
    profile: str | None = None
    scenario: str | None = None
    provider: str | None = None
    status: str | None = None  # "error", "ok", "429", "5xx"
    since: float | None = None

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
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def read(path: Path, flt: Filter, last: int | None = None) -> list[tuple[dict, bytes]]:
    """Matching (record, raw line) pairs, oldest first; with ``last``, only the newest ``last`` of them."""
    out: deque = deque(maxlen=last) if last else deque()
    for f in log_files(path):
        try:
            data = f.read_bytes()
        except OSError:
            continue
        for line in data.splitlines():
            rec = parse_line(line)
            if rec is not None and flt(rec):
                out.append((rec, line))
    return list(out)


def follow(path: Path, poll: float = 0.2, stop=lambda: False, from_start: bool = False
           ) -> Iterator[tuple[dict, bytes]]:
    """New records appended to ``path`` (all of it with ``from_start``), surviving rotation (rename + new
    file) and truncation. Partial lines wait until their newline arrives."""
    fh = None
    ino = None
    buf = b""

    def lines_of(chunk: bytes) -> Iterator[tuple[dict, bytes]]:
        nonlocal buf
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            rec = parse_line(line)
            if rec is not None:
                yield rec, line

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
            yield from lines_of(chunk)
            continue
        try:
            st = path.stat()
            rotated = st.st_ino != ino or st.st_size < fh.tell()
        except FileNotFoundError:
            rotated = False
        if not rotated:
            time.sleep(poll)
            continue
        yield from lines_of(fh.read())  # whatever reached the old file just before the rename
        fh.close()
        buf = b""
        # more than one rotation since the last poll: the files rotated after ours are unread, oldest first
        files = log_files(path)[:-1]
        inodes = [_inode(f) for f in files]
        for f in files[inodes.index(ino) + 1:] if ino in inodes else ():
            with contextlib.suppress(OSError):
                yield from lines_of(f.read_bytes())
                buf = b""
        fh, from_start = None, True  # the new file is read from its start
    if fh is not None:
        fh.close()
