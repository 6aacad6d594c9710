"""The origin guard (issue 20, findings 2 and 3): no web page can drive the daemon.

The whole route table of the real app is walked — every method, under the bare root and ``/p/<profile>``, with
path parameters filled by a real batch and file — as a DNS-rebinding page (``Host: evil.example``) and as a
cross-site page (``Origin`` / ``Sec-Fetch-Site``), and nothing it asks for is done. SDK clients and the
dashboard's own (same-origin) requests are still served."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import anthropic
import pytest
from aiohttp.test_utils import TestServer

from llmproxy.server.process.app import create_app, load_runtime
from llmproxy.server.request.guard import SAFE_METHODS, host_name
from llmproxy.server.state import Options, State
from tests.conftest import PROXY_KEY

MSG = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hello there"}]}
FOREIGN = [{"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
           {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://127.0.0.1.evil.example"}]
KEYED = "[auth]\napi_keys = [\"" + PROXY_KEY + "\"]\n"


def route_table(state, params: dict[str, str]) -> list[tuple[str, str]]:
    """(method, concrete path) for every route of the app, plus paths no route has."""
    out = []
    for route in create_app(state).router.routes():
        path = re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: params[m.group(1)], route.resource.canonical)
        out.append((route.method, path))
    assert any(p.startswith("/p/test/") for _, p in out) and any(m == "DELETE" for m, _ in out)
    return [*out, ("GET", "/nope"), ("POST", "/p/test/nope")]


async def setup_data(url: str, key: str = "client-key") -> tuple[str, str]:
    """A real file and an ended batch, so the walk's ids name things a request could change."""
    c = anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0)
    f = await c.beta.files.upload(file=("notes.txt", b"some notes", "text/plain"))
    batch = await c.messages.batches.create(requests=[{"custom_id": "a", "params": MSG}])
    for _ in range(250):
        if (await c.messages.batches.retrieve(batch.id)).processing_status == "ended":
            break
        await asyncio.sleep(0.02)
    return f.id, batch.id


async def walk(url: str, routes, headers: dict, only_unsafe: bool = False) -> list[tuple[str, str, int, dict]]:
    answers = []
    async with aiohttp.ClientSession() as s:
        for method, path in routes:
            if only_unsafe and method in SAFE_METHODS:
                continue
            body = b"{}" if method not in SAFE_METHODS else None
            async with s.request(method, url + path, data=body, allow_redirects=False,
                                 headers={"content-type": "application/json", **headers}) as r:
                err = await r.json(content_type=None) if method != "HEAD" else {}
                answers.append((method, path, r.status, err))
    return answers


async def nothing_changed(url: str, state, fake, runtime, upstream_calls: int, ids: tuple[str, str],
                          key: str = "client-key") -> None:
    c = anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0)
    assert (await c.beta.files.retrieve_metadata(ids[0])).id == ids[0]  # not deleted
    assert (await c.messages.batches.retrieve(ids[1])).id == ids[1]
    assert len(fake.requests) == upstream_calls  # no model was called
    assert state.runtime is runtime  # no reload


async def test_every_route_refuses_a_foreign_host_without_keys(proxy, fake_anthropic):
    url, state = proxy
    ids = await setup_data(url)
    calls, runtime = len(fake_anthropic.requests), state.runtime
    routes = route_table(state, {"profile": "test", "file_id": ids[0], "batch_id": ids[1], "request_id": "req_1",
                                 "model_id": "claude-sonnet-4-5", "name": "app.js"})
    answers = await walk(url, routes, {"Host": "evil.example"})
    assert len(answers) == len(routes) > 40
    for method, path, status, err in answers:
        assert status == 403, (method, path, status)
        if method != "HEAD":
            assert err["error"]["type"] == "permission_error" and "evil.example" in err["error"]["message"]
    await nothing_changed(url, state, fake_anthropic, runtime, calls, ids)


@pytest.mark.parametrize("keyed", [False, True], ids=["no-keys", "keys"])
async def test_every_state_changing_route_refuses_a_foreign_origin(proxy_factory, fake_anthropic, keyed):
    url, state = await proxy_factory(KEYED if keyed else "")
    key = PROXY_KEY if keyed else "client-key"
    ids = await setup_data(url, key)
    calls, runtime = len(fake_anthropic.requests), state.runtime
    routes = route_table(state, {"profile": "test", "file_id": ids[0], "batch_id": ids[1], "request_id": "req_1",
                                 "model_id": "claude-sonnet-4-5", "name": "app.js"})
    for foreign in FOREIGN:
        answers = await walk(url, routes, {**foreign, "x-api-key": key}, only_unsafe=True)
        assert len(answers) > 15
        for method, path, status, err in answers:
            assert status == 403, (foreign, method, path, status)
            assert err["error"]["type"] == "permission_error", err
    await nothing_changed(url, state, fake_anthropic, runtime, calls, ids, key)


async def test_with_keys_the_host_is_not_checked_but_the_key_is(proxy_factory):
    url, _ = await proxy_factory(KEYED)
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/v1/models", headers={"Host": "myserver.lan:3456", "x-api-key": PROXY_KEY}) as r:
            assert r.status == 200
        async with s.get(url + "/v1/models", headers={"Host": "myserver.lan:3456"}) as r:
            assert r.status == 401
        # the dashboard of an --allow-remote daemon, reached by its name: same-origin, so allowed
        async with s.post(url + "/api/route", json={"text": "hi", "profile": "test"},
                          headers={"Host": "myserver.lan:3456", "Origin": "http://myserver.lan:3456",
                                   "Sec-Fetch-Site": "same-origin", "x-api-key": PROXY_KEY}) as r:
            assert r.status == 200
        async with s.post(url + "/api/route", json={"text": "hi", "profile": "test"},
                          headers={"Host": "myserver.lan:3456", "Origin": "https://evil.example",
                                   "x-api-key": PROXY_KEY}) as r:
            assert r.status == 403  # the key does not make another site's page welcome


LOCAL = ["localhost", "localhost:3456", "LOCALHOST.", "127.0.0.1:3456", "127.0.0.2", "[::1]:3456",
         "app.localhost:3456"]
OTHER = ["evil.example", "localhost.evil.example:3456", "127.0.0.1.nip.io", "[::2]:80", "0x7f000001.evil"]


async def test_local_names_are_served_and_other_names_refused(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        for host in LOCAL + OTHER:
            async with s.get(url + "/health", headers={"Host": host}) as r:
                assert r.status == (200 if host in LOCAL else 403), host


async def test_the_name_given_to_host_is_served(home):
    """``serve --host mybox.lan --allow-remote`` without keys: that name is ours too, others are not."""
    opts = Options(simulate=True, host="MyBox.lan", allow_remote=True)
    server = TestServer(create_app(State(runtime=load_runtime(opts), options=opts)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as s:
            for host, status in (("mybox.lan:3456", 200), ("evil.example", 403)):
                async with s.get(str(server.make_url("/health")), headers={"Host": host}) as r:
                    assert r.status == status, host
    finally:
        await server.close()


@pytest.mark.parametrize("value,name", [
    ("localhost:3456", "localhost"), ("Example.COM", "example.com"), ("[::1]:80", "::1"), ("::1", "::1"),
    ("localhost.", "localhost"), ("", ""), ("[::1", ""), ("a.b:1:2", "a.b:1:2"),
])
def test_host_name(value, name):
    assert host_name(value) == name


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/batches", "/p/test/v1/messages/count_tokens",
                                  "/v1/chat/completions", "/api/route"])
@pytest.mark.parametrize("ctype", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None])
async def test_json_endpoints_take_only_json(proxy, fake_anthropic, path, ctype):
    """The bodies a form or a fetch without preflight can send: refused before anything is parsed."""
    url, _ = proxy
    body = b'{"requests":[{"custom_id":"a","params":' + repr(MSG).replace("'", '"').encode() + b"}]}"
    headers = {"content-type": ctype} if ctype else {}
    async with aiohttp.ClientSession(skip_auto_headers=["content-type"]) as s:
        async with s.post(url + path, data=body, headers=headers) as r:
            err = await r.json(content_type=None)
    assert r.status == 415
    assert err["error"]["type"] == "invalid_request_error" and "application/json" in err["error"]["message"]
    assert not fake_anthropic.requests


async def test_a_form_upload_from_another_site_is_refused(proxy):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        form = aiohttp.FormData({"file": "x"})
        async with s.post(url + "/v1/files", data=form, headers={"Origin": "https://evil.example"}) as r:
            assert r.status == 403 and (await r.json())["error"]["type"] == "permission_error"
        async with s.post(url + "/v1/files", data=b"file=x",
                          headers={"content-type": "application/x-www-form-urlencoded"}) as r:
            assert r.status == 415
        async with s.get(url + "/v1/files") as r:
            assert (await r.json())["data"] == []


async def test_sdk_clients_are_unaffected(proxy):
    url, _ = proxy
    c = anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)
    msg = await c.messages.create(**MSG)
    assert msg.content[0].text
    assert (await c.messages.count_tokens(model=MSG["model"], messages=MSG["messages"])).input_tokens > 0
    file_id, batch_id = await setup_data(url)
    assert (await c.messages.batches.retrieve(batch_id)).processing_status == "ended"
    await c.beta.files.delete(file_id)
    await c.messages.batches.delete(batch_id)
    async with aiohttp.ClientSession() as s:  # what a page can send without a preflight is not an SDK's request
        async with s.post(url + "/v1/messages", data=repr(MSG).replace("'", '"'),
                          headers={"content-type": "text/plain"}) as r:
            assert r.status == 415


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
async def test_the_dashboards_own_requests_are_served(proxy, name):
    """What a browser sends for the page at http://<name>:<port>/ui and its same-origin fetches."""
    url, _ = proxy
    origin = url.replace("127.0.0.1", name)
    page = {"Host": origin.removeprefix("http://"), "Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}
    fetch = {"Host": page["Host"], "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/ui", headers=page) as r:
            assert r.status == 200
        for path in ("/ui/app.js", "/api/kg", "/api/providers", "/api/stats?since=1h", "/health"):
            async with s.get(url + path, headers=fetch) as r:
                assert r.status == 200, path
        async with s.get(url + "/api/events", headers=fetch) as r:
            assert r.status == 200 and (await r.content.readline()).startswith(b"retry:")
        for path, body in (("/api/route", {"text": "fix the failing test", "profile": "test"}),
                           ("/p/test/api/route", MSG)):
            async with s.post(url + path, json=body, headers={**fetch, "Origin": origin}) as r:
                assert r.status == 200 and "scenario" in await r.json()
            foreign = {**fetch, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
            async with s.post(url + path, json=body, headers=foreign) as r:
                assert r.status == 403  # the same request from another site's page
