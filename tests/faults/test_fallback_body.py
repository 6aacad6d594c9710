"""What a retry and a fallback send: each target gets the client's request adapted for it, rebuilt from the
one copy the proxy holds while waiting (the client's bytes, or the bytes sent and the fields changed)."""

from __future__ import annotations

import copy

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmproxy.config import ModelSpec
from llmproxy.protocol.adapt import adapt_for_model
from llmproxy.providers import RetryCopy, top_level_patch
from llmproxy.providers.http import wire_bytes

CLIENT = {
    "model": "claude-opus-4-8", "max_tokens": 5000, "stream": False,
    "system": [{"type": "text", "text": "You are a careful assistant.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "plan the release"}]}],
    "tools": [{"name": "Read", "description": "read a file",
               "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
    "metadata": {"user_id": "u-1"},
    "output_config": {"effort": "high"},
}


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_fallback_gets_the_client_request_not_the_first_targets(fault_proxy, fault_upstream,
                                                                      backup_upstream, kind):
    # faulty,m1 takes at most 1024 tokens and no effort; backup,m2 takes 8192: what reaches the backup must
    # come from the client's request, not from what was sent to m1
    url, _ = await fault_proxy(kind, True, model={"max_output": 1024})
    fault_upstream.script = ["500", "500"]  # the try and its retry fail: then the fallback
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json=CLIENT) as r:
            assert r.status == 200, await r.text()
            assert "backup" in r.headers["x-llmproxy-route"]
    assert len(fault_upstream.bodies) == 2 and fault_upstream.bodies[0] == fault_upstream.bodies[1]
    if kind == "anthropic":
        assert fault_upstream.bodies[0]["max_tokens"] == 1024 and "output_config" not in fault_upstream.bodies[0]
    [got] = backup_upstream.bodies
    assert got == {**{k: v for k, v in CLIENT.items() if k != "output_config"}, "model": "m2"}


SPECS = [None, ModelSpec("m", max_output=1024), ModelSpec("m", thinking=True), ModelSpec("m", thinking=True, adaptive_thinking=True,
                                                                                effort=True, max_output=128000)]
VALUES = st.one_of(st.none(), st.integers(-5, 70000), st.text(max_size=5),
                   st.dictionaries(st.sampled_from(["type", "effort", "budget_tokens", "x"]),
                                   st.one_of(st.sampled_from(["adaptive", "enabled", "high"]), st.integers(0, 9000)),
                                   max_size=3))


@given(st.dictionaries(st.sampled_from(["max_tokens", "thinking", "output_config", "context_management", "model",
                                        "temperature", "stop_sequences"]), VALUES),
       st.sampled_from(SPECS), st.sampled_from(["m1", "claude-opus-4-8"]))
def test_source_rebuilds_the_client_request_from_what_was_sent(fields, spec, model):
    body = {"messages": [{"role": "user", "content": "hi"}], **fields}
    raw = orjson.dumps(body)
    before = copy.deepcopy(body)
    sent_body = adapt_for_model(body, model, spec)
    src = RetryCopy(raw)
    if sent_body is not body:
        src.keep(wire_bytes(sent_body), top_level_patch(body, sent_body))
        assert src.raw is None  # one copy held: what was sent
    assert body == before
    assert src.body() == orjson.loads(raw)
