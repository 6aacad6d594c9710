"""The OpenAI -> Anthropic stream converter: event grammar, and the same final message whatever the chunk
boundaries of the upstream byte stream (inside multi-byte UTF-8 and inside SSE frames included)."""

from __future__ import annotations

import copy
import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.config import ProviderConfig
from llmproxy.convert.events import assemble, coalesce
from llmproxy.convert.stream import StreamConverter, message_from_response
from llmproxy.protocol.sse import SSEDecoder
from llmproxy.providers.wire import parse_frames

PROVIDER = ProviderConfig(name="up", kind="openai")


def chunk(delta, finish=None):
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


SCRIPT = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "Think ✓ "}), chunk({"reasoning_content": "about 日本"}),
    chunk({"content": "Héllo "}), chunk({"content": "wörld 🎉"}),
    chunk({"tool_calls": [{"index": 0, "id": "call_aaaaaaaa", "function": {"name": "f", "arguments": "{\"q\": \"ü"}}]}),
    chunk({"tool_calls": [{"index": 1, "id": "call_bbbbbbbb", "function": {"name": "g", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\\\"x\\\"\"}"}}]}),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": "[1, 2]"}}]}),
    chunk({}, "tool_calls"),
    {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}},
]


def sse_bytes(chunks) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b": keepalive\n\ndata: [DONE]\n\n"


def run(data: bytes, cuts: list[int]) -> list[tuple[str, dict]]:
    """The upstream bytes cut at ``cuts``, read as the OpenAI provider does (whole frames from
    ``SSEDecoder.complete``, parsed by ``wire.parse_frames``) and converted."""
    dec, conv, events, pos = SSEDecoder(), StreamConverter("m", message_id="msg_x"), [], 0
    for cut in sorted(set(cuts)) + [len(data)]:
        for frame in parse_frames(dec.complete(data[pos:cut]), PROVIDER, False):
            if frame.data != "[DONE]":
                events += conv.feed(frame.data)
        pos = cut
    assert dec.rest() == b""
    return events + conv.finish()


def check_grammar(events, json_valid=True):
    names = [e[0] for e in events]
    assert names[0] == "message_start" and names.count("message_start") == 1
    assert names[-2:] == ["message_delta", "message_stop"] and names.count("message_delta") == 1
    open_idx, expected, partial = None, 0, {}
    for name, d in events:
        if name == "content_block_start":
            assert open_idx is None and d["index"] == expected
            open_idx, expected = d["index"], expected + 1
            if d["content_block"]["type"] in ("tool_use", "server_tool_use", "mcp_tool_use"):
                assert d["content_block"]["input"] == {}
                partial[d["index"]] = ""
        elif name == "content_block_delta":
            assert d["index"] == open_idx
            if d["delta"]["type"] == "input_json_delta":
                partial[d["index"]] += d["delta"]["partial_json"]
        elif name == "content_block_stop":
            assert d["index"] == open_idx
            open_idx = None
    assert open_idx is None
    for js in partial.values() if json_valid else ():
        assert isinstance(json.loads(js or "{}"), dict)


EXPECTED = assemble(run(sse_bytes(SCRIPT), []))


def test_expected_message():
    check_grammar(run(sse_bytes(SCRIPT), []))
    c = EXPECTED["content"]
    assert [b["type"] for b in c] == ["thinking", "text", "tool_use", "tool_use"]
    assert c[0]["thinking"] == "Think ✓ about 日本" and c[0]["signature"].startswith("llmproxy1.")
    assert c[1]["text"] == "Héllo wörld 🎉"
    assert c[2] == {"type": "tool_use", "id": "call_aaaaaaaa", "name": "f", "input": {"q": "ü\"x\""}}
    assert c[3]["input"] == {"value": [1, 2]}  # non-object arguments are wrapped
    assert EXPECTED["stop_reason"] == "tool_use" and EXPECTED["usage"]["output_tokens"] == 5


def test_every_single_split_position():
    data = sse_bytes(SCRIPT)
    for i in range(len(data) + 1):
        events = run(data, [i])
        check_grammar(events)
        got = assemble(events)
        assert got["content"] == EXPECTED["content"], i


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_multi_splits(data):
    raw = sse_bytes(SCRIPT)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    events = run(raw, cuts)
    check_grammar(events)
    assert assemble(events)["content"] == EXPECTED["content"]


pieces = st.one_of(
    st.tuples(st.just("text"), st.text(min_size=1, max_size=8)),
    st.tuples(st.just("reasoning"), st.text(min_size=1, max_size=8)),
    st.tuples(st.just("tool"), st.integers(0, 2), st.text(max_size=6)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=25), st.sampled_from(["stop", "length", "tool_calls", None]), st.booleans())
def test_any_chunk_sequence_gives_a_valid_event_stream(seq, finish, stream_args):
    conv = StreamConverter("m", stream_tool_args=stream_args)
    events = []
    for p in seq:
        if p[0] == "text":
            events += conv.feed(chunk({"content": p[1]}))
        elif p[0] == "reasoning":
            events += conv.feed(chunk({"reasoning_content": p[1]}))
        else:
            events += conv.feed(chunk({"tool_calls": [{"index": p[1], "id": f"call_{p[1]:08d}",
                                                       "function": {"name": f"t{p[1]}", "arguments": p[2]}}]}))
    if finish:
        events += conv.feed(chunk({}, finish))
    events += conv.finish()
    # buffered (the default): tool JSON is valid whatever the provider sent; streamed: only the grammar holds
    check_grammar(events, json_valid=not stream_args)


def test_streamed_tool_args_arrive_as_fragments():
    conv = StreamConverter("m", stream_tool_args=True)
    ev = []
    for c in SCRIPT:
        ev += conv.feed(c)
    ev += conv.finish()
    check_grammar(ev)
    frags = [d["delta"]["partial_json"] for n, d in ev if n == "content_block_delta" and d["index"] == 2
             and d["delta"]["type"] == "input_json_delta"]
    assert len(frags) == 2  # tool 0 streamed; tool 1 (interleaved) buffered until tool 0 closed
    assert assemble(ev)["content"][2]["input"] == {"q": "ü\"x\""}


def test_finish_reasons_and_stop_sequence():
    for finish, stop in (("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")):
        msg = message_from_response({"id": "1", "choices": [{"message": {"content": "x"}, "finish_reason": finish}]}, "m")
        assert msg["stop_reason"] == stop
    msg = message_from_response({"choices": [{"message": {"content": "x"}, "finish_reason": "stop",
                                               "stop_reason": "END"}]}, "m", stop_sequences=("END",))
    assert msg["stop_reason"] == "stop_sequence" and msg["stop_sequence"] == "END"


def test_missing_or_bad_tool_ids_are_replaced_uniquely():
    conv = StreamConverter("m")
    ev = conv.feed(chunk({"tool_calls": [{"index": 0, "id": "call_0", "function": {"name": "a", "arguments": "{}"}}]}))
    ev += conv.feed(chunk({"tool_calls": [{"index": 1, "id": "functions.b:1", "function": {"name": "b", "arguments": "{}"}}]}))
    msg = assemble(ev + conv.finish())
    ids = [b["id"] for b in msg["content"]]
    assert len(set(ids)) == 2 and all(i.startswith("toolu_llmp_") for i in ids)


def test_invalid_argument_json_is_kept_not_lost():
    conv = StreamConverter("m")
    ev = conv.feed(chunk({"content": "x"}))
    ev += conv.feed(chunk({"tool_calls": [{"index": 0, "id": "call_12345678", "function": {"name": "a"}}]}))
    ev += conv.feed(chunk({"tool_calls": [{"index": 1, "id": "call_22345678", "function": {"name": "b", "arguments": "{bad"}}]}))
    msg = assemble(ev + conv.finish())
    assert msg["content"][-1]["input"] == {"_unparsed_arguments": "{bad"}


# ------------------------------------------------------------------------------------ coalesce (one batch)

def _delta(i: int, kind: str, text: str) -> tuple[str, dict]:
    field = "text" if kind == "text_delta" else "thinking" if kind == "thinking_delta" else "partial_json"
    return ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": kind, field: text}})


_PIECES = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["text_delta", "thinking_delta", "input_json_delta",
                                                                   "stop"]), st.sampled_from(["a", "é", "", "xy"])),
                   max_size=30)


@given(_PIECES)
def test_coalesce_keeps_every_block_text_and_every_other_event(pieces):
    events = [("content_block_stop", {"type": "content_block_stop", "index": i}) if kind == "stop"
              else _delta(i, kind, t) for i, kind, t in pieces]
    before = copy.deepcopy(events)
    out = coalesce(events)
    assert events == before  # the input is not changed

    def texts(evs):
        got: dict = {}
        for name, d in evs:
            if name == "content_block_delta":
                key = (d["index"], d["delta"]["type"])
                got[key] = got.get(key, "") + next(v for k, v in d["delta"].items() if k != "type")
        return got

    def others(evs):
        return [e for e in evs if e[0] != "content_block_delta" or e[1]["delta"]["type"] == "input_json_delta"]

    assert texts(out) == texts(events)
    assert others(out) == others(events)
    # no two neighbours left that could have been one
    for (n1, d1), (n2, d2) in zip(out, out[1:], strict=False):
        if n1 == n2 == "content_block_delta" and d1["delta"]["type"] in ("text_delta", "thinking_delta"):
            assert (d1["index"], d1["delta"]["type"]) != (d2["index"], d2["delta"]["type"])


def test_coalesce_a_batch_of_a_converted_stream_gives_the_same_message():
    conv = StreamConverter("m", message_id="msg_x")
    chunks = [{"choices": [{"index": 0, "delta": {"reasoning_content": f"r{i} "}}]} for i in range(5)]
    chunks += [{"choices": [{"index": 0, "delta": {"content": f"w{i} "}}]} for i in range(50)]
    events = [e for c in chunks for e in conv.feed(c)] + conv.finish()
    merged = coalesce(events)
    assert assemble(merged) == assemble(events)
    # message_start; thinking: start, one delta, signature, stop; text: start, one delta, stop; message_delta, stop
    assert len(merged) == 10 and len(events) == 10 + 4 + 49


# --------------------------------------------------------------------- feed_many (the chunks of one read)

_CHUNKS = [chunk({"content": "Hello "}), chunk({"content": "wor"}), chunk({"content": "ld. STOP here"}),
           chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "hmm "}),
           chunk({"refusal": "no."}), chunk({"content": "x", "role": "assistant"}),
           chunk({"tool_calls": [{"index": 0, "id": "call_abcdefgh", "function": {"name": "Read", "arguments": ""}}]}),
           chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"p\": 1}"}}]}),
           {"choices": [{"index": 1, "delta": {"content": "other choice"}}]},
           {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
           chunk({"content": "end"}, "stop")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_CHUNKS), max_size=25), st.lists(st.integers(1, 6), min_size=1, max_size=8),
       st.sampled_from([(), ("STOP",), ("wor", "d. S")]))
def test_feed_many_gives_the_message_feed_gives(chunks, reads, stops):
    one, many = (StreamConverter("m", message_id="msg_x", stop_sequences=stops) for _ in range(2))
    by_one = [e for c in chunks for e in one.feed(c)] + one.finish()
    by_many, pos, i = [], 0, 0
    while pos < len(chunks):  # the chunks as they might arrive, several per read
        n = reads[i % len(reads)]
        by_many += many.feed_many(chunks[pos:pos + n])
        pos, i = pos + n, i + 1
    by_many += many.finish()
    a, b = assemble(by_one), assemble(by_many)
    for m in (a, b):  # minted tool ids and signatures differ between two converters
        for block in m["content"]:
            block.pop("id", None), block.pop("signature", None)
    assert a == b
    assert len(by_many) <= len(by_one)
