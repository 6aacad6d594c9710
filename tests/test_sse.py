"""SSE framing (docs/anthropic-api.md §1, §3): event line equals data.type; the decoder survives any split."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from llmproxy.protocol.sse import SSEDecoder, encode

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


def test_decoder_every_split_position():
    stream = b"".join(encode(n, d) for n, d in EVENTS) + b": comment\n\n"
    for i in range(len(stream) + 1):
        dec = SSEDecoder()
        got = dec.feed(stream[:i]) + dec.feed(stream[i:])
        assert [(e, json.loads(d)) for e, d in got] == EVENTS, i


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60), st.booleans())
def test_decoder_random_chunking_and_crlf(sizes, crlf):
    stream = b"".join(encode(n, d) for n, d in EVENTS)
    if crlf:
        stream = stream.replace(b"\n", b"\r\n")
    dec, got, pos = SSEDecoder(), [], 0
    for size in sizes * (len(stream) // max(1, sum(sizes)) + 1):
        if pos >= len(stream):
            break
        got += dec.feed(stream[pos:pos + size])
        pos += size
    got += dec.feed(stream[pos:]) + dec.flush()
    assert [(e, json.loads(d)) for e, d in got] == EVENTS


def test_multiline_data_joined():
    dec = SSEDecoder()
    assert dec.feed(b"event: x\ndata: a\ndata: b\n\n") == [("x", "a\nb")]
