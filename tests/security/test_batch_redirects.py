"""Native batches carry the provider's key: no request of theirs follows a redirect, and a batch's
``results_url`` is fetched only on the provider's own origin. A second local server stands for "another
address": whatever the fake Anthropic batch API answers, it never hears from the proxy, key or not."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from aiohttp import web

from tests.conftest import start_fake
from tests.test_batches_native import NATIVE_PROFILE, FakeBatchAPI, req, wait_ended


class Elsewhere:
    """Another origin (another port on 127.0.0.1): records every request and answers like the batch API
    would, so a proxy that followed it there would carry on as if nothing happened."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.any)
        return app

    async def any(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path, request.headers.get("x-api-key")))
        if request.path.endswith("/results"):
            return web.Response(body=b'{"custom_id": "a", "result": {"type": "canceled"}}\n')
        return web.json_response({"id": "msgbatch_elsewhere", "type": "message_batch",
                                  "processing_status": "ended", "request_counts": {}, "results_url": None})


class Redirecting(FakeBatchAPI):
    """The batch API answering one of its calls with a redirect to ``Elsewhere``."""

    def __init__(self, call: str, elsewhere: Elsewhere) -> None:
        super().__init__()
        self.call, self.elsewhere = call, elsewhere

    def _away(self, request: web.Request) -> web.Response:
        self.calls.append((f"{self.call} (redirected)", "", {}))
        raise web.HTTPTemporaryRedirect(self.elsewhere.url + request.path)

    async def create(self, request: web.Request) -> web.Response:
        return self._away(request) if self.call == "create" else await super().create(request)

    async def get(self, request: web.Request) -> web.Response:
        return self._away(request) if self.call == "get" else await super().get(request)

    async def results(self, request: web.Request) -> web.StreamResponse:
        return self._away(request) if self.call == "results" else await super().results(request)


class ForeignResults(FakeBatchAPI):
    """The batch API naming a ``results_url`` on another origin once the batch has ended."""

    def __init__(self, elsewhere: Elsewhere) -> None:
        super().__init__()
        self.elsewhere = elsewhere

    def finish(self, bid: str, canceled: bool = False) -> None:
        super().finish(bid, canceled)
        self.batches[bid]["results_url"] = f"{self.elsewhere.url}/v1/messages/batches/{bid}/results"


@pytest.fixture
async def elsewhere():
    other = Elsewhere()
    server = await start_fake(other)
    other.url = str(server.make_url("")).rstrip("/")
    yield other
    await server.close()


async def native_setup(proxy_factory, home, fake: FakeBatchAPI):
    """``tests/test_batches_native.py``'s set-up (profile ``native``, provider ``nat``) around ``fake``."""
    server = await start_fake(fake)
    fake.url = str(server.make_url("")).rstrip("/")
    (home / "profiles").mkdir(exist_ok=True)
    (home / "profiles" / "native.toml").write_text(NATIVE_PROFILE)
    url, _ = await proxy_factory(f"""
        [batches]
        native_poll_seconds = 0.05
        [providers.nat]
        kind = "anthropic"
        base_url = "{fake.url}"
        api_key_env = "ANTHROPIC_API_KEY"
        [providers.nat.models.claude-sonnet-4-5]
        context_window = 200000
    """)
    return fake, server, url


async def until(predicate, what: str) -> None:
    for _ in range(400):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(what)


async def test_a_redirected_create_is_not_followed(proxy_factory, home, elsewhere):
    fake, server, url = await native_setup(proxy_factory, home, Redirecting("create", elsewhere))
    try:
        async with anthropic.AsyncAnthropic(base_url=url + "/p/native", api_key="client", max_retries=0) as c:
            batch = await c.messages.batches.create(requests=[req("a")])
            assert elsewhere.seen == []
            await wait_ended(c, batch.id)  # the native submission failed: it ran locally instead
        assert [k for k, *_ in fake.calls] == ["create (redirected)"] and fake.batches == {}
        assert elsewhere.seen == []
    finally:
        await server.close()


@pytest.mark.parametrize("call", ["get", "results"])
async def test_a_redirected_status_or_results_call_is_not_followed(proxy_factory, home, elsewhere, call):
    fake, server, url = await native_setup(proxy_factory, home, Redirecting(call, elsewhere))
    try:
        async with anthropic.AsyncAnthropic(base_url=url + "/p/native", api_key="client", max_retries=0) as c:
            batch = await c.messages.batches.create(requests=[req("a")])
            (up_id,) = fake.batches
            fake.finish(up_id)
            if call == "get":  # the status never comes: the proxy keeps asking the provider, never elsewhere
                await until(lambda: elsewhere.seen or [k for k, *_ in fake.calls].count("get (redirected)") >= 3,
                            "the proxy polled the batch API")
            else:  # the results never come: the item ends errored, saying why
                done = await wait_ended(c, batch.id)
                assert done.request_counts.errored == 1
                (result,) = [r.result async for r in await c.messages.batches.results(batch.id)]
                assert result.type == "errored" and "redirected" in result.error.error.message
        assert elsewhere.seen == []
    finally:
        await server.close()


async def test_a_results_url_on_another_origin_is_not_fetched(proxy_factory, home, elsewhere):
    fake, server, url = await native_setup(proxy_factory, home, ForeignResults(elsewhere))
    try:
        async with anthropic.AsyncAnthropic(base_url=url + "/p/native", api_key="client", max_retries=0) as c:
            batch = await c.messages.batches.create(requests=[req("a"), req("b")])
            (up_id,) = fake.batches
            fake.finish(up_id)
            done = await wait_ended(c, batch.id)
            results = {r.custom_id: r.result async for r in await c.messages.batches.results(batch.id)}
        assert done.request_counts.errored == 2
        for result in results.values():
            message = result.error.error.message
            assert result.type == "errored" and elsewhere.url in message and "own origin" in message
        assert elsewhere.seen == []  # not a request, so not the key
    finally:
        await server.close()
