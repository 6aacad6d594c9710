"""SSE framing (docs/anthropic-api.md §1, §3): event line equals data.type; the decoder (``SSEDecoder.complete``
+ ``wire.parse_frames``, as the providers read a stream) survives any split."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from llmproxy.config import ProviderConfig
from llmproxy.protocol.sse import SSEDecoder, encode
from llmproxy.providers.wire import parse_frames

PROVIDER = ProviderConfig(name="up", kind="anthropic")

EVENTS = [("message_start", {"type": "message_start", "message": {"id": "m"}}),
          ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": "héllo ✓ 🎉\nline"}}),
          ("ping", {"type": "ping"}),
          ("message_stop", {"type": "message_stop"})]


def test_encode_event_line_matches_type():
    for name, data in EVENTS:
        frame = encode(name, data).decode()
        lines = frame.split("\n")
        assert lines[0] == f"event: {data['type']}"
        assert json.loads(lines[1][len("data: "):]) == data
        assert frame.endswith("\n\n") and frame.count("\n") == 3  # one-line JSON


def read(chunks: list[bytes], strict: bool = True) -> list[tuple[str, object]]:
    """(event, payload) of every event in the stream, read as ``providers.http.events`` does: whole frames
    from ``SSEDecoder.complete`` per network chunk, parsed by ``wire.parse_frames``; at the end, what is left."""
    dec, frames = SSEDecoder(), []
    for chunk in chunks:
        frames += parse_frames(dec.complete(chunk), PROVIDER, strict)
    if rest := dec.rest():
        frames += parse_frames(rest + b"\n\n", PROVIDER, True)
    return [(f.event, value) for f in frames for value in f.values()]


def test_decoder_every_split_position():
    stream = b"".join(encode(n, d) for n, d in EVENTS) + b": comment\n\n"
    for i in range(len(stream) + 1):
        assert read([stream[:i], stream[i:]]) == EVENTS, i


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60), st.booleans(), st.booleans())
def test_decoder_random_chunking_and_crlf(sizes, crlf, final_blank_line):
    stream = b"".join(encode(n, d) for n, d in EVENTS)
    if not final_blank_line:  # the stream ends without its last blank line: the rest is still the last event
        stream = stream[:-2]
    if crlf:
        stream = stream.replace(b"\n", b"\r\n")
    chunks, pos = [], 0
    for size in sizes * (len(stream) // max(1, sum(sizes)) + 1):
        if pos >= len(stream):
            break
        chunks.append(stream[pos:pos + size])
        pos += size
    chunks.append(stream[pos:])
    assert read(chunks) == EVENTS


def test_multiline_data_joined():
    assert read([b"event: x\ndata: a\ndata: b\n\n"], strict=False) == [("x", "a\nb")]
    assert read([b'event: x\ndata: {"a":\ndata: 1}\n\n']) == [("x", {"a": 1})]
