"""Upstream event-stream bytes -> what providers hand on: frames that keep their bytes (``parse_frames``), or
bare payloads (``parse_payloads``). Pure; the input is one region of whole frames (``SSEDecoder.complete``),
untrusted: what is not what it claims to be is an UpstreamError naming the provider."""

from __future__ import annotations

import re

import orjson

from llmproxy.config import ProviderConfig
from llmproxy.errors import UpstreamError
from llmproxy.protocol.sse import DEFERRED, Frame, SSEDecoder


def _frame(event: str, data: str, raw: bytes, provider: ProviderConfig, strict: bool = True) -> Frame:
    if data == "[DONE]":
        return Frame(event, data, raw)
    try:
        return Frame(event, orjson.loads(data), raw)
    except orjson.JSONDecodeError:
        if not strict and not data.lstrip().startswith(("{", "[")):
            return Frame(event, data, raw)  # a stray text line, kept as text: the consumer skips it
        raise UpstreamError(f"{provider.name}: malformed event in the upstream stream "
                            f"({event or 'data'} frame is not JSON)") from None


#: event names as the interned strings the consumers compare with
_EVENTS = {name.encode(): name for name in (
    "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
    "message_stop", "ping", "error")}


#: a run of ``content_block_delta`` frames in the usual two-line form, each data line one JSON object
_DELTA_RUN = re.compile(rb"(?:event: content_block_delta\ndata: \{[^\n]*\}\n\n)+")


def parse_frames(region: bytes, provider: ProviderConfig, strict: bool) -> list[Frame]:
    """Frames from ``region``: whole SSE frames, LF line endings (``SSEDecoder.complete``).

    Passthrough (``strict``: an Anthropic stream, relayed byte for byte): consecutive text deltas are one
    frame, their bytes one slice, found by one regex match and parsed only if something asks
    (``Frame.values``) — most of a stream, and nothing reads them. Other frames: the usual ``event: X`` +
    one ``data: {…}`` line (or a lone ``data:`` line, as OpenAI-compatible servers send) is parsed straight
    from the bytes; anything else goes through the general decoder, which says what is wrong."""
    out = []
    loads = orjson.loads
    pos, size = 0, len(region)
    while pos < size:
        if strict:
            m = _DELTA_RUN.match(region, pos)
            if m is not None:
                end = m.end()
                out.append(Frame("content_block_delta", DEFERRED, region if end - pos == size else region[pos:end]))
                pos = end
                continue
        end = region.find(b"\n\n", pos) + 2
        if end == 1:  # the region's last blank line was odd: its lone newline is an empty frame
            end = size
        raw = region[pos:end]
        pos = end
        if raw.startswith(b"event: "):
            nl = raw.find(b"\n", 7)
            if raw.startswith(b"data: ", nl + 1) and raw.find(b"\n", nl + 7) == len(raw) - 2:
                name = raw[7:nl]
                try:
                    out.append(Frame(_EVENTS.get(name) or name.decode(), loads(raw[nl + 7:-2]), raw))
                    continue
                except orjson.JSONDecodeError:
                    pass  # the general path says what is wrong
        elif raw.startswith(b"data: {") and raw.find(b"\n", 6) == len(raw) - 2:
            try:
                out.append(Frame("", loads(raw[6:-2]), raw))
                continue
            except orjson.JSONDecodeError:
                pass
        parsed = SSEDecoder.parse(raw[:-2])
        if parsed is not None:
            out.append(_frame(parsed[0], parsed[1], raw, provider, strict))
    return out




_DONE = b"data: [DONE]\n\n"


def parse_payloads(region: bytes, provider: ProviderConfig, strict: bool = False) -> list:
    """The payload of each event in ``region``: a JSON value, or the text of a line that is not JSON (such as
    ``[DONE]``). An OpenAI-compatible stream is a run of ``data: {…}`` frames: the run is parsed as one JSON
    array, in one call, and kept only if it has exactly one element per frame; anything else goes frame by
    frame (``parse_frames``), which says what is wrong."""
    body = region[:-len(_DONE)] if region.endswith(_DONE) else region
    if not strict and body.startswith(b"data: {"):
        try:
            out = orjson.loads(b"[" + body[6:-2].replace(b"\n\ndata: ", b",") + b"]")
        except orjson.JSONDecodeError:
            out = None
        if out is not None and len(out) == body.count(b"\n\n"):
            if body is not region:
                out.append("[DONE]")
            return out
    return [f.data for f in parse_frames(region, provider, strict)]
