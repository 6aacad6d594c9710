"""Anthropic clients through an OpenAI-compatible upstream: the official anthropic SDK via /v1/messages."""

from __future__ import annotations

import aiohttp
import anthropic
import pytest

from tests.conftest import wait_log

WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                            "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME = {"name": "get_time", "description": "Time in a zone",
        "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}


def client(url):
    return anthropic.AsyncAnthropic(base_url=url + "/p/oai", api_key="x", max_retries=0)


async def test_stream_text_and_usage(proxy, fake_openai, home):
    url, _ = proxy
    fake_openai.script.append({"text": "Hello there from a converted stream"})
    async with client(url) as c:
        async with c.messages.stream(model="claude-opus-4-8", max_tokens=64000, system=[
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=1; cc_entrypoint=cli;"},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": [{"type": "text", "text": "hi",
                                                        "cache_control": {"type": "ephemeral"}}]}]) as s:
            text = "".join([t async for t in s.text_stream])
            final = await s.get_final_message()
    assert text == "Hello there from a converted stream"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 30 and final.usage.cache_read_input_tokens == 20
    assert final.usage.output_tokens == 9
    sent = fake_openai.requests[-1]
    assert sent["headers"]["Authorization"] == "Bearer sk-fakeoai-secret-13579"
    body = sent["body"]
    assert body["model"] == "fake-model"
    assert body["max_tokens"] == 8192  # capped by the provider's quirk
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}  # billing header dropped
    assert "cache_control" not in str(body)
    assert body["stream_options"] == {"include_usage": True}
    rec = (await wait_log(home, 1))[-1]
    assert rec["target"] == "fakeoai/fake-model" and rec["usage"]["output_tokens"] == 9


async def test_reasoning_becomes_signed_thinking_block(proxy, fake_openai):
    url, _ = proxy
    fake_openai.script.append({"reasoning": "first I consider the question", "text": "Answer."})
    async with client(url) as c:
        async with c.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "q"}]) as s:
            final = await s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking.strip() == "first I consider the question"
    assert final.content[0].signature.startswith("llmproxy1.")


@pytest.mark.parametrize("interleaved", [False, True])
async def test_several_tool_calls_split_into_fragments(proxy, fake_openai, interleaved):
    url, _ = proxy
    fake_openai.script.append({"text": "Let me look.", "interleaved": interleaved, "frag": 3,
                               "tools": [("get_weather", {"city": "Paris, \"FR\" ✓"}), ("get_time", {"tz": "UTC"})]})
    async with client(url) as c:
        async with c.messages.stream(model="m", max_tokens=100, tools=[WEATHER, TIME],
                                     messages=[{"role": "user", "content": "weather and time?"}]) as s:
            final = await s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[1].input == {"city": "Paris, \"FR\" ✓"} and final.content[1].id == "call_fake_0000"
    assert final.content[2].input == {"tz": "UTC"}
    params = fake_openai.requests[-1]["body"]["tools"][0]["function"]["parameters"]
    assert "$schema" not in params


async def test_tool_round_trip_keeps_ids(proxy, fake_openai):
    url, _ = proxy
    async with client(url) as c:
        first = await c.messages.create(model="m", max_tokens=100, tools=[WEATHER],
                                        messages=[{"role": "user", "content": "weather?"}])
        tu = next(b for b in first.content if b.type == "tool_use")
        second = await c.messages.create(model="m", max_tokens=100, tools=[WEATHER], messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu.id, "content": "18C"},
                                         {"type": "text", "text": "and tomorrow?"}]}])
    assert second.content[0].text == "The tool said: 18C"
    msgs = fake_openai.requests[-1]["body"]["messages"]
    assert msgs[1]["tool_calls"][0]["id"] == tu.id
    assert msgs[2] == {"role": "tool", "tool_call_id": tu.id, "content": "18C"}
    assert msgs[3] == {"role": "user", "content": "and tomorrow?"}


async def test_no_usage_still_reports_output_tokens(proxy, fake_openai):
    url, _ = proxy
    fake_openai.script.append({"text": "a b c d e f g h", "no_usage": True})
    async with client(url) as c:
        async with c.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "q"}]) as s:
            final = await s.get_final_message()
    assert final.usage.output_tokens >= 1


async def test_error_before_stream_is_anthropic_shaped_and_falls_back(proxy, fake_openai, fake_anthropic):
    url, _ = proxy
    fake_openai.script.append({"status": 503, "message": "no capacity"})
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/oai/v1/messages", json={"model": "m", "max_tokens": 10, "stream": True,
                                                            "messages": [{"role": "user", "content": "hi"}]}) as r:
            assert r.status == 200
            assert "target=anthropic/claude-sonnet-4-5" in r.headers["x-llmproxy-route"]
    fake_openai.script.append({"status": 400, "message": "bad thing", "code": "invalid_value"})
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/oai/v1/messages", json={"model": "m", "max_tokens": 10,
                                                            "messages": [{"role": "user", "content": "hi"}]}) as r:
            body = await r.json()
    assert r.status == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and "fakeoai: bad thing" in body["error"]["message"]
    assert "sk-fakeoai" not in str(body)


async def test_context_length_error_maps_to_prompt_too_long(proxy, fake_openai, fake_anthropic):
    url, _ = proxy
    fake_openai.script.append({"status": 400, "message": "This model's maximum context length is 128000 tokens",
                               "code": "context_length_exceeded"})
    async with client(url) as c:
        with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
            await c.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "q"}])


async def test_error_inside_stream_becomes_error_event(proxy, fake_openai):
    url, _ = proxy
    fake_openai.script.append({"text": "one two three four", "stream_error_after": 3, "delay": 0.05})
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/oai/v1/messages", json={"model": "m", "max_tokens": 10, "stream": True,
                                                            "messages": [{"role": "user", "content": "hi"}]}) as r:
            text = await r.text()
    assert r.status == 200
    assert "event: error" in text and "upstream melted" in text and "message_stop" not in text


async def test_json_answer_to_a_stream_request_is_replayed_as_events(proxy, fake_openai):
    url, _ = proxy
    fake_openai.script.append({"text": "not really streamed", "json_when_streaming": True})
    async with client(url) as c:
        async with c.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "q"}]) as s:
            final = await s.get_final_message()
    assert final.content[0].text == "not really streamed"


async def test_thinking_is_echoed_to_deepseek_style_and_stripped_for_anthropic(proxy, fake_openai, fake_anthropic):
    url, _ = proxy
    history = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": [
                   {"type": "thinking", "thinking": "my reasoning", "signature": "llmproxy1.abc"},
                   {"type": "thinking", "thinking": "real claude thought", "signature": "EqQBCkgIARABGAIiQL"},
                   {"type": "text", "text": "A."}]},
               {"role": "user", "content": "and?"}]
    async with aiohttp.ClientSession() as s:
        await s.post(url + "/p/oai/v1/messages", json={"model": "m", "max_tokens": 10, "messages": history})
        await s.post(url + "/p/test/v1/messages", json={"model": "m", "max_tokens": 10, "messages": history})
    oai_assistant = fake_openai.requests[-1]["body"]["messages"][1]
    assert oai_assistant["reasoning_content"].startswith("my reasoning")
    sent = fake_anthropic.requests[-1]["body"]["messages"][1]["content"]
    assert [b.get("signature") for b in sent if b["type"] == "thinking"] == ["EqQBCkgIARABGAIiQL"]


async def test_count_tokens_estimated_for_openai_targets(proxy, fake_openai):
    url, _ = proxy
    async with client(url) as c:
        n = (await c.messages.count_tokens(model="m", messages=[{"role": "user", "content": "hello " * 100}])).input_tokens
    assert n > 100 and fake_openai.requests == []


async def test_garbage_chunks_from_upstream_are_skipped(proxy, fake_openai):
    """Non-object JSON, comments and stray text lines inside an upstream stream neither crash the proxy nor
    cut the answer (OpenAI-compatible servers vary). Broken JSON is different: something was lost, so it is
    an upstream error (tests/faults covers it)."""
    url, _ = proxy
    fake_openai.script.append({"raw_lines": [
        b'data: {"choices":[{"index":0,"delta":{"content":"ok "}}]}', b"data: [1, 2, 3]", b"data: keep-alive",
        b": comment", b'data: "a string"',
        b'data: {"choices":[{"index":0,"delta":{"content":"done"},"finish_reason":"stop"}]}', b"data: [DONE]"]})
    async with client(url) as c:
        async with c.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as s:
            final = await s.get_final_message()
    assert final.content[0].text == "ok done" and final.stop_reason == "end_turn"
