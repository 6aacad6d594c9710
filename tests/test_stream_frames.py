"""Upstream bytes -> frames (``SSEDecoder.complete`` + ``providers.http.parse_frames``), the way ``frames`` reads
a response: whatever the network chunking, every event comes out once, in order, with its payload; a
passthrough stream's frames carry exactly the bytes that came in (runs of text deltas as one slice)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.config import ProviderConfig
from llmproxy.errors import UpstreamError
from llmproxy.protocol.sse import DEFERRED, SSEDecoder
from llmproxy.providers.wire import parse_frames, parse_payloads

PROVIDER = ProviderConfig(name="up", kind="anthropic")
TEXTS = ["héllo ✓ 🎉", "a\nb", "quote \" and } brace", "{", "", "x" * 300, "\\n"]


def anthropic_events(texts: list[str], ping_at: int) -> list[tuple[str, dict]]:
    ev = [("message_start", {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 3}}}),
          ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}})]
    deltas = [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": t}}) for t in texts]
    deltas.insert(min(ping_at, len(deltas)), ("ping", {"type": "ping"}))
    return ev + deltas + [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                          ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                             "usage": {"output_tokens": 9}}),
                          ("message_stop", {"type": "message_stop"})]


def encode(events: list[tuple[str, object]], spaced: bool = False) -> bytes:
    sep = b", " if spaced else b","
    return b"".join(b"event: " + name.encode() + b"\ndata: "
                    + json.dumps(data, ensure_ascii=False, separators=(sep.decode(), ": " if spaced else ":")).encode()
                    + b"\n\n" for name, data in events)


def read(stream: bytes, sizes: list[int], strict: bool = True) -> list:
    dec, frames, pos, i = SSEDecoder(), [], 0, 0
    while pos < len(stream):
        size = sizes[i % len(sizes)]
        frames += parse_frames(dec.complete(stream[pos:pos + size]), PROVIDER, strict)
        pos, i = pos + size, i + 1
    if rest := dec.rest():  # as providers.http.events does with what is left at the end
        frames += parse_frames(rest + b"\n\n", PROVIDER, True)
    return frames


chunkings = st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TEXTS), max_size=25), st.integers(0, 30), chunkings, st.booleans(), st.booleans())
def test_every_chunking_gives_the_same_events_and_bytes(texts, ping_at, sizes, crlf, spaced):
    events = anthropic_events(texts, ping_at)
    stream = encode(events, spaced)
    wire = stream.replace(b"\n", b"\r\n") if crlf else stream
    frames = read(wire, sizes)
    assert [(f.event, v) for f in frames for v in f.values()] == events
    assert b"".join(f.raw for f in frames) == stream  # passthrough relays what came (line endings as LF)
    deltas = [f for f in frames if f.data is DEFERRED]
    assert all(f.event == "content_block_delta" for f in deltas)
    # deltas that arrived in one read travel as one frame: never more frames than events
    assert len(frames) <= len(events)


def test_a_run_of_deltas_read_at_once_is_one_frame():
    events = anthropic_events(["a", "b", "c"], ping_at=99)
    frames = read(encode(events), [100_000])
    assert [f.event for f in frames] == ["message_start", "content_block_start", "ping", "content_block_delta",
                                         "content_block_stop", "message_delta", "message_stop"] or \
        [f.event for f in frames] == ["message_start", "content_block_start", "content_block_delta", "ping",
                                      "content_block_stop", "message_delta", "message_stop"]
    run = next(f for f in frames if f.data is DEFERRED)
    assert [v["delta"]["text"] for v in run.values()] == ["a", "b", "c"]


@pytest.mark.parametrize("bad", [
    b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", oops}\n\n",
    b"event: content_block_delta\ndata: {not json\n\n",
    b"event: message_delta\ndata: [1, 2\n\n",
])
def test_a_broken_frame_is_an_upstream_error_when_read(bad):
    """A frame that is not JSON is an error at once, or (a relayed delta, which only has to look like one
    object) as soon as anything reads it."""
    good = encode(anthropic_events(["a"], 99)[:3])
    with pytest.raises((UpstreamError, ValueError)):
        for f in read(good + bad, [100_000]):
            f.values()


def test_openai_data_lines_and_done():
    chunks = [{"choices": [{"index": 0, "delta": {"content": t}}]} for t in TEXTS]
    stream = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b": keep-alive\n\ndata: [DONE]\n\n"
    for sizes in ([1], [7, 3], [100_000]):
        frames = read(stream, sizes, strict=False)
        assert [f.data for f in frames] == chunks + ["[DONE]"]


def test_odd_blank_lines_between_frames():
    stream = b"data: {\"a\": 1}\n\n\ndata: {\"a\": 2}\n\n\n\n\ndata: {\"a\": 3}\n\n"
    for n in range(1, len(stream) + 1):
        dec, frames = SSEDecoder(), []
        frames += parse_frames(dec.complete(stream[:n]), PROVIDER, False)
        frames += parse_frames(dec.complete(stream[n:]), PROVIDER, False)
        assert [f.data for f in frames] == [{"a": 1}, {"a": 2}, {"a": 3}], n


OPENAI_LINES = [b'data: {"choices": [{"index": 0, "delta": {"content": "a\\nb"}}]}\n\n',
                b'data: {"choices":[{"index":0,"delta":{"content":"}, {"}}]}\n\n',
                b'data: {"usage": {"prompt_tokens": 3}}\n\n', b": keep-alive\n\n", b"data: not json at all\n\n",
                b"event: error\ndata: {\"error\": {\"message\": \"x\"}}\n\n", b"data:{\"no\": \"space\"}\n\n",
                b'data: {"a": 1}\r\n\r\n', b"\n"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(OPENAI_LINES), max_size=20), st.booleans(), chunkings)
def test_payloads_equal_the_frames_data_whatever_the_chunking(lines, done, sizes):
    """The one-array fast path gives exactly what frame-by-frame decoding gives, or falls back to it."""
    stream = b"".join(lines) + (b"data: [DONE]\n\n" if done else b"")
    expected = [f.data for f in read(stream, [len(stream) or 1], strict=False)]
    dec, got, pos, i = SSEDecoder(), [], 0, 0
    while pos < len(stream):
        region = dec.complete(stream[pos:pos + sizes[i % len(sizes)]])
        got += parse_payloads(region, PROVIDER) if region else []
        pos, i = pos + sizes[i % len(sizes)], i + 1
    if rest := dec.rest():
        got += parse_payloads(rest + b"\n\n", PROVIDER, True)
    assert got == expected


def test_payloads_broken_json_in_a_run_is_an_error():
    run = b'data: {"a": 1}\n\ndata: {"b": \n\ndata: {"c": 3}\n\n'
    with pytest.raises(UpstreamError, match="not JSON"):
        parse_payloads(run, PROVIDER)
