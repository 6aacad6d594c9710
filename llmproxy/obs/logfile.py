"""The request log's file (and ``daemon.log``): lines appended under a lock, rotated by size
(``requests.jsonl.1`` … ``.N``), created 0600 whatever the umask.

Several processes may share it (``serve --workers N``): each batch is written, and the file rotated, under
an exclusive ``flock`` on ``requests.jsonl.lock``, after reopening the file when another process rotated it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


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
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fh = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
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
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # the directory went away: made again (not asked on every write)
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
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


#: a line of the daemon's output longer than this is written in pieces rather than held until it ends
PUMP_LINE_MAX = 64 * 1024


def pump(fd: int, writer: RotatingWriter) -> None:
    """Copy what arrives on ``fd`` (the read end of the daemon's stdout/stderr pipe) into ``writer`` line by
    line, until every process holding the write end has closed it. A write that fails (disk full) loses those
    lines, never the pump: the daemon must never block on a pipe nobody drains."""
    rest = b""
    while chunk := os.read(fd, 65536):
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        if len(data) - cut > PUMP_LINE_MAX:
            cut = len(data)
        rest = data[cut:]
        if cut:
            _write_quietly(writer, data[:cut])
    if rest:
        _write_quietly(writer, rest + b"\n")
    writer.close()


def _write_quietly(writer: RotatingWriter, data: bytes) -> None:
    with contextlib.suppress(Exception):
        writer.write_lines(data.splitlines(keepends=True))


def mark(path: Path) -> tuple[int, int]:
    """Where ``path`` ends now (its inode and size), for ``read_since``; (0, 0) if it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return 0, 0
    return st.st_ino, st.st_size


def read_since(path: Path, since: tuple[int, int]) -> bytes:
    """What was appended to ``path`` after ``since`` (from ``mark``), across a rotation in between: the rest
    of the rotated file (``.1``), then the new one from its start."""
    ino, offset = since
    parts = []
    for candidate, start in ((path.with_name(path.name + ".1"), offset), (path, offset)):
        try:
            with candidate.open("rb") as fh:
                same = os.fstat(fh.fileno()).st_ino == ino
                if candidate is path or same:
                    fh.seek(start if same else 0)
                    parts.append(fh.read())
        except OSError:
            continue
    return b"".join(parts)


def main(argv: list[str]) -> None:
    """The daemon.log pump as its own small interpreter (``serve --daemon`` starts it): copies its stdin into
    ``PATH`` rotated at ``MAX_BYTES`` with ``KEEP`` older files. Arguments: PATH MAX_BYTES KEEP."""
    path, max_bytes, keep = argv
    pump(0, RotatingWriter(Path(path), int(max_bytes), int(keep)))
