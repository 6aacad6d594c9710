"""/v1/messages through the proxy to a fake Anthropic upstream, driven by the official anthropic SDK."""

from __future__ import annotations

import anthropic
import pytest

from tests.conftest import UPSTREAM_KEY, wait_log

WEATHER_TOOL = {"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def client(url: str, **kw) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="client-key-not-forwarded", max_retries=0, **kw)


async def test_non_streaming_roundtrip(proxy, fake_anthropic, home):
    url, _ = proxy
    async with client(url) as c:
        msg = await c.messages.create(model="claude-opus-4-8", max_tokens=100,
                                      messages=[{"role": "user", "content": "hello"}])
    assert msg.content[0].text == "Hello from the fake upstream."
    assert msg.usage.input_tokens == 11
    up = fake_anthropic.requests[-1]
    # routed: the test profile's default model replaced the requested one
    assert up["body"]["model"] == "claude-sonnet-4-5"
    # the provider's key is used, the client's is not forwarded
    assert up["headers"]["x-api-key"] == UPSTREAM_KEY
    assert "client-key-not-forwarded" not in str(up["headers"])
    recs = await wait_log(home, 1)
    assert recs[-1]["usage"]["output_tokens"] == 7 and recs[-1]["status"] == 200


async def test_streaming_text(proxy, fake_anthropic, home):
    url, _ = proxy
    async with client(url) as c:
        async with c.messages.stream(model="claude-opus-4-8", max_tokens=100,
                                     messages=[{"role": "user", "content": "hello"}]) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
    assert text == "Hello from the fake upstream."
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7
    recs = await wait_log(home, 1)
    assert recs[-1]["stream"] is True
    assert recs[-1]["usage"]["input_tokens"] == 11 and recs[-1]["usage"]["output_tokens"] == 7
    assert recs[-1]["stop_reason"] == "end_turn"
    assert recs[-1]["ttft_ms"] is not None


async def test_stream_split_into_tiny_chunks_reaches_client_intact(proxy, fake_anthropic):
    url, _ = proxy
    fake_anthropic.script.append({"chunk_bytes": 3, "text": "split — across ✓ tiny chunks"})
    async with client(url) as c:
        async with c.messages.stream(model="m", max_tokens=100,
                                     messages=[{"role": "user", "content": "x"}]) as stream:
            final = await stream.get_final_message()
    assert final.content[0].text == "split — across ✓ tiny chunks"


async def test_tool_use_round_trip_passes_through_untouched(proxy, fake_anthropic):
    url, _ = proxy
    async with client(url) as c:
        async with c.messages.stream(model="claude-opus-4-8", max_tokens=200, tools=[WEATHER_TOOL],
                                     messages=[{"role": "user", "content": "weather in Paris?"}]) as stream:
            first = await stream.get_final_message()
        assert first.stop_reason == "tool_use"
        tool = next(b for b in first.content if b.type == "tool_use")
        assert tool.id == "toolu_fake_01" and tool.input == {"city": "Paris"}
        second = await c.messages.create(
            model="claude-opus-4-8", max_tokens=200, tools=[WEATHER_TOOL],
            messages=[{"role": "user", "content": "weather in Paris?"},
                      {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id,
                                                    "content": "18C and sunny"}]}])
    assert second.stop_reason == "end_turn"
    sent = fake_anthropic.requests[-1]["body"]["messages"]
    assert sent[1]["content"][1]["id"] == "toolu_fake_01"
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_fake_01", "content": "18C and sunny"}


async def test_request_bytes_forwarded_unchanged_when_model_matches(proxy, fake_anthropic):
    url, _ = proxy
    import aiohttp

    raw = b'{"model":"claude-sonnet-4-5",  "max_tokens":5,"messages":[{"role":"user","content":"hi"}],"zz_unknown":1}'
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages?beta=true", data=raw,
                          headers={"anthropic-beta": "claude-code-20250219,context-1m-2025-08-07",
                                   "anthropic-version": "2023-06-01", "content-type": "application/json"}) as r:
            assert r.status == 200
            assert r.headers["request-id"].startswith("req_")
            assert "scenario=default" in r.headers["x-llmproxy-route"]
            assert r.headers["x-upstream-request-id"] == "req_upstream_1"
    up = fake_anthropic.requests[-1]
    assert up["raw"] == raw  # byte for byte, unknown keys and odd spacing included
    assert up["query"] == "beta=true"
    assert up["headers"]["anthropic-beta"] == "claude-code-20250219,context-1m-2025-08-07"
    assert up["headers"]["anthropic-version"] == "2023-06-01"


async def test_adaptive_thinking_adapted_for_a_model_without_it(proxy, fake_anthropic):
    url, _ = proxy
    import aiohttp

    body = {"model": "claude-opus-4-8", "max_tokens": 64000, "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high"}, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json=body) as r:
            assert r.status == 200
    sent = fake_anthropic.requests[-1]["body"]
    assert sent["model"] == "claude-sonnet-4-5"
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 16000}
    assert "output_config" not in sent


async def test_count_tokens_forwarded_to_anthropic(proxy, fake_anthropic):
    url, _ = proxy
    async with client(url) as c:
        res = await c.messages.count_tokens(model="claude-opus-4-8",
                                            messages=[{"role": "user", "content": "count me"}])
    assert res.input_tokens >= 4242
    assert fake_anthropic.requests[-1]["path"] == "/v1/messages/count_tokens"


async def test_count_tokens_estimate_grows_with_system_and_tools(proxy_factory):
    url, _ = await proxy_factory(simulate=True)
    msgs = [{"role": "user", "content": "count me please"}]
    async with client(url) as c:
        base = (await c.messages.count_tokens(model="m", messages=msgs)).input_tokens
        with_sys = (await c.messages.count_tokens(model="m", messages=msgs, system="You are terse. " * 50)).input_tokens
        with_tools = (await c.messages.count_tokens(model="m", messages=msgs, system="You are terse. " * 50,
                                                    tools=[WEATHER_TOOL] * 3)).input_tokens
    assert 0 < base < with_sys < with_tools


async def test_models_list_and_get_with_both_sdks(proxy):
    url, _ = proxy
    async with client(url) as c:
        page = await c.models.list(limit=2)
        assert len(page.data) == 2 and page.has_more
        all_ids = [m.id async for m in await c.models.list(limit=3)]
        assert "claude-sonnet-4-5" in all_ids and len(all_ids) == len(set(all_ids))
        one = await c.models.retrieve("claude-sonnet-4-5")
        assert one.display_name == "Claude Sonnet 4.5"
        with pytest.raises(anthropic.NotFoundError):
            await c.models.retrieve("no-such-model")
    import openai

    oc = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    ids = [m.id async for m in oc.models.list()]
    assert "claude-sonnet-4-5" in ids
    m = await oc.models.retrieve("deepseek/deepseek-r1-0528")
    assert m.owned_by == "openrouter"
    await oc.close()


async def test_models_pagination_before_after(proxy):
    url, _ = proxy
    import aiohttp

    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/v1/models?limit=1000") as r:
            everything = [m["id"] for m in (await r.json())["data"]]
        async with s.get(url + f"/v1/models?limit=2&after_id={everything[1]}") as r:
            page = await r.json()
        assert [m["id"] for m in page["data"]] == everything[2:4]
        assert page["first_id"] == everything[2] and page["last_id"] == everything[3]
        async with s.get(url + f"/v1/models?limit=2&before_id={everything[3]}") as r:
            page = await r.json()
        assert [m["id"] for m in page["data"]] == everything[1:3] and page["has_more"] is True
        async with s.get(url + "/v1/models?limit=0") as r:
            assert r.status == 400
