"""Message Batches and Files as Anthropic documents them, driven with the official SDK against the real app on
loopback: a request with invalid params ends ``errored`` (``invalid_request_error``) while the others run, on
an Anthropic-kind and an OpenAI-kind profile; ``request_counts`` stay at ``processing`` until the batch has
ended (the live counts are in ``llmproxy_progress``); what create still refuses; ``/p/<profile>`` lists that
profile's batches; a profile whose provider needs the client's credential refuses batches; uploaded files are
``downloadable: false`` and their content is refused as documented; filenames are kept as sent or refused."""

from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import pytest
from aiohttp import web

from tests.conftest import start_fake
from tests.fakes.anthropic import FakeAnthropic
from tests.test_files import multipart

GOOD = {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}


def client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)


async def wait_for(check, what: str, tries: int = 600):
    """Poll ``check()`` (async) until it returns something truthy: waiting on a state, never on a duration."""
    for _ in range(tries):
        if got := await check():
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def ended(c: anthropic.AsyncAnthropic, bid: str):
    async def check():
        b = await c.messages.batches.retrieve(bid)
        return b if b.processing_status == "ended" else None

    return await wait_for(check, f"batch {bid} to end")


# ------------------------------------------------------------------------------- process-time validation

BAD_ROWS = [  # (custom_id, params, what the errored result names)
    ("empty-messages", {**GOOD, "messages": []}, "params.messages"),
    ("no-max-tokens", {k: v for k, v in GOOD.items() if k != "max_tokens"}, "params.max_tokens: Field required"),
    ("bad-role", {**GOOD, "messages": [{"role": "robot", "content": "hi"}]}, "params.messages.0.role"),
    ("no-model", {"max_tokens": 5, "messages": GOOD["messages"]}, "params.model: Field required"),
    ("stream-not-bool", {**GOOD, "stream": "yes"}, "params.stream"),
]


@pytest.mark.parametrize("prefix, upstream", [("", "fake_anthropic"), ("/p/oai", "fake_openai")])
async def test_one_bad_row_errors_alone(proxy, request, prefix, upstream):
    url, _ = proxy
    fake = request.getfixturevalue(upstream)
    rows = [{"custom_id": f"ok-{i}", "params": GOOD} for i in range(3)]
    rows[1:1] = [{"custom_id": cid, "params": params} for cid, params, _ in BAD_ROWS]
    async with client(url + prefix) as c:
        batch = await c.messages.batches.create(requests=rows)  # accepted: params are checked when processed
        done = await ended(c, batch.id)
        results = {r.custom_id: r.result async for r in await c.messages.batches.results(batch.id)}
    counts = done.request_counts
    assert (counts.succeeded, counts.errored, counts.processing) == (3, len(BAD_ROWS), 0)
    for cid, _, named in BAD_ROWS:
        res = results[cid]
        assert res.type == "errored" and res.error.type == "error"
        assert res.error.error.type == "invalid_request_error" and named in res.error.error.message, res
    assert all(results[f"ok-{i}"].type == "succeeded" for i in range(3))
    assert len(fake.requests) == 3  # the invalid requests never reached the upstream


@pytest.mark.parametrize("rows, status, expected", [
    ([{"params": GOOD}], 400, "requests.0.custom_id: Field required"),
    ([{"custom_id": "a", "params": GOOD}, {"custom_id": "a", "params": GOOD}], 400,
     "requests.1.custom_id: duplicate custom_id 'a' (also requests.0)"),
    ([{"custom_id": "a b", "params": GOOD}], 400, "requests.0.custom_id: must match ^[a-zA-Z0-9_-]{1,64}$"),
    ([{"custom_id": "x" * 65, "params": GOOD}], 400, "requests.0.custom_id: must match"),
    ([{"custom_id": "", "params": GOOD}], 400, "requests.0.custom_id: must match"),
    ([{"custom_id": 7, "params": GOOD}], 400, "requests.0.custom_id: must match"),
    ([{"custom_id": "s", "params": {**GOOD, "stream": True}}], 400,
     "requests.0 (custom_id 's'): params.stream: batch requests cannot stream"),
    ([{"custom_id": "p", "params": "hello"}], 400, "requests.0 (custom_id 'p'): params: Input should be an object"),
    ([{"custom_id": "p", "params": [GOOD]}], 400, "requests.0 (custom_id 'p'): params: Input should be an object"),
    ([{"custom_id": "p"}], 400, "requests.0 (custom_id 'p'): params: Field required"),
    (["not an object"], 400, "requests.0: Input should be an object"),
    ([], 400, "requests: Field required"),
    ([{"custom_id": f"r{i}", "params": GOOD} for i in range(3)], 400, "exceed the limit of 2 per batch"),
    ([{"custom_id": f"r{i}", "params": {**GOOD, "system": "x" * 400}} for i in range(2)], 413,
     "batches.max_bytes"),
])
async def test_what_create_still_refuses(proxy_factory, rows, status, expected):
    url, _ = await proxy_factory("[batches]\nmax_requests = 2\nmax_bytes = 600\n")
    async with aiohttp.ClientSession() as s, s.post(url + "/v1/messages/batches", json={"requests": rows}) as r:
        body = await r.json()
    assert r.status == status, body
    assert body["type"] == "error" and expected in body["error"]["message"], body


# ------------------------------------------------------------------------------- request_counts

class HeldAnthropic(FakeAnthropic):
    """The fake Anthropic upstream, answering a request only once the test hands out a ticket."""

    def __init__(self) -> None:
        super().__init__("held")
        self.tickets = asyncio.Semaphore(0)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        await self.tickets.acquire()
        return await super().messages(request)


async def test_request_counts_stay_processing_until_ended(proxy_factory):
    held = HeldAnthropic()
    server = await start_fake(held)
    try:
        url, _ = await proxy_factory(f'[providers.anthropic]\nbase_url = "{server.make_url("")}"\n'
                                     "[batches]\nconcurrency = 4\n")
        async with client(url) as c:
            batch = await c.messages.batches.create(requests=[{"custom_id": f"h{i}", "params": GOOD}
                                                              for i in range(3)])
            processing = {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
            assert batch.request_counts.model_dump() == processing
            for _ in range(2):
                held.tickets.release()

            async def two_done():
                b = await c.messages.batches.retrieve(batch.id)
                return b if b.llmproxy_progress["succeeded"] == 2 else None

            mid = await wait_for(two_done, "two results")  # two results stored, one request still held
            assert mid.processing_status == "in_progress"
            assert mid.request_counts.model_dump() == processing
            assert mid.llmproxy_progress == {**processing, "processing": 1, "succeeded": 2}
            listed = (await c.messages.batches.list()).data[0]
            assert listed.request_counts.model_dump() == processing and listed.llmproxy_progress["succeeded"] == 2
            held.tickets.release()
            done = await ended(c, batch.id)
        final = {**processing, "processing": 0, "succeeded": 3}
        assert done.request_counts.model_dump() == final and done.llmproxy_progress == final
    finally:
        await server.close()


# ------------------------------------------------------------------------------- profiles and credentials

async def test_profile_prefix_lists_only_its_batches(proxy, fake_anthropic, fake_openai):
    url, _ = proxy
    async with client(url) as root, client(url + "/p/oai") as oai, client(url + "/p/test") as test:
        a = await root.messages.batches.create(requests=[{"custom_id": "r", "params": GOOD}])
        b = await oai.messages.batches.create(requests=[{"custom_id": "o", "params": GOOD}])
        c = await test.messages.batches.create(requests=[{"custom_id": "t", "params": GOOD}])
        assert [x.id async for x in oai.messages.batches.list()] == [b.id]
        assert [x.id async for x in test.messages.batches.list()] == [c.id, a.id]  # the root ran on test
        assert [x.id async for x in root.messages.batches.list()] == [c.id, b.id, a.id]
        with pytest.raises(anthropic.BadRequestError, match=a.id):  # another profile's id is no cursor here
            await oai.messages.batches.list(after_id=a.id)
        for bid in (a.id, b.id, c.id):
            await ended(root, bid)


async def test_forwarded_client_credential_refused_at_create(proxy_factory, home, fake_anthropic):
    """A provider with no key of its own that forwards the client's credential: its batches would fail
    every item (the credential is not kept), so create refuses them, naming the provider and the fix."""
    (home / "profiles").mkdir(exist_ok=True)
    (home / "profiles" / "fwd.toml").write_text('description = "subscription"\ndefault = "sub,claude-sonnet-4-5"\n')
    url, state = await proxy_factory(f"""
        [providers.sub]
        kind = "anthropic"
        base_url = "{fake_anthropic.url}"
        forward_client_key = true
        [providers.sub.models.claude-sonnet-4-5]
        context_window = 200000
    """)
    assert state.runtime.providers["sub"].simulated_reason is None  # live: it answers with the client's key
    async with client(url + "/p/fwd") as c:
        with pytest.raises(anthropic.BadRequestError) as exc:
            await c.messages.batches.create(requests=[{"custom_id": "a", "params": GOOD}])
        assert "'sub'" in exc.value.message and "forward_client_key" in exc.value.message
        assert [x.id async for x in c.messages.batches.list()] == []  # nothing was stored
    async with client(url) as c:  # the test profile does not route there: batches run
        b = await c.messages.batches.create(requests=[{"custom_id": "a", "params": GOOD}])
        assert (await ended(c, b.id)).request_counts.succeeded == 1


# ------------------------------------------------------------------------------- files

async def test_uploaded_file_is_not_downloadable(proxy, home):
    url, _ = proxy
    async with client(url) as c:
        meta = await c.beta.files.upload(file=("notes.txt", b"my notes\n", "text/plain"))
        assert meta.downloadable is False
        assert (await c.beta.files.retrieve_metadata(meta.id)).downloadable is False
        with pytest.raises(anthropic.BadRequestError) as exc:
            await c.beta.files.download(meta.id)
        assert exc.value.status_code == 400 and exc.value.error_code == "file_not_downloadable"
        assert exc.value.type == "invalid_request_error" and meta.id in exc.value.message
        with pytest.raises(anthropic.NotFoundError):
            await c.beta.files.download("file_unknown")
    assert (home / "files" / meta.id).read_bytes() == b"my notes\n"  # kept: `llmproxy files download` reads it


@pytest.mark.parametrize("name", ["a%2Fb.txt", "..", "résumé (final) 2026.txt", "a%09b%01.txt", "x" * 255])
async def test_filename_kept_as_sent(proxy, home, name):
    url, _ = proxy
    async with client(url) as c:
        meta = await c.beta.files.upload(file=(name, b"payload", "text/plain"))
        assert meta.filename == name
        assert (await c.beta.files.retrieve_metadata(meta.id)).filename == name
    assert sorted(p.name for p in (home / "files").iterdir()) == [meta.id]  # stored by id, never by name


@pytest.mark.parametrize("name, rule", [
    ("../../evil.txt", "'/'"), ("/etc/passwd", "'/'"), ("a:b.txt", "':'"), ("what?.txt", "'?'"),
    ("<b>.txt", "'<', '>'"), ("pipe|.txt", "'|'"), ("star*.txt", "'*'"), ("tab\there.txt", "'\\t'"),
    ("x" * 256, "1-255 characters"), ("", "Field required"),
])
async def test_filename_refused_naming_the_rule(proxy, home, name, rule):
    url, _ = proxy
    body, ctype = multipart([("file", name, b"payload")])  # by hand: the name reaches the server exactly
    async with aiohttp.ClientSession() as s, s.post(url + "/v1/files", data=body, headers={"content-type": ctype}) as r:
        err = await r.json()
    assert r.status == 400, err
    assert err["error"]["type"] == "invalid_request_error"
    assert err["error"]["message"].startswith("filename: ") and rule in err["error"]["message"], err
    assert list((home / "files").iterdir()) == []


async def declared_only(url: str, path: str, ctype: str, length: int) -> tuple[bytes, bytes]:
    """POST announcing ``length`` bytes but sending only a few: the (head, body) of the answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {ctype}\r\n"
                 f"Content-Length: {length}\r\n\r\n--XyZ\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    size = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
    body = await asyncio.wait_for(reader.readexactly(size), 10)
    writer.close()
    return head, body


async def test_upload_over_the_limit_refused_before_reading(proxy_factory, home):
    """The declared Content-Length alone is refused (413): the client has sent only the head of its body."""
    url, _ = await proxy_factory("[files]\nmax_bytes = 1000\n")
    head, body = await declared_only(url, "/v1/files", "multipart/form-data; boundary=XyZ", 1000 + 64 * 1024 + 1)
    assert head.startswith(b"HTTP/1.1 413") and b"files.max_bytes" in body, (head, body)
    assert list((home / "files").iterdir()) == []


async def test_the_apis_batch_limits_hold_whatever_the_config(proxy_factory):
    """batches.max_requests / max_bytes may lower the API's 100,000 requests and 256 MB, never raise them."""
    url, _ = await proxy_factory("[batches]\nmax_requests = 200000\nmax_bytes = 1073741824\n")
    rows = [{"custom_id": f"r{i}", "params": {}} for i in range(100_001)]
    async with aiohttp.ClientSession() as s, s.post(url + "/v1/messages/batches", json={"requests": rows}) as r:
        err = await r.json()
    assert r.status == 400 and "100001 requests exceed the limit of 100000" in err["error"]["message"], err
    head, body = await declared_only(url, "/v1/messages/batches", "application/json", 256 * 1024 * 1024 + 1)
    assert head.startswith(b"HTTP/1.1 413") and b"268435456 byte limit" in body, (head, body)


# ------------------------------------------------------------------------------- cost as billed

@pytest.mark.parametrize("usage, expected", [
    ({"input_tokens": 1_000_000, "output_tokens": 1_000_000}, 18.0),
    ({"input_tokens": 1_000_000, "output_tokens": 1_000_000, "service_tier": "standard"}, 18.0),
    ({"input_tokens": 1_000_000, "output_tokens": 1_000_000, "service_tier": "batch"}, 9.0),
    ({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100, "service_tier": "batch"},
     round((10 * 3 + 5 * 15 + 100 * 0.3) / 1e6 / 2, 8)),
    ({"input_tokens": 0, "service_tier": "batch"}, 0.0),
])
def test_batch_tier_costs_half(usage, expected):
    from llmproxy.config import ModelSpec
    from llmproxy.obs.cost import cost_usd

    spec = ModelSpec(id="m", input_price=3.0, output_price=15.0, cache_read_price=0.3, cache_write_price=3.75)
    assert cost_usd(usage, spec) == expected


# ------------------------------------------------------------------------------- the CLI's files commands

def test_cli_download_copies_from_the_store(home, tmp_path, monkeypatch):
    """The API never serves an upload's content; `llmproxy files download` copies it out of the local store,
    naming the copy after the stored filename only when that is a plain name (else the file id)."""
    from typer.testing import CliRunner

    from llmproxy.cli.app import app
    from llmproxy.store import open_store

    async def put(name: str, data: bytes) -> str:
        async def chunks():
            yield data

        store = open_store(home)
        try:
            return (await store.put_file(name, "text/plain", chunks(), 1000)).id
        finally:
            await store.close()

    plain, dots = asyncio.run(put("notes.txt", b"my notes\n")), asyncio.run(put("..", b"dots\n"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["files", "download", plain])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "notes.txt").read_bytes() == b"my notes\n"
    r = runner.invoke(app, ["files", "download", dots])
    assert r.exit_code == 0 and (tmp_path / dots).read_bytes() == b"dots\n", r.output
    r = runner.invoke(app, ["files", "download", plain])  # never overwrites without --force
    assert r.exit_code == 1 and "exists" in r.output
    r = runner.invoke(app, ["files", "download", "file_nope"])
    assert r.exit_code == 1 and "file_nope" in r.output


def test_cli_upload_refuses_a_name_the_api_refuses(home, tmp_path):
    from typer.testing import CliRunner

    from llmproxy.cli.app import app

    src = tmp_path / "a:b.txt"
    src.write_text("x")
    r = CliRunner().invoke(app, ["files", "upload", str(src)])  # refused before any daemon is asked
    assert r.exit_code == 1 and "filename: must not contain" in r.output and "':'" in r.output, r.output
