"""Every error the Anthropic surface can give, through the real server, in Anthropic's error shape."""

from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import pytest

from tests.conftest import PROXY_KEY, UPSTREAM_KEY, free_port, wait_log

MSG = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


async def post(url: str, path: str = "/v1/messages", **kw):
    async with aiohttp.ClientSession() as s:
        async with s.post(url + path, **kw) as r:
            return r.status, await r.json(content_type=None), r.headers.copy()


def assert_error_shape(body: dict, headers: dict, etype: str) -> None:
    assert body["type"] == "error"
    assert body["error"]["type"] == etype
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"] == headers["request-id"]


@pytest.mark.parametrize("payload,needle", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1,2]", "JSON object"),
    (b'{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}', "model"),
    (b'{"model":"m","messages":[{"role":"user","content":"x"}]}', "max_tokens"),
    (b'{"model":"m","max_tokens":5}', "messages"),
    (b'{"model":"m","max_tokens":"5","messages":[]}', "max_tokens"),
    (b'{"model":"m","max_tokens":5,"messages":[]}', "messages"),
    (b'{"model":"m","max_tokens":5,"messages":"hi"}', "messages"),
    (b'{"model":"m","max_tokens":5,"messages":[{"role":"robot","content":"x"}]}', "messages.0.role"),
    (b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]}', "messages.0.content.0"),
    (b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"stream":"yes"}', "stream"),
    (b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{}]}', "tools.0.name"),
    (b'{"model":7,"max_tokens":5,"messages":[{"role":"user","content":"x"}]}', "model"),
])
async def test_bad_requests_are_400_naming_the_field(proxy, payload, needle):
    url, _ = proxy
    status, body, headers = await post(url, data=payload, headers={"content-type": "application/json"})
    assert status == 400
    assert_error_shape(body, headers, "invalid_request_error")
    assert needle in body["error"]["message"]
    assert headers.get("x-should-retry") == "false"


async def test_body_over_limit_is_413(proxy_factory):
    url, _ = await proxy_factory("[server]\nmax_body_bytes = 2048\n")
    status, body, headers = await post(url, data=b'{"x":"' + b"a" * 5000 + b'"}',
                                       headers={"content-type": "application/json"})
    assert status == 413
    assert_error_shape(body, headers, "request_too_large")


async def test_unknown_path_and_method(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/v1/nothing-here") as r:
            body = await r.json()
            assert r.status == 404
            assert_error_shape(body, dict(r.headers), "not_found_error")
        async with s.get(url + "/v1/messages") as r:
            assert r.status == 405
            assert (await r.json())["error"]["type"] == "invalid_request_error"


async def test_unknown_profile_400_names_valid_ones(proxy):
    """400, not 404: Claude Code shows a 400's message as it is, but replaces a 404's with its own text."""
    url, _ = proxy
    status, body, headers = await post(url, "/p/nope/v1/messages", json=MSG)
    assert status == 400 and headers["x-should-retry"] == "false"
    assert_error_shape(body, headers, "invalid_request_error")
    for name in ("fast", "intelligent", "balanced", "cheap"):
        assert name in body["error"]["message"]
    status, body, _ = await post(url, json=MSG, headers={"X-LLMProxy-Profile": "nope"})
    assert status == 400 and "unknown profile 'nope'" in body["error"]["message"]
    status, body, _ = await post(url, json={**MSG, "model": "profile:nope"})
    assert status == 400 and "unknown profile 'nope'" in body["error"]["message"]


async def test_profile_by_prefix_and_header(proxy, fake_anthropic):
    url, _ = proxy
    _, _, h1 = await post(url, "/p/fast/v1/messages?beta=true", json=MSG)
    assert "profile=fast" in h1["x-llmproxy-route"]
    _, _, h2 = await post(url, json=MSG, headers={"x-llmproxy-profile": "balanced"})
    assert "profile=balanced" in h2["x-llmproxy-route"]
    _, _, h3 = await post(url, json=MSG)
    assert "profile=test" in h3["x-llmproxy-route"]


async def test_upstream_unreachable_is_502_naming_provider_not_key(proxy_factory):
    port = free_port()  # nothing listens here
    url, _ = await proxy_factory(f"""
        [providers.anthropic]
        base_url = "http://127.0.0.1:{port}"
        [providers.backup]
        base_url = "http://127.0.0.1:{port}"
        """)
    status, body, headers = await post(url, json=MSG)
    assert status in (500, 502)
    assert_error_shape(body, headers, "api_error")
    assert "backup" in body["error"]["message"]
    assert UPSTREAM_KEY not in str(body) and "sk-ant-backup" not in str(body)


async def test_upstream_5xx_falls_back_to_next_target(proxy, fake_anthropic, fake_backup, home):
    url, _ = proxy
    fake_anthropic.script.append({"status": 529, "error_type": "overloaded_error", "message": "Overloaded"})
    status, body, headers = await post(url, json=MSG)
    assert status == 200
    assert "target=backup/claude-sonnet-4-5" in headers["x-llmproxy-route"]
    assert fake_backup.requests[-1]["headers"]["x-api-key"] == "sk-ant-backup-secret-987654321"
    rec = (await wait_log(home, 1))[-1]
    assert rec["target"] == "backup/claude-sonnet-4-5"
    assert rec["attempts"][0]["target"] == "anthropic/claude-sonnet-4-5"
    assert rec["attempts"][0]["status"] == 529


async def test_upstream_4xx_is_not_retried_and_keeps_message(proxy, fake_anthropic, fake_backup):
    url, _ = proxy
    fake_anthropic.script.append({"status": 400, "error_type": "invalid_request_error", "message": "prompt is too long"})
    status, body, headers = await post(url, json=MSG)
    assert status == 400
    assert "prompt is too long" in body["error"]["message"]
    assert fake_backup.requests == []


async def test_upstream_429_everywhere_passes_retry_after(proxy, fake_anthropic, fake_backup):
    url, _ = proxy
    fake_anthropic.script.append({"status": 429, "error_type": "rate_limit_error", "retry_after": 7})
    fake_backup.script.append({"status": 429, "error_type": "rate_limit_error", "retry_after": 9})
    status, body, headers = await post(url, json=MSG)
    assert status == 429
    assert_error_shape(body, headers, "rate_limit_error")
    assert headers["retry-after"] == "9"


async def test_upstream_401_is_not_blamed_on_the_client(proxy, fake_anthropic, fake_backup):
    url, _ = proxy
    for fake in (fake_anthropic, fake_backup):
        fake.script.append({"status": 401, "error_type": "authentication_error", "message": "invalid x-api-key"})
    status, body, _ = await post(url, json=MSG)
    assert status == 502
    assert "credentials" in body["error"]["message"]
    assert len(fake_backup.requests) == 1  # a provider's bad key is worth trying the next target for


async def test_mid_stream_failure_becomes_error_event(proxy, fake_anthropic):
    url, _ = proxy
    fake_anthropic.script.append({"die_after": 3, "text": "one two three four five"})
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json={**MSG, "stream": True}) as r:
            assert r.status == 200
            text = await r.text()
    assert text.count("event: message_start") == 1
    assert text.rstrip().splitlines()[-2] == "event: error"
    assert '"type":"error"' in text and "message_stop" not in text
    # with the SDK: the error surfaces as an APIError, not a hang or a silent truncation
    fake_anthropic.script.append({"die_after": 3})
    c = anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0)
    with pytest.raises(anthropic.APIError):
        async with c.messages.stream(**MSG) as stream:
            await stream.get_final_message()
    await c.close()


async def test_client_disconnect_aborts_upstream(proxy, fake_anthropic, home):
    url, _ = proxy
    fake_anthropic.script.append({"hang": 5})
    async with aiohttp.ClientSession() as s:
        r = await s.post(url + "/v1/messages", json={**MSG, "stream": True})
        await r.content.readuntil(b"\n\n")  # message_start arrived
        r.close()  # client goes away
    await asyncio.wait_for(fake_anthropic.aborted.wait(), 3)
    recs = await wait_log(home, 1)
    assert recs[-1].get("client_disconnected") is True
    assert fake_anthropic.finished_streams == 0


async def test_ping_sent_while_upstream_is_silent(proxy, fake_anthropic):
    url, _ = proxy  # ping_interval = 0.2 s in the test config
    fake_anthropic.script.append({"hang": 0.7})
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json={**MSG, "stream": True}) as r:
            text = await r.text()
    assert "event: ping" in text
    assert text.index("event: ping") > text.index("event: message_start")
    assert "event: message_stop" in text


async def test_proxy_auth(proxy_factory, fake_anthropic, home):
    url, _ = await proxy_factory(f'[auth]\napi_keys = ["{PROXY_KEY}", "another-key-123456"]\n')
    status, body, headers = await post(url, json=MSG)
    assert status == 401
    assert_error_shape(body, headers, "authentication_error")
    status, _, _ = await post(url, json=MSG, headers={"x-api-key": "wrong"})
    assert status == 401
    status, _, _ = await post(url, json=MSG, headers={"x-api-key": PROXY_KEY})
    assert status == 200
    status, _, _ = await post(url, json=MSG, headers={"authorization": "Bearer another-key-123456"})
    assert status == 200
    # the proxy key is never forwarded upstream
    assert all(PROXY_KEY not in str(r["headers"]) for r in fake_anthropic.requests)
    # the probe and health stay open; health says only "up" without the key
    async with aiohttp.ClientSession() as s:
        async with s.head(url + "/p/fast") as r:
            assert r.status == 200
        async with s.get(url + "/health") as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        async with s.get(url + "/health", headers={"x-api-key": PROXY_KEY}) as r:
            assert "pid" in await r.json()
    # the refusals are in the request log, without the key that was tried
    recs = await wait_log(home, 4)
    refused = [r for r in recs if r.get("status") == 401]
    assert len(refused) == 2 and all(r["endpoint"] == "messages" for r in refused)
    assert "wrong" not in str(refused) and PROXY_KEY not in str(recs)


async def test_forward_client_key_only_when_configured(proxy_factory, fake_anthropic):
    url, _ = await proxy_factory("[providers.anthropic]\nforward_client_key = true\n", env_key=False)
    status, _, _ = await post(url, json=MSG, headers={"x-api-key": "sk-ant-client-own-key-123"})
    assert status == 200
    assert fake_anthropic.requests[-1]["headers"]["x-api-key"] == "sk-ant-client-own-key-123"
    # a Claude subscription's OAuth token stays a Bearer token (Anthropic refuses it as x-api-key)
    status, _, _ = await post(url, json=MSG, headers={"authorization": "Bearer sk-ant-oat01-subscription-token"})
    assert status == 200
    sent = fake_anthropic.requests[-1]["headers"]
    assert sent["Authorization"] == "Bearer sk-ant-oat01-subscription-token" and "x-api-key" not in sent


async def test_client_key_not_forwarded_by_default(proxy, fake_anthropic):
    url, _ = proxy
    await post(url, json=MSG, headers={"authorization": "Bearer sk-ant-client-own-key-123"})
    hdrs = fake_anthropic.requests[-1]["headers"]
    assert "sk-ant-client-own-key-123" not in str(hdrs)
    assert hdrs["x-api-key"] == UPSTREAM_KEY


async def test_head_root_probe_and_health(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        for path in ("/", "/p/fast", "/p/fast/"):
            async with s.head(url + path) as r:
                assert r.status == 200, path
        async with s.get(url + "/health") as r:
            h = await r.json()
        assert h["status"] == "ok" and set(h["profiles"]) >= {"fast", "intelligent", "balanced", "cheap"}
        assert h["providers"]["anthropic"]["live"] is True
        assert h["providers"]["openrouter"]["live"] is False


async def test_context_1m_beta_dropped_for_a_200k_target(proxy, fake_anthropic):
    url, _ = proxy
    betas = "claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14"
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/balanced/v1/messages", json=MSG, headers={"anthropic-beta": betas}) as r:
            assert r.status == 200
        assert fake_anthropic.requests[-1]["body"]["model"] == "claude-haiku-4-5"
        assert fake_anthropic.requests[-1]["headers"]["anthropic-beta"] == \
            "claude-code-20250219,interleaved-thinking-2025-05-14"
        async with s.post(url + "/p/fast/v1/messages", json=MSG, headers={"anthropic-beta": betas}) as r:
            assert r.status == 200
        assert fake_anthropic.requests[-1]["headers"]["anthropic-beta"] == betas  # sonnet has the 1M window


async def test_upstream_404_model_falls_back(proxy, fake_anthropic, fake_backup):
    url, _ = proxy
    fake_anthropic.script.append({"status": 404, "error_type": "not_found_error", "message": "model: not found"})
    status, _, headers = await post(url, json=MSG)
    assert status == 200 and "target=backup/" in headers["x-llmproxy-route"]
    fake_anthropic.script.append({"status": 404, "error_type": "not_found_error", "message": "model: not found"})
    fake_backup.script.append({"status": 404, "error_type": "not_found_error", "message": "model: gone too"})
    status, body, _ = await post(url, json=MSG)
    assert status == 404 and body["error"]["type"] == "not_found_error" and "gone too" in body["error"]["message"]


async def test_claude_codes_header_capitalisation_reaches_the_upstream(proxy, fake_anthropic, home):
    """Claude Code sends X-Claude-Code-Session-Id, X-Stainless-*, User-Agent capitalised, anthropic-beta on
    more than one line, and ?beta=true: all of it (and nothing else from the query) reaches Anthropic."""
    from multidict import CIMultiDict

    url, _ = proxy
    headers = CIMultiDict([("X-Claude-Code-Session-Id", "sess-Cap-1"), ("X-Stainless-Lang", "js"),
                           ("X-Stainless-Retry-Count", "0"), ("User-Agent", "claude-cli/2.1.197 (external, cli)"),
                           ("Anthropic-Beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
                           ("Anthropic-Beta", "fine-grained-tool-streaming-2025-05-14"),
                           ("Anthropic-Version", "2023-06-01"), ("X-App", "cli")])
    status, _, _ = await post(url, "/v1/messages?beta=true&key=proxy-secret-in-query", json=MSG, headers=headers)
    assert status == 200
    sent = {k.lower(): v for k, v in fake_anthropic.requests[-1]["headers"].items()}
    assert sent["x-claude-code-session-id"] == "sess-Cap-1" and sent["x-stainless-lang"] == "js"
    assert sent["user-agent"].startswith("claude-cli/") and sent["x-app"] == "cli"
    assert sent["anthropic-beta"].split(",") == ["claude-code-20250219", "interleaved-thinking-2025-05-14",
                                                 "fine-grained-tool-streaming-2025-05-14"]
    assert fake_anthropic.requests[-1]["query"] == "beta=true"  # only the parameter the API defines
    rec = (await wait_log(home, 1))[-1]
    assert rec["client"]["session_id"] == "sess-Cap-1" and rec["client"]["user_agent"].startswith("claude-cli/")
