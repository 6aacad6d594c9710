"""The dashboard's server side: the page and its files, the live feed (/api/events), the JSON it reads, auth,
redaction, and a stalled browser that is dropped without slowing requests."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest

from llmproxy.obs.hub import EventHub, Overrun
from llmproxy.server.dashboard import feed, ui
from tests.conftest import PROXY_KEY, wait_log

REPO = Path(__file__).resolve().parents[1]
MSG = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hello there"}]}


class Feed:
    """An open /api/events stream, parsed into (event, data) messages."""

    def __init__(self, resp: aiohttp.ClientResponse):
        self.resp = resp

    async def next(self, timeout: float = 3.0) -> tuple[str, dict]:
        async def read() -> tuple[str, dict] | None:
            event, data = "message", ""
            while True:
                line = (await self.resp.content.readline()).decode()
                if line == "":
                    raise EOFError("the feed ended")
                line = line.rstrip("\n")
                if not line:
                    if data:
                        return event, json.loads(data)
                    event = "message"
                    continue
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]

        return await asyncio.wait_for(read(), timeout)

    async def take(self, n: int, kinds=("start", "end")) -> list[tuple[str, dict]]:
        out = []
        while len(out) < n:
            ev = await self.next()
            if ev[0] in kinds:
                out.append(ev)
        return out


async def open_feed(session: aiohttp.ClientSession, url: str, headers: dict | None = None) -> Feed:
    resp = await session.get(url + "/api/events", headers=headers or {})
    assert resp.status == 200, await resp.text()
    assert resp.headers["content-type"].startswith("text/event-stream")
    feed = Feed(resp)
    kind, hello = await feed.next()
    assert kind == "hello" and "version" in hello
    return feed


# ------------------------------------------------------------------------------------------------ page

async def test_the_page_and_its_files_are_served_from_the_package(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(url + "/ui", headers={"accept-encoding": "gzip"}) as r:
            assert r.status == 200 and r.headers["content-type"].startswith("text/html")
            assert r.headers["content-encoding"] == "gzip"
            assert "default-src 'none'" in r.headers["content-security-policy"]
            html = gzip.decompress(await r.read()).decode()
            etag = r.headers["etag"]
        assert "/ui/app.js" in html and "/ui/charts.js" in html and "/ui/app.css" in html
        assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
        async with s.get(url + "/ui", headers={"if-none-match": etag}) as r:
            assert r.status == 304
        for name in ("app.js", "charts.js", "app.css"):
            async with s.get(url + "/ui/" + name) as r:
                assert r.status == 200, name
                raw = await r.read()
                text = (gzip.decompress(raw) if r.headers.get("content-encoding") == "gzip" else raw).decode()
                assert "https://" not in text and "//cdn" not in text, name
        for bad in ("/ui/..%2Fserver%2Fui.py", "/ui/secret.txt", "/ui/index.htm"):
            async with s.get(url + bad) as r:
                assert r.status == 404, bad
        async with s.get(url + "/ui/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["location"] == "/ui"


def test_the_wheel_carries_the_page():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = cfg["package-data"]["llmproxy"]
    shipped = {p.name for g in globs for p in (REPO / "llmproxy").glob(g)}
    assert set(ui.FILES) <= shipped, f"add the dashboard files to package-data: {set(ui.FILES) - shipped}"
    assert {p.name for p in ui.UI_DIR.iterdir()} == set(ui.FILES)  # no file the server would not serve


# ------------------------------------------------------------------------------------------------ feed

async def test_events_pair_start_and_end_in_order(proxy):
    url, state = proxy
    async with aiohttp.ClientSession() as s:
        feed = await open_feed(s, url)
        async with s.post(url + "/v1/messages", json=MSG) as r:
            assert r.status == 200
            first = r.headers["request-id"]
        async with s.post(url + "/p/oai/v1/messages", json={**MSG, "stream": True}) as r:
            await r.read()
            second = r.headers["request-id"]
        events = await feed.take(4)
        feed.resp.close()
    ids = [d["request_id"] for _, d in events]
    assert ids == [first, first, second, second]
    assert [k for k, _ in events] == ["start", "end", "start", "end"]
    assert all(d["phase"] == k for k, d in events)
    end1, end2 = events[1][1], events[3][1]
    assert end1["status"] == 200 and end1["profile"] == "test" and end1["target"] == "anthropic/claude-sonnet-4-5"
    assert end1["decision"]["scenario"] == "default" and end1["decision"]["chain"]
    assert end2["profile"] == "oai" and end2["stream"] is True and end2["duration_ms"] >= end2.get("ttft_ms", 0)
    assert "cost_usd" in end2 and end2["usage"]["output_tokens"] > 0 and end2["attempts"] == []
    assert "request_body" not in end1  # bodies are never in the feed


async def test_no_subscriber_means_no_work(proxy):
    url, state = proxy
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json=MSG) as r:
            assert r.status == 200
    assert state.events.published == 0 and not state.events.ring


async def test_the_feed_is_redacted_like_the_log(proxy_factory, home):
    url, state = await proxy_factory(f'[auth]\napi_keys = ["{PROXY_KEY}"]\n')
    ua = f"tester/1.0 (key {PROXY_KEY}; Authorization: Bearer abcdefghijklmnopqrstuv) sk-ant-api03-abcdefghijklmnop"
    async with aiohttp.ClientSession() as s:
        feed = await open_feed(s, url, {"x-api-key": PROXY_KEY})
        async with s.post(url + "/v1/messages", json=MSG, headers={"x-api-key": PROXY_KEY, "user-agent": ua}) as r:
            assert r.status == 200
            rid = r.headers["request-id"]
        events = await feed.take(2)
        feed.resp.close()
        text = json.dumps(events)
        assert PROXY_KEY not in text and "abcdefghijklmnopqrstuv" not in text and "api03" not in text
        assert "[REDACTED]" in events[1][1]["client"]["user_agent"]
        # the same record read back from the log (bodies included when logged) is redacted too
        await wait_log(home, 1)
        async with s.get(url + f"/api/requests/{rid}", headers={"x-api-key": PROXY_KEY}) as r:
            assert r.status == 200
            rec = await r.json()
        assert rec["request_id"] == rid and PROXY_KEY not in json.dumps(rec)
        async with s.get(url + "/api/providers", headers={"x-api-key": PROXY_KEY}) as r:
            text = await r.text()
        assert PROXY_KEY not in text and "sk-ant-upstream-secret" not in text


async def test_auth_the_page_is_public_the_data_is_not(proxy_factory):
    url, _ = await proxy_factory(f'[auth]\napi_keys = ["{PROXY_KEY}"]\n')
    async with aiohttp.ClientSession() as s:
        for path in ("/ui", "/ui/app.js"):
            async with s.get(url + path) as r:
                assert r.status == 200, path
        for path in ("/api/events", "/api/kg", "/api/providers", "/api/stats", "/api/requests/req_0123abcd"):
            async with s.get(url + path) as r:
                assert r.status == 401, path
                assert (await r.json())["error"]["type"] == "authentication_error"
            async with s.get(url + path, headers={"x-api-key": "wrong-key-123456"}) as r:
                assert r.status == 401, path
        # the key is taken from a header only, never from the URL
        async with s.get(url + f"/api/events?key={PROXY_KEY}") as r:
            assert r.status == 401
        async with s.get(url + "/api/kg", headers={"authorization": f"Bearer {PROXY_KEY}"}) as r:
            assert r.status == 200


async def test_without_keys_only_local_names_are_answered(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/api/kg", headers={"host": "attacker.example:3456"}) as r:
            assert r.status == 403  # a page elsewhere reaching us through DNS rebinding
        async with s.get(url + "/api/kg", headers={"host": "localhost:3456"}) as r:
            assert r.status == 200


async def test_a_stalled_browser_is_dropped_and_requests_do_not_wait(proxy, monkeypatch):
    url, state = proxy
    state.events = EventHub(size=64)
    monkeypatch.setattr(ui, "WRITE_TIMEOUT", 0.3)
    host, port = url.removeprefix("http://").split(":")
    # a browser that never reads: a tiny receive window, and nothing read after the request
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    sock.send(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    for _ in range(100):
        if state.events.subscribers:
            break
        await asyncio.sleep(0.01)
    stalled = next(iter(state.events.subscribers))
    # and one that reads everything, through the same hub
    reader = state.events.subscribe()
    fat = "x" * 7000  # fat events (the client fields are in every event) fill the socket buffers quickly
    headers = {"user-agent": "stall-test " + fat, "x-claude-code-session-id": fat, "x-claude-code-agent-id": fat}
    took = []
    async with aiohttp.ClientSession() as s:
        async def one():
            t0 = time.perf_counter()
            async with s.post(url + "/v1/messages", json=MSG, headers=headers) as r:
                assert r.status == 200
                await r.read()
            took.append(time.perf_counter() - t0)

        for _ in range(40):
            await asyncio.gather(*(one() for _ in range(20)))
            await reader.next_batch(timeout=0)  # this one keeps up
            if stalled.dropped:
                break
    sock.close()
    assert stalled.dropped, "the stalled subscriber was never dropped"
    assert stalled not in state.events.subscribers and state.events.dropped >= 1
    assert reader.dropped is None
    assert max(took) < ui.WRITE_TIMEOUT * 3  # no request waited for the stalled browser
    with pytest.raises(Overrun):
        await stalled.next_batch(timeout=0)


async def test_shutdown_ends_open_feeds(proxy_factory):
    from aiohttp.test_utils import TestServer

    from llmproxy.server.process.app import create_app, load_runtime
    from llmproxy.server.state import Options, State

    await proxy_factory()  # writes the config into the test home
    state = State(runtime=load_runtime(Options()), options=Options())
    server = TestServer(create_app(state), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as s:
        feed = await open_feed(s, str(server.make_url("")).rstrip("/"))
        t0 = time.perf_counter()
        await server.close()
        with pytest.raises((EOFError, aiohttp.ClientError)):
            await feed.next(timeout=3)
    assert time.perf_counter() - t0 < 3


# ---------------------------------------------------------------------------------- the JSON it reads

async def test_request_detail_with_bodies_when_logged(proxy_factory, home):
    url, _ = await proxy_factory(verbose=2)
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json=MSG) as r:
            rid = r.headers["request-id"]
        await wait_log(home, 1)
        async with s.get(url + f"/api/requests/{rid}") as r:
            assert r.status == 200
            rec = await r.json()
        assert rec["request_body"]["messages"][0]["content"] == "hello there"
        assert rec["response_body"]["content"]
        async with s.get(url + "/api/requests/req_000000000000000000000000") as r:
            assert r.status == 404
        async with s.get(url + "/api/requests/not-an-id") as r:
            assert r.status == 400


async def test_stats_gives_the_recent_records_trimmed(proxy, home):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        for path in ("/v1/messages", "/p/oai/v1/messages"):
            async with s.post(url + path, json=MSG) as r:
                assert r.status == 200
        await wait_log(home, 2)
        async with s.get(url + "/api/stats?since=1h") as r:
            data = await r.json()
        assert [rec["profile"] for rec in data["records"]] == ["test", "oai"]
        first = data["records"][0]
        assert first["partial"] is True and set(first["decision"]) == {"scenario", "concept", "target"}
        assert first["duration_ms"] > 0 and first["usage"]["output_tokens"] > 0
        async with s.get(url + "/api/stats?since=1h&limit=1") as r:
            data = await r.json()
        assert [rec["profile"] for rec in data["records"]] == ["oai"] and data["truncated"] is True
        async with s.get(url + "/api/stats?since=yesterday-ish") as r:
            assert r.status == 400


async def test_kg_and_providers(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/api/kg") as r:
            kg = await r.json()
        async with s.get(url + "/api/providers") as r:
            prov = await r.json()
    assert kg["default_profile"] == "test"
    fast = kg["profiles"]["fast"]
    assert fast["default"][0] == "anthropic/claude-sonnet-4-5" and "think" in fast["scenarios"]
    concept = next(c for c in fast["concepts"] if c["name"] == "hard-problems")
    assert "race condition" in concept["terms"] and concept["scenario"] == "think" and concept["priority"] == 60
    assert any(c["absorber"] for c in fast["concepts"])
    assert prov["providers"]["anthropic"]["live"] is True
    openrouter = prov["providers"]["openrouter"]
    assert openrouter["live"] is False and "OPENROUTER_API_KEY" in openrouter["simulated_reason"]
    assert prov["events"]["subscribers"] == 0 and prov["circuits"] == {}


@pytest.mark.parametrize("value", [
    "Bearer abcdefghijklmnopqrstuvwxyz", "see https://x.example/v1?key=abcdef123456&x=1", "sk-ant-api03-abcdefghijklmnop",
    'tricky ?key=abc\\" closing', 'quote"in proxy-key-abcdef123456 text', "nothing secret here",
    "AIzaSyA-1234567890abcdefghij", "the secret we know: s3cr\"et-value",
])
def test_feed_redaction_matches_the_log(value):
    secrets = ("proxy-key-abcdef123456", 's3cr"et-value')
    data = {"client": {"user_agent": value}, "error": value, "decision": {"reasons": [value]}}
    got = json.loads(feed.redacted_json(data, secrets))
    from llmproxy.redact import redact

    assert got == redact(data, extra_secrets=secrets)
    for s in secrets:
        assert s not in json.dumps(got)


def test_a_credential_named_field_is_masked_whole():
    data = {"extra": {"Authorization": "whatever-it-is", "api_key": "plain"}}
    assert json.loads(feed.redacted_json(data, ())) == {"extra": {"Authorization": "[REDACTED]", "api_key": "[REDACTED]"}}


def test_a_start_whose_end_is_in_the_same_batch_is_brief():
    from llmproxy.obs.hub import Event
    from llmproxy.server.request.record import RequestRecord

    rec = RequestRecord(request_id="req_1", endpoint="messages", client={"user_agent": "x"}, profile="fast",
                        requested_model="m", stream=False)
    other = RequestRecord(request_id="req_2", endpoint="messages", client={"user_agent": "x"}, profile="fast")
    batch = [Event(1, "start", rec.start_json()), Event(2, "start", other.start_json()),
             Event(3, "end", {"request_id": "req_1", "status": 200})]
    lines = [json.loads(b.split(b"data: ", 1)[1]) for b in feed.render_batch(batch, ()).split(b"\n\n") if b]
    assert lines[0] == {"time": rec.time, "request_id": "req_1", "endpoint": "messages", "phase": "start",
                        "brief": True}
    assert lines[1]["request_id"] == "req_2" and lines[1]["profile"] == "fast" and "brief" not in lines[1]
    assert lines[2] == {"request_id": "req_1", "status": 200, "phase": "end"}
