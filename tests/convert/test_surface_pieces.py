"""Pure pieces of the OpenAI surface (temperature, JSON output, failed streams) and of the Anthropic
passthrough (repeated beta headers, a JSON answer to a streaming request)."""

from __future__ import annotations

import pytest

from llmproxy.convert.inbound import ChunkConverter, OpenAIStreamCheck, error_chunk, to_anthropic
from llmproxy.convert.passthrough import merge_beta, message_as_events
from llmproxy.convert.quirks import Quirks
from llmproxy.convert.request import to_openai
from llmproxy.convert.stream import assemble, message_events
from llmproxy.errors import InvalidRequest, Overloaded, UpstreamError, from_upstream_status
from tests.convert.test_stream import check_grammar

HI = [{"role": "user", "content": "hi"}]
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
          "additionalProperties": False}


# ---------------------------------------------------------------------------------------- temperature

@pytest.mark.parametrize("given,sent", [(0, 0), (0.2, 0.2), (0.7, 0.7), (1, 1), (1.3, 1.0), (2, 1.0)])
def test_temperature_kept_up_to_one_and_clamped_above(given, sent):
    notes: list[str] = []
    body = to_anthropic({"model": "m", "messages": HI, "temperature": given}, notes)
    assert body["temperature"] == sent
    assert bool(notes) == (given > 1)
    if notes:
        assert f"temperature {given:g} clamped to 1" in notes[0]


def test_sampling_dropped_when_thinking_is_on():
    notes: list[str] = []
    body = to_anthropic({"model": "m", "messages": HI, "temperature": 0.3, "top_p": 0.9, "max_tokens": 30000,
                         "reasoning_effort": "medium"}, notes)
    assert body["thinking"]["type"] == "enabled" and "temperature" not in body and "top_p" not in body
    assert len(notes) == 2 and all("thinking" in n for n in notes)


def test_null_temperature_is_not_sent():
    assert "temperature" not in to_anthropic({"model": "m", "messages": HI, "temperature": None})


# ---------------------------------------------------------------------------------------- JSON output

def test_json_schema_becomes_structured_output_not_an_instruction():
    body = to_anthropic({"model": "m", "messages": HI, "response_format": {
        "type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}}})
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "system" not in body


def test_structured_output_goes_back_to_response_format_for_openai_kind_targets():
    body = to_anthropic({"model": "m", "messages": [{"role": "system", "content": "be terse"}] + HI,
                         "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": SCHEMA}}})
    out = to_openai(body, model="up")
    assert out["response_format"]["type"] == "json_schema"
    assert out["response_format"]["json_schema"]["schema"] == SCHEMA
    assert out["messages"][0] == {"role": "system", "content": "be terse"}
    # a provider without a JSON-schema mode gets the instruction instead (the only place it is used)
    for style in ("json_object", "none"):
        out = to_openai(body, model="up", quirks=Quirks(structured_output=style))
        assert '"required":["name"]' in out["messages"][0]["content"]
        assert out["messages"][0]["content"].startswith("be terse\n\nRespond with a single JSON object")


def test_json_object_without_schema_is_an_instruction():
    body = to_anthropic({"model": "m", "messages": HI, "response_format": {"type": "json_object"}})
    assert "output_config" not in body and body["system"] == "Respond with a single JSON object and nothing else."


# -------------------------------------------------------------------------------------- failed streams

def events_for(text: str) -> list:
    return message_events({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                           "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                           "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2}})


def test_complete_stream_allows_done():
    conv = ChunkConverter("m", include_usage=False)
    for name, data in events_for("hello"):
        conv.feed(name, data)
    assert conv.finish() == [] and conv.done_allowed


def test_error_event_becomes_an_error_chunk_and_no_done():
    conv = ChunkConverter("m", include_usage=False)
    out = []
    for name, data in events_for("partial")[:3]:
        out += conv.feed(name, data)
    out += conv.feed("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert out[-1] == {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}}
    assert conv.feed("message_stop", {"type": "message_stop"}) == [] and conv.finish() == []
    assert not conv.done_allowed


def test_cut_stream_ends_with_an_error_chunk():
    conv = ChunkConverter("m", include_usage=False)
    for name, data in events_for("partial")[:4]:
        conv.feed(name, data)
    tail = conv.finish()
    assert len(tail) == 1 and "ended before the answer was complete" in tail[0]["error"]["message"]
    assert not conv.done_allowed and conv.fail(UpstreamError("again")) == []


def test_error_chunk_for_a_raised_error_and_context_overflow_code():
    assert error_chunk(Overloaded("busy"))["error"]["type"] == "overloaded_error"
    overflow = from_upstream_status(400, "prompt is too long: 250000 tokens > 200000 maximum", "anthropic")
    assert error_chunk(overflow)["error"]["code"] == "context_length_exceeded"
    assert InvalidRequest("messages: required").openai_body()["error"]["code"] == "invalid_request_error"


def test_passthrough_check():
    ok = OpenAIStreamCheck("oai")
    assert ok.feed({"choices": [{"delta": {"content": "x"}, "finish_reason": None}]})
    assert ok.feed({"choices": [{"delta": {}, "finish_reason": "stop"}]}) and ok.feed("[DONE]") and ok.end() == []
    failed = OpenAIStreamCheck("oai")
    assert failed.feed({"error": {"message": "melted"}})  # forwarded: the SDK raises on it
    assert not failed.feed("[DONE]") and failed.end() == []
    cut = OpenAIStreamCheck("oai")
    cut.feed({"choices": [{"delta": {"content": "x"}, "finish_reason": None}]})
    assert "ended before" in cut.end()[0]["error"]["message"]
    raised = OpenAIStreamCheck("oai")
    assert raised.fail(UpstreamError("oai: idle timeout"))[0]["error"]["message"] == "oai: idle timeout"


# ------------------------------------------------------------------------------ Anthropic passthrough

def test_beta_lines_merged():
    assert merge_beta(["claude-code-20250219,context-1m-2025-08-07", " interleaved-thinking-2025-05-14 ",
                       "context-1m-2025-08-07,,"]) == \
        "claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14"
    assert merge_beta([]) == ""


def test_json_answer_to_a_stream_is_replayed_as_events():
    msg = {"id": "msg_9", "type": "message", "role": "assistant", "model": "claude-x",
           "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                       {"type": "redacted_thinking", "data": "xyz"},
                       {"type": "text", "text": "Hi"},
                       {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}}],
           "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 4}}
    import orjson

    events = message_as_events(orjson.dumps(msg), "anthropic")
    check_grammar(events)
    back = assemble(events)
    assert back["content"] == msg["content"] and back["stop_reason"] == "tool_use"
    assert back["usage"]["output_tokens"] == 4


def test_json_error_or_garbage_to_a_stream_is_an_error():
    with pytest.raises(Exception) as exc:
        message_as_events(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "a")
    assert exc.value.status == 529
    for bad in (b"<html>", b"[1,2]", b'{"content": "text"}'):
        with pytest.raises(UpstreamError):
            message_as_events(bad, "a")
