"""The same faults through the OpenAI surface (``/v1/chat/completions``): an OpenAI-kind target is relayed
(passthrough), an Anthropic-kind one converted. Errors in OpenAI's shape with ``x-should-retry``; a stream
that fails after it began ends with one error chunk at a chunk boundary, never with ``[DONE]`` and never
silently cut."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from tests.conftest import wait_log
from tests.faults.conftest import BACKUP, FAULTY

BODY = {"model": "gpt-4o", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]}


async def chat(url: str, stream: bool):
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/chat/completions", json={**BODY, "stream": stream}) as r:
            return r.status, r.headers.copy(), await r.read(), time.monotonic() - t0


def chunks(body: bytes) -> list:
    assert body.endswith(b"\n\n"), body[-200:]
    out = []
    for frame in body[:-2].split(b"\n\n"):
        if frame.startswith(b":"):  # a comment ping
            continue
        assert frame.startswith(b"data: "), frame[:200]
        out.append(frame[6:].decode() if frame == b"data: [DONE]" else json.loads(frame[6:]))
    return out


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", ["hang_mid", "cut_mid_frame", "malformed_mid", "truncated"])
async def test_stream_failing_after_it_began_ends_with_one_error_chunk(fault_proxy, fault_upstream, home,
                                                                       fault, kind):
    url, _ = await fault_proxy(kind, True)
    fault_upstream.mode = fault
    status, headers, body, elapsed = await chat(url, True)
    assert status == 200 and elapsed < 3.0 and FAULTY in headers["x-llmproxy-route"]
    got = chunks(body)
    assert "[DONE]" not in got
    errors = [c for c in got if isinstance(c, dict) and "error" in c]
    assert len(errors) == 1 and got[-1] is errors[0] and errors[0]["error"]["message"]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in got
                   if isinstance(c, dict) and c.get("choices"))
    assert text.startswith("Hello ")
    rec = (await wait_log(home, 1))[-1]
    assert rec["stream_error"] and rec["mode"] == ("passthrough" if kind == "openai" else "converted")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize("fault,status,retry", [("500", 500, "true"), ("503", 529, "true"), ("401", 502, "false"),
                                                ("400", 400, "false"), ("hang", 504, "true"),
                                                ("invalid_json", 502, "true")])
async def test_errors_in_openai_shape(fault_proxy, fault_upstream, home, fault, status, retry, stream):
    url, _ = await fault_proxy("openai", False)
    fault_upstream.mode = fault
    got, headers, body, elapsed = await chat(url, stream)
    assert got == status and headers["x-should-retry"] == retry and elapsed < 3.0
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize("fault", ["refuse", "hang", "malformed_start", "429", "529"])
async def test_fallback_serves_the_chat_surface(fault_proxy, fault_upstream, backup_upstream, home, fault, stream):
    url, _ = await fault_proxy("openai", True, refuse=fault == "refuse")
    fault_upstream.mode = "ok" if fault == "refuse" else fault
    status, headers, body, elapsed = await chat(url, stream)
    assert status == 200 and BACKUP in headers["x-llmproxy-route"] and elapsed < 3.0
    if stream:
        got = chunks(body)
        assert got[-1] == "[DONE]" and not any(isinstance(c, dict) and "error" in c for c in got)
    else:
        assert json.loads(body)["choices"][0]["message"]["content"].startswith("Hello from the fault upstream")
    rec = (await wait_log(home, 1))[-1]
    assert rec["target"] == BACKUP and rec["attempts"][0]["target"] == FAULTY and rec["mode"] == "converted"
