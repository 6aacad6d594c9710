"""Server-sent events: encode one frame, and decode a byte stream incrementally.

The decoder works on bytes, so a frame (or a multi-byte UTF-8 character) split across network chunks is
reassembled before it is decoded. Line endings may be LF, CRLF or CR, as the SSE spec allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

#: ``Frame.data`` of relayed ``content_block_delta`` frames whose JSON is parsed only when something asks
#: (``values()``): the client gets their bytes as they came and nothing in the proxy reads them, so the parse
#: is skipped. Such a frame's ``raw`` holds one or more whole delta frames that arrived together (a run).
DEFERRED: Any = type("Deferred", (), {"__repr__": lambda self: "DEFERRED"})()


@dataclass(slots=True)
class Frame:
    """One server-sent event as it crosses the provider seam.

    ``data`` is the parsed JSON payload (or the text of a non-JSON data line such as OpenAI's ``[DONE]``);
    ``raw`` is the exact bytes the upstream sent for this frame, kept by a passthrough provider so the client
    receives them unchanged. A frame a provider built itself has ``raw=None`` and is encoded once, on the way
    out."""

    event: str
    data: Any
    raw: bytes | None = None

    def values(self) -> list[Any]:
        """The payload of each event this frame carries: ``[data]``, or for a deferred run (see ``DEFERRED``)
        each delta's JSON, parsed now. Raises ValueError when one is not JSON."""
        if self.data is not DEFERRED:
            return [self.data]
        loads = orjson.loads
        return [loads(line[6:]) for line in self.raw.split(b"\n") if line.startswith(b"data: ")]

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.event:
            return encode(self.event, self.data)
        return encode_data(self.data)


def encode(event: str, data: dict) -> bytes:
    """One SSE frame whose ``event:`` line equals ``data["type"]`` (docs/anthropic-api.md §1 rule 1)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def encode_data(data: dict | str) -> bytes:
    """A data-only frame (the OpenAI streaming style)."""
    payload = data.encode() if isinstance(data, str) else orjson.dumps(data)
    return b"data: " + payload + b"\n\n"


class SSEDecoder:
    """Incremental decoder. ``complete(bytes)`` hands over the whole frames that have arrived, as one piece of
    bytes (what the providers parse, ``providers/wire.py``); at the end of a stream, ``rest()`` gives what is
    left. ``parse(frame)`` decodes one frame (comments and ids skipped)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def complete(self, chunk: bytes) -> bytes:
        """Everything that has arrived up to the end of its last complete frame (line endings made LF), in one
        piece; the rest stays buffered. Empty when no frame is complete yet. (Extra blank lines between frames
        may leave a lone newline at the end: an empty frame.)"""
        buf = self._normalised(self._buf + chunk)
        end = buf.rfind(b"\n\n") + 2
        if end == 1:
            self._buf = buf
            return b""
        if end == len(buf):
            self._buf = b""
            return buf
        self._buf = buf[end:]
        return buf[:end]

    @staticmethod
    def _normalised(buf: bytes) -> bytes:
        if b"\r" in buf:
            # keep a trailing CR: it may be the first half of a CRLF split across chunks
            keep_cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buf = buf[:-1] + b"\r"
        return buf

    def rest(self) -> bytes:
        """What is left when the stream ends without a final blank line (trailing line breaks removed);
        the buffer is emptied."""
        buf, self._buf = self._buf.rstrip(b"\r\n"), b""
        return buf

    @staticmethod
    def parse(frame: bytes) -> tuple[str, str] | None:
        """(event, data) of one frame without its blank line; None for a frame of comments only."""
        # fast path: the usual two-line frame "event: X\ndata: {...}" (or one "data: ..." line)
        if frame.startswith(b"event: "):
            nl = frame.find(b"\n")
            if nl > 0 and frame.startswith(b"data: ", nl + 1) and frame.find(b"\n", nl + 1) < 0:
                return frame[7:nl].decode(), frame[nl + 7:].decode("utf-8", errors="replace")
        elif frame.startswith(b"data: ") and b"\n" not in frame:
            return "", frame[6:].decode("utf-8", errors="replace")
        event = ""
        data: list[str] = []
        for line in frame.decode("utf-8", errors="replace").split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        if not event and not data:
            return None
        return event, "\n".join(data)
