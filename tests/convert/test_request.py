"""Anthropic -> OpenAI request conversion: one case per rule, and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy.convert.inbound import to_anthropic
from llmproxy.convert.quirks import Quirks
from llmproxy.convert.request import to_openai

U = {"role": "user", "content": "hi"}


def conv(body, **quirks):
    return to_openai({"model": "x", "max_tokens": 100, "messages": [U], **body}, model="up", provider="p",
                     quirks=Quirks(**quirks))


CASES = [
    ("system string", {"system": "S"}, {}, lambda o: o["messages"][0] == {"role": "system", "content": "S"}),
    ("system blocks minus billing", {"system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=1;"},
        {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "B"}]}, {},
     lambda o: o["messages"][0] == {"role": "system", "content": "A\n\nB"}),
    ("max_tokens capped by quirk", {"max_tokens": 64000}, {"max_tokens_cap": 8192}, lambda o: o["max_tokens"] == 8192),
    ("max_completion_tokens field", {}, {"max_tokens_field": "max_completion_tokens"},
     lambda o: o["max_completion_tokens"] == 100 and "max_tokens" not in o),
    ("sampling", {"temperature": 0.2, "top_p": 0.9, "top_k": 5}, {}, lambda o: o["temperature"] == 0.2
     and o["top_p"] == 0.9 and "top_k" not in o),
    ("top_k when allowed", {"top_k": 5}, {"top_k": True}, lambda o: o["top_k"] == 5),
    ("stop sequences", {"stop_sequences": ["a", "b"]}, {}, lambda o: o["stop"] == ["a", "b"]),
    ("user id", {"metadata": {"user_id": "u1"}}, {}, lambda o: o["user"] == "u1"),
    ("long user id hashed", {"metadata": {"user_id": "x" * 200}}, {}, lambda o: len(o["user"]) <= 64),
    ("stream usage", {"stream": True}, {}, lambda o: o["stream_options"] == {"include_usage": True}),
    ("no stream usage quirk", {"stream": True}, {"stream_usage": False}, lambda o: "stream_options" not in o),
    ("anthropic-only fields dropped", {"context_management": {"edits": []}, "output_config": {"effort": "high"},
                                       "service_tier": "auto", "container": "c"}, {},
     lambda o: not {"context_management", "output_config", "service_tier", "container", "thinking"} & set(o)),
    ("tool_choice any", {"tools": [{"name": "t", "input_schema": {"type": "object"}}], "tool_choice": {"type": "any"}},
     {}, lambda o: o["tool_choice"] == "required"),
    ("tool_choice tool + no parallel", {"tools": [{"name": "t", "input_schema": {}}],
                                        "tool_choice": {"type": "tool", "name": "t", "disable_parallel_tool_use": True}},
     {}, lambda o: o["tool_choice"] == {"type": "function", "function": {"name": "t"}} and o["parallel_tool_calls"] is False),
    ("tool_choice none", {"tools": [{"name": "t", "input_schema": {}}], "tool_choice": {"type": "none"}}, {},
     lambda o: o["tool_choice"] == "none"),
    ("server tools dropped", {"tools": [{"type": "web_search_20250305", "name": "web_search"},
                                        {"name": "t", "input_schema": {}}], "tool_choice": {"type": "tool", "name": "web_search"}},
     {}, lambda o: [t["function"]["name"] for t in o["tools"]] == ["t"] and "tool_choice" not in o),
    ("strict schema cleaned", {"tools": [{"name": "t", "input_schema": {
        "$schema": "x", "type": "object", "properties": {"format": {"type": "string", "format": "uri"}}}}]},
     {"strict_schema": True},
     lambda o: o["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {"format": {"type": "string"}}}),
    ("thinking -> reasoning_effort", {"thinking": {"type": "enabled", "budget_tokens": 20000}},
     {"reasoning": "reasoning_effort"}, lambda o: o["reasoning_effort"] == "high"),
    ("adaptive -> effort from output_config", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}},
     {"reasoning": "reasoning_effort"}, lambda o: o["reasoning_effort"] == "low"),
    ("thinking -> openrouter reasoning", {"thinking": {"type": "enabled", "budget_tokens": 3000}},
     {"reasoning": "openrouter"}, lambda o: o["reasoning"] == {"max_tokens": 3000}),
    ("thinking not sent to deepseek", {"thinking": {"type": "enabled", "budget_tokens": 3000}},
     {"reasoning": "reasoning_content"}, lambda o: "reasoning" not in o and "reasoning_effort" not in o),
    ("mid-conversation system", {"messages": [U, {"role": "system", "content": "note"}]}, {},
     lambda o: o["messages"][-1] == {"role": "system", "content": "note"}),
    ("images base64 and url", {"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, {"type": "text", "text": "what"}]}]}, {},
     lambda o: o["messages"][0]["content"] == [
         {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAA"}},
         {"type": "image_url", "image_url": {"url": "https://x/y.png"}}, {"type": "text", "text": "what"}]),
    ("text document", {"messages": [{"role": "user", "content": [
        {"type": "document", "title": "T", "source": {"type": "text", "media_type": "text/plain", "data": "body"}}]}]},
     {}, lambda o: o["messages"][0]["content"] == "T\n\nbody"),
    ("pdf when supported", {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVB"}}]}]},
     {"pdf": True}, lambda o: o["messages"][0]["content"][0]["file"]["file_data"].endswith("base64,JVB")),
    ("tool results first, is_error, order", {"messages": [
        U, {"role": "assistant", "content": [{"type": "text", "text": "t"},
                                             {"type": "tool_use", "id": "toolu_A", "name": "f", "input": {"a": 1}},
                                             {"type": "tool_use", "id": "toolu_B", "name": "g", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_A", "content": [{"type": "text", "text": "ra"}]},
            {"type": "tool_result", "tool_use_id": "toolu_B", "content": "boom", "is_error": True},
            {"type": "text", "text": "next"}]}]}, {},
     lambda o: o["messages"][1]["tool_calls"][1]["id"] == "toolu_B" and o["messages"][1]["content"] == "t"
     and o["messages"][2] == {"role": "tool", "tool_call_id": "toolu_A", "content": "ra"}
     and o["messages"][3] == {"role": "tool", "tool_call_id": "toolu_B", "content": "Error: boom"}
     and o["messages"][4] == {"role": "user", "content": "next"}),
    ("image inside tool result follows as user message", {"messages": [
        U, {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_A", "name": "Read", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_A", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "PNG"}}]}]}]}, {},
     lambda o: o["messages"][2]["role"] == "tool" and o["messages"][3]["content"][0]["type"] == "image_url"),
    ("assistant thinking echoed when asked", {"messages": [
        U, {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                             {"type": "redacted_thinking", "data": "x"},
                                             {"type": "text", "text": "ok"}]}, U]}, {"reasoning_in_history": True},
     lambda o: o["messages"][1] == {"role": "assistant", "content": "ok", "reasoning_content": "hmm"}),
    ("assistant thinking dropped otherwise", {"messages": [
        U, {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                             {"type": "text", "text": "ok"}]}, U]}, {},
     lambda o: o["messages"][1] == {"role": "assistant", "content": "ok"}),
    ("cache_control kept for openrouter-claude", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}]}]}, {"cache_control": True},
     lambda o: o["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}),
]


@pytest.mark.parametrize("name,body,quirks,check", CASES, ids=[c[0] for c in CASES])
def test_rules(name, body, quirks, check):
    assert check(conv(body, **quirks))


# --------------------------------------------------------------------------------------- properties

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
ident = st.from_regex(r"toolu_[A-Za-z0-9]{8,12}", fullmatch=True)
json_val = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | text,
                        lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=6)


@st.composite
def conversation(draw):
    msgs = []
    for _ in range(draw(st.integers(1, 4))):
        msgs.append({"role": "user", "content": [{"type": "text", "text": t} for t in draw(st.lists(text, min_size=1, max_size=2))]})
        calls = draw(st.lists(st.tuples(ident, st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
                                        st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), json_val, max_size=3)),
                              max_size=2, unique_by=lambda c: c[0]))
        blocks = [{"type": "text", "text": draw(text)}] + [{"type": "tool_use", "id": i, "name": n, "input": a}
                                                           for i, n, a in calls]
        msgs.append({"role": "assistant", "content": blocks})
        if calls:
            msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": draw(text)}
                                                     for i, _, _ in calls]})
    if msgs[-1]["role"] == "assistant":
        msgs.append({"role": "user", "content": [{"type": "text", "text": draw(text)}]})
    return {"model": "m", "max_tokens": 50, "system": draw(text), "messages": msgs}


def essence(body: dict) -> tuple:
    texts, calls, results = [], [], []
    for m in body["messages"]:
        for b in m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]:
            if b["type"] == "text":
                texts.append(b["text"])
            elif b["type"] == "tool_use":
                calls.append((b["id"], b["name"], b["input"]))
            elif b["type"] == "tool_result":
                results.append((b["tool_use_id"], b["content"]))
    return body.get("system"), calls, results, "\n\n".join(texts)


@settings(max_examples=200, deadline=None)
@given(conversation())
def test_round_trip_keeps_text_tool_calls_and_results(body):
    back = to_anthropic(to_openai(body, model="m"))
    s1, c1, r1, t1 = essence(body)
    s2, c2, r2, t2 = essence(back)
    assert (s1, c1, r1) == (s2, c2, r2)
    for piece in (b["text"] for m in body["messages"] if isinstance(m["content"], list)
                  for b in m["content"] if b["type"] == "text"):
        assert piece in t2


@settings(max_examples=200, deadline=None)
@given(conversation())
def test_conversion_is_valid_openai(body):
    out = to_openai(body, model="m")
    ids_open: set[str] = set()
    for m in out["messages"]:
        assert m["role"] in ("system", "user", "assistant", "tool")
        if m["role"] == "assistant":
            ids_open |= {tc["id"] for tc in m.get("tool_calls", [])}
            assert m.get("content") is not None or m.get("tool_calls")
        if m["role"] == "tool":
            assert m["tool_call_id"] in ids_open  # every tool message answers a call made before it


def test_structured_output_per_provider():
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    body = {"system": "Generate a title.", "output_config": {"format": {"type": "json_schema", "schema": schema}}}
    out = conv(body)
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "response", "schema": schema, "strict": False}}
    out = conv(body, structured_output="json_object")
    assert out["response_format"] == {"type": "json_object"}
    assert out["messages"][0]["role"] == "system" and '"title"' in out["messages"][0]["content"]
    assert "response_format" not in conv(body, structured_output="none")
