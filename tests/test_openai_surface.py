"""The inbound OpenAI surface: the official openai SDK through /v1/chat/completions."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest

from tests.conftest import wait_log

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def oclient(url: str, profile: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/p/{profile}/v1", api_key="x", max_retries=0)


async def test_converted_non_stream_to_anthropic(proxy, fake_anthropic, home):
    url, _ = proxy
    async with oclient(url, "test") as c:
        r = await c.chat.completions.create(model="gpt-4o", messages=[
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}], max_tokens=50)
    assert r.choices[0].message.content == "Hello from the fake upstream."
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 14 and r.usage.completion_tokens == 7
    sent = fake_anthropic.requests[-1]["body"]
    assert sent["system"] == "be brief" and sent["max_tokens"] == 50
    rec = (await wait_log(home, 1))[-1]
    assert rec["endpoint"] == "chat_completions" and rec["mode"] == "converted"


async def test_converted_stream_with_tools_to_anthropic(proxy, fake_anthropic):
    url, _ = proxy
    async with oclient(url, "test") as c:
        stream = await c.chat.completions.create(model="gpt-4o", stream=True, stream_options={"include_usage": True},
                                                 tools=[WEATHER], messages=[{"role": "user", "content": "weather?"}])
        text, args, name, finish, usage = "", "", None, None, None
        async for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for ch in chunk.choices:
                text += ch.delta.content or ""
                for tc in ch.delta.tool_calls or []:
                    name = tc.function.name or name
                    args += tc.function.arguments or ""
                finish = ch.finish_reason or finish
    assert text == "Let me check." and name == "get_weather" and args == '{"city": "Paris"}'
    assert finish == "tool_calls" and usage.completion_tokens == 7
    assert fake_anthropic.requests[-1]["body"]["tools"][0]["name"] == "get_weather"


async def test_passthrough_to_openai_kind(proxy, fake_openai, home):
    url, _ = proxy
    async with oclient(url, "oai") as c:
        r = await c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=99999)
        assert r.choices[0].message.content == "Hello from the fake OpenAI upstream."
        stream = await c.chat.completions.create(model="gpt-4o", stream=True, tools=[WEATHER],
                                                 messages=[{"role": "user", "content": "weather?"}])
        args = ""
        async for chunk in stream:
            for ch in chunk.choices:
                for tc in ch.delta.tool_calls or []:
                    args += tc.function.arguments or ""
    assert args == '{"city": "Paris"}'
    sent = fake_openai.requests[0]["body"]
    assert sent["model"] == "fake-model" and sent["max_tokens"] == 8192
    recs = await wait_log(home, 2)
    assert {r["mode"] for r in recs} == {"passthrough"}
    assert recs[-1]["usage"]["output_tokens"] == 9


async def test_tool_loop_and_image_convert(proxy, fake_anthropic):
    url, _ = proxy
    async with oclient(url, "test") as c:
        await c.chat.completions.create(model="m", tools=[WEATHER], messages=[
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"X"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}])
    msgs = fake_anthropic.requests[-1]["body"]["messages"]
    assert msgs[0]["content"][1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                 "data": "iVBOR"}}
    assert msgs[1]["content"][0] == {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "X"}}
    assert msgs[2]["content"][0] == {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}


async def test_errors_use_openai_shape(proxy, fake_anthropic, fake_backup):
    url, _ = proxy
    async with oclient(url, "test") as c:
        with pytest.raises(openai.BadRequestError) as exc:
            await c.chat.completions.create(model="m", messages=[])
        assert "messages" in str(exc.value)
        fake_anthropic.script.append({"status": 429, "error_type": "rate_limit_error"})
        fake_backup.script.append({"status": 429, "error_type": "rate_limit_error"})
        with pytest.raises(openai.RateLimitError):
            await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/chat/completions", data=b"{oops",
                          headers={"content-type": "application/json"}) as r:
            body = await r.json()
    assert r.status == 400 and set(body) == {"error"} and body["error"]["message"]


async def test_openai_stream_error_mid_stream(proxy, fake_openai):
    url, _ = proxy
    fake_openai.script.append({"text": "a b c d", "stream_error_after": 2, "delay": 0.05})
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/oai/v1/chat/completions", json={
                "model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
            text = await r.text()
    assert "upstream melted" in text  # passthrough hands the upstream's own error chunk on


async def test_token_estimate_is_of_the_anthropic_form_on_both_surfaces(proxy, fake_anthropic, home):
    """The OpenAI surface estimates the converted (Anthropic) request, not the OpenAI bytes it came as: the
    same conversation gets the same estimate on both surfaces, however the client padded its JSON."""
    url, _ = proxy
    text = "summarise the design of the proxy " * 400  # ~14 KB: the estimate is far from the floor
    anthropic = {"model": "claude-x", "max_tokens": 50, "system": "be brief",
                 "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}
    chat = {"model": "claude-x", "max_tokens": 50, "messages": [{"role": "system", "content": "be brief"},
                                                                {"role": "user", "content": text}]}
    padded = b"{" + b" " * 40_000 + orjson.dumps(chat)[1:]  # 40 KB of blanks in the OpenAI JSON
    async with aiohttp.ClientSession() as s:
        for path, body in (("/p/test/v1/messages", orjson.dumps(anthropic)), ("/p/test/v1/chat/completions", padded)):
            async with s.post(url + path, data=body, headers={"content-type": "application/json"}) as r:
                assert r.status == 200, await r.text()
    recs = await wait_log(home, 2)
    by_endpoint = {r["endpoint"]: r["decision"]["estimated_tokens"] for r in recs[-2:]}
    assert by_endpoint["chat_completions"] == by_endpoint["messages"] > 3000, by_endpoint
