"""Stop sequences beyond what an upstream enforces, and refusals, in the OpenAI -> Anthropic converter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.convert.events import assemble
from llmproxy.convert.stream import StreamConverter, message_from_response
from tests.convert.test_stream import check_grammar


def chunk(delta, finish=None):
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def stream(pieces, stops, finish="stop", **delta_extra):
    conv = StreamConverter("m", message_id="msg_t", stop_sequences=tuple(stops))
    ev = conv.feed(chunk({"role": "assistant", "content": ""}))
    for p in pieces:
        ev += conv.feed(chunk({"content": p, **delta_extra}))
    ev += conv.feed(chunk({}, finish))
    ev += conv.finish()
    check_grammar(ev)
    return assemble(ev)


def text_of(msg) -> str:
    return "".join(b.get("text", "") for b in msg["content"] if b["type"] == "text")


def by_hand(text: str, stops: list[str]) -> tuple[str, str | None]:
    """What a model generating ``text`` one character at a time would return (independent of the converter)."""
    for i in range(1, len(text) + 1):
        done = [s for s in stops if s and text[:i].endswith(s)]
        if done:
            seq = max(done, key=len)
            return text[:i - len(seq)], seq
    return text, None


FIVE = ["<<1>>", "<<2>>", "<<3>>", "<<4>>", "STOP-HERE"]


def test_fifth_stop_sequence_split_across_chunks_is_enforced():
    msg = stream(["The answer is 4", "2. STO", "P-HE", "RE and then more text", " that must not show"], FIVE)
    assert text_of(msg) == "The answer is 42. "
    assert msg["stop_reason"] == "stop_sequence" and msg["stop_sequence"] == "STOP-HERE"


def test_a_near_miss_is_released_not_lost():
    msg = stream(["ends with STOP-HER", "E? yes"], FIVE)  # the second piece completes it
    assert text_of(msg) == "ends with " and msg["stop_sequence"] == "STOP-HERE"
    msg = stream(["almost STOP-HE", "LP"], FIVE)
    assert text_of(msg) == "almost STOP-HELP" and msg["stop_reason"] == "end_turn"
    msg = stream(["trailing STOP-HE"], FIVE)  # held back, then released when the stream ends
    assert text_of(msg) == "trailing STOP-HE" and msg["stop_reason"] == "end_turn"


def test_match_at_the_very_start_and_later_output_ignored():
    conv = StreamConverter("m", stop_sequences=tuple(FIVE))
    ev = conv.feed(chunk({"content": "<<3>> rest"}))
    ev += conv.feed(chunk({"tool_calls": [{"index": 0, "id": "call_12345678",
                                           "function": {"name": "f", "arguments": "{}"}}]}))
    ev += conv.feed(chunk({"content": "more"}, "tool_calls"))
    ev += conv.finish()
    check_grammar(ev)
    msg = assemble(ev)
    assert text_of(msg) == "" and all(b["type"] != "tool_use" for b in msg["content"])
    assert msg["stop_reason"] == "stop_sequence" and msg["stop_sequence"] == "<<3>>"


def test_held_text_is_flushed_before_thinking_or_tools():
    conv = StreamConverter("m", stop_sequences=("HALT",))
    ev = conv.feed(chunk({"content": "so HA"}))
    ev += conv.feed(chunk({"tool_calls": [{"index": 0, "id": "call_12345678",
                                           "function": {"name": "f", "arguments": "{}"}}]}, "tool_calls"))
    ev += conv.finish()
    check_grammar(ev)
    msg = assemble(ev)
    assert text_of(msg) == "so HA" and msg["stop_reason"] == "tool_use"


def test_non_streaming_answer_is_truncated_too():
    resp = {"id": "x", "choices": [{"message": {"role": "assistant", "content": "alpha STOP-HERE beta"},
                                    "finish_reason": "stop"}]}
    msg = message_from_response(resp, "m", stop_sequences=tuple(FIVE))
    assert msg["content"] == [{"type": "text", "text": "alpha "}]
    assert msg["stop_reason"] == "stop_sequence" and msg["stop_sequence"] == "STOP-HERE"


def test_first_to_complete_wins():
    assert by_hand("xabc", ["xabc", "ab"]) == ("x", "ab")
    msg = stream(["xa", "bc"], ["xabc", "ab", "q", "r", "s"])
    assert text_of(msg) == "x" and msg["stop_sequence"] == "ab"


@settings(max_examples=300, deadline=None)
@given(st.text("abAB ", max_size=40), st.lists(st.text("abAB", min_size=1, max_size=4), min_size=1, max_size=6),
       st.lists(st.integers(0, 40), max_size=8))
def test_any_split_gives_what_the_model_would_have_stopped_at(text, stops, cuts):
    cuts = sorted({c for c in cuts if 0 < c < len(text)})
    pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)], strict=True) if text[a:b]]
    msg = stream(pieces, stops)
    want, seq = by_hand(text, stops)
    assert text_of(msg) == want
    assert msg["stop_sequence"] == seq
    assert msg["stop_reason"] == ("stop_sequence" if seq else "end_turn")


# ------------------------------------------------------------------------------------------- refusals

def test_streamed_refusal_is_visible_text_and_refusal_stop():
    conv = StreamConverter("m")
    ev = conv.feed(chunk({"role": "assistant", "content": None, "refusal": ""}))
    ev += conv.feed(chunk({"refusal": "I can't help "}))
    ev += conv.feed(chunk({"refusal": "with that."}))
    ev += conv.feed(chunk({}, "stop"))
    ev += conv.finish()
    check_grammar(ev)
    msg = assemble(ev)
    assert msg["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert msg["stop_reason"] == "refusal"


def test_non_streaming_refusal():
    resp = {"id": "r", "choices": [{"message": {"role": "assistant", "content": None,
                                                "refusal": "I won't do that."}, "finish_reason": "stop"}]}
    msg = message_from_response(resp, "m")
    assert msg["content"] == [{"type": "text", "text": "I won't do that."}] and msg["stop_reason"] == "refusal"
    plain = message_from_response({"choices": [{"message": {"content": "ok", "refusal": None},
                                                "finish_reason": "stop"}]}, "m")
    assert plain["stop_reason"] == "end_turn"
