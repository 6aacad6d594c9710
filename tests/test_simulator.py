"""The simulator: labelled, deterministic, honours max_tokens and stop_sequences, paced per model."""

from __future__ import annotations

import anthropic

from llmproxy.providers.simulator import shape_output, split_tokens


def test_shape_output_rules():
    text = "alpha beta gamma STOP delta"
    pieces, stop, seq = shape_output(text, 100, ["STOP"])
    assert "".join(pieces) == "alpha beta gamma " and (stop, seq) == ("stop_sequence", "STOP")
    pieces, stop, seq = shape_output(text, 2, [])
    assert len(pieces) == 2 and (stop, seq) == ("max_tokens", None)
    pieces, stop, _ = shape_output(text, 100, ["absent"])
    assert "".join(pieces) == text and stop == "end_turn"
    assert "".join(split_tokens("a  b\nc ")) == "a  b\nc "


async def test_simulator_through_the_sdk(proxy_factory):
    url, _ = await proxy_factory(simulate=True)
    c = anthropic.AsyncAnthropic(base_url=url + "/p/fast", api_key="x", max_retries=0)
    msg = await c.messages.create(model="m", max_tokens=3, messages=[{"role": "user", "content": "hello there"}])
    assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 3
    assert msg.content[0].text.startswith("[llmproxy simulator]")
    async with c.messages.stream(model="m", max_tokens=500, stop_sequences=["would use"],
                                 messages=[{"role": "user", "content": "hi"}]) as s:
        final = await s.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "would use"
    assert final.content[0].text == "[llmproxy simulator] profile=fast scenario=default "
    again = await c.messages.create(model="m", max_tokens=3, messages=[{"role": "user", "content": "hello there"}])
    assert again.id == msg.id and again.content == msg.content  # deterministic
    await c.close()


def test_pacing_follows_the_catalog_per_model():
    from llmproxy import config
    from llmproxy.providers.simulator import SimulatorProvider

    cfg, _ = config.load(strict=False)
    sonnet = cfg.providers["anthropic"].model("claude-sonnet-4-5")
    local = cfg.providers["ollama"].model("qwen2.5-coder:7b")
    sim = SimulatorProvider(cfg.providers["anthropic"], "test", speed=1.0)
    (ttft_fast, tok_fast), (ttft_cheap, tok_cheap) = sim._pace(sonnet), sim._pace(local)
    assert (ttft_fast, ttft_cheap) == (0.35, 1.2)
    assert tok_cheap > 4 * tok_fast  # 18 vs 90 tokens per second
    assert SimulatorProvider(cfg.providers["anthropic"], "t", speed=2.0)._pace(sonnet) == (0.175, tok_fast / 2)
    assert SimulatorProvider(cfg.providers["anthropic"], "t", speed=0)._pace(sonnet) == (0.0, 0.0)


async def test_simulator_answers_json_schema_requests_with_json(proxy_factory):
    import json

    url, _ = await proxy_factory(simulate=True)
    c = anthropic.AsyncAnthropic(base_url=url + "/p/fast", api_key="x", max_retries=0)
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"},
                                               "tags": {"type": "array"}}}
    msg = await c.messages.create(model="m", max_tokens=200, messages=[{"role": "user", "content": "title?"}],
                                  extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}})
    data = json.loads(msg.content[0].text)
    assert data["title"].startswith("[llmproxy simulator] fast/") and data["n"] == 0 and data["tags"] == []
    await c.close()
