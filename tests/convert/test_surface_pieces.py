"""Pure pieces of the OpenAI surface (temperature, JSON output, error code) and the replay of a JSON answer
as an event stream (an Anthropic-kind upstream that ignores ``stream: true``)."""

from __future__ import annotations

import pytest

from llmproxy.convert.events import assemble, message_events
from llmproxy.convert.inbound import to_anthropic
from llmproxy.convert.quirks import Quirks
from llmproxy.convert.request import to_openai
from llmproxy.errors import InvalidRequest, from_upstream_status
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


# ---------------------------------------------------------------- a JSON answer replayed as a stream

def test_any_message_replays_as_a_valid_event_stream():
    """An Anthropic-kind upstream that ignores stream: true: its message, whatever blocks it holds, becomes a
    stream the SDK folds back into the same message."""
    msg = {"id": "msg_9", "type": "message", "role": "assistant", "model": "claude-x",
           "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                       {"type": "redacted_thinking", "data": "xyz"},
                       {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                       {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                       {"type": "text", "text": ""},
                       {"type": "text", "text": "Hi"},
                       {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}}],
           "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 4}}
    events = message_events(msg)
    check_grammar(events)
    back = assemble(events)
    assert back["content"] == msg["content"] and back["stop_reason"] == "tool_use"
    assert back["usage"]["output_tokens"] == 4


def test_context_overflow_code_on_the_openai_surface():
    overflow = from_upstream_status(400, "prompt is too long: 250000 tokens > 200000 maximum", "anthropic")
    assert overflow.openai_body()["error"]["code"] == "context_length_exceeded"
    assert InvalidRequest("messages: required").openai_body()["error"]["code"] == "invalid_request_error"


# ------------------------------------------------------------------------------ malformed OpenAI requests

@pytest.mark.parametrize("extra,names", [
    ({"tools": [{"type": "function"}]}, "tools.0.function.name"),
    ({"tools": [{"type": "function", "function": "f"}]}, "tools.0.function.name"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools.0.function.name"),
    ({"tools": {"type": "function"}}, "tools: expected a list"),
    ({"messages": HI + [{"role": "assistant", "tool_calls": ["x"]}]}, "messages.1.tool_calls.0.function"),
    ({"messages": HI + [{"role": "assistant", "tool_calls": [{"function": None}]}]}, "messages.1.tool_calls.0"),
    ({"messages": HI + [{"role": "assistant", "tool_calls": {"id": "x"}}]}, "messages.1.tool_calls"),
])
def test_malformed_tools_and_tool_calls_are_named_not_crashed_on(extra, names):
    """A client's malformed tool definition or tool call is a 400 naming the field (it had been a KeyError,
    i.e. a 500, for a tool without ``function``)."""
    with pytest.raises(InvalidRequest) as e:
        to_anthropic({"model": "m", "messages": HI, **extra})
    assert names in e.value.message


def test_reasoning_effort_needs_room_in_max_tokens():
    assert "thinking" not in to_anthropic({"model": "m", "messages": HI, "reasoning_effort": "high", "max_tokens": 100})
    body = to_anthropic({"model": "m", "messages": HI, "reasoning_effort": "low", "max_tokens": 4096})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
