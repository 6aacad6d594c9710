"""``native_batches = true``: a batch whose items all route to a live Anthropic-kind provider is submitted to
that provider's batch API (a fake here), mirrored, cancelled upstream, and its results served by the proxy."""

from __future__ import annotations

import asyncio
import json

import anthropic
from aiohttp import web

from tests.conftest import start_fake, wait_log


class FakeBatchAPI:
    """Anthropic's Message Batches API, in memory: a batch ends when ``finish`` is called."""

    def __init__(self) -> None:
        self.batches: dict[str, dict] = {}
        self.requests: dict[str, list] = {}
        self.calls: list[tuple[str, str, dict]] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages/batches", self.create)
        app.router.add_get("/v1/messages/batches/{id}", self.get)
        app.router.add_post("/v1/messages/batches/{id}/cancel", self.cancel)
        app.router.add_get("/v1/messages/batches/{id}/results", self.results)
        return app

    def _obj(self, bid: str) -> dict:
        return self.batches[bid]

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(("create", request.headers.get("x-api-key", ""), body))
        bid = f"msgbatch_upstream{len(self.batches)}"
        n = len(body["requests"])
        self.requests[bid] = body["requests"]
        self.batches[bid] = {"id": bid, "type": "message_batch", "processing_status": "in_progress",
                             "request_counts": {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0,
                                                "expired": 0},
                             "ended_at": None, "created_at": "2026-01-01T00:00:00Z",
                             "expires_at": "2026-01-02T00:00:00Z", "cancel_initiated_at": None, "results_url": None}
        return web.json_response(self.batches[bid])

    async def get(self, request: web.Request) -> web.Response:
        self.calls.append(("get", request.headers.get("x-api-key", ""), {}))
        return web.json_response(self._obj(request.match_info["id"]))

    async def cancel(self, request: web.Request) -> web.Response:
        bid = request.match_info["id"]
        self.calls.append(("cancel", request.headers.get("x-api-key", ""), {}))
        self.finish(bid, canceled=True)
        return web.json_response(self._obj(bid))

    def finish(self, bid: str, canceled: bool = False) -> None:
        b = self.batches[bid]
        n = len(self.requests[bid])
        ok = 1 if canceled else n
        b.update(processing_status="ended", ended_at="2026-01-01T01:00:00Z",
                 results_url=f"{self.url}/v1/messages/batches/{bid}/results",
                 request_counts={"processing": 0, "succeeded": ok, "errored": 0, "canceled": n - ok, "expired": 0})

    async def results(self, request: web.Request) -> web.StreamResponse:
        bid = request.match_info["id"]
        self.calls.append(("results", request.headers.get("x-api-key", ""), {}))
        b = self.batches[bid]
        lines = []
        for i, r in enumerate(self.requests[bid]):
            if i < b["request_counts"]["succeeded"]:
                msg = {"id": f"msg_{i}", "type": "message", "role": "assistant", "model": r["params"]["model"],
                       "content": [{"type": "text", "text": f"native answer {i}"}], "stop_reason": "end_turn",
                       "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5}}
                lines.append({"custom_id": r["custom_id"], "result": {"type": "succeeded", "message": msg}})
            else:
                lines.append({"custom_id": r["custom_id"], "result": {"type": "canceled"}})
        return web.Response(body="\n".join(json.dumps(x) for x in lines) + "\n", content_type="application/binary")


NATIVE_PROFILE = 'description = "native"\ndefault = "nat,claude-sonnet-4-5"\nnative_batches = true\n'


async def _setup(proxy_factory, home):
    fake = FakeBatchAPI()
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
        input_price = 3.0
        output_price = 15.0
    """)
    return fake, server, url


def req(cid: str, **extra) -> dict:
    return {"custom_id": cid, "params": {"model": "claude-opus-4-8", "max_tokens": 20,
                                         "messages": [{"role": "user", "content": "hi"}], **extra}}


async def wait_ended(c, bid):
    for _ in range(200):
        b = await c.messages.batches.retrieve(bid)
        if b.processing_status == "ended":
            return b
        await asyncio.sleep(0.05)
    raise AssertionError(b)


async def test_native_batch_submitted_mirrored_and_served(proxy_factory, home):
    from tests.conftest import UPSTREAM_KEY

    fake, server, url = await _setup(proxy_factory, home)
    try:
        async with anthropic.AsyncAnthropic(base_url=url + "/p/native", api_key="client", max_retries=0) as c:
            batch = await c.messages.batches.create(requests=[req("a"), req("b"), req("c")])
            assert len(fake.batches) == 1
            (up_id, up_reqs), = fake.requests.items()
            assert [r["params"]["model"] for r in up_reqs] == ["claude-sonnet-4-5"] * 3  # routed first
            assert fake.calls[0][1] == UPSTREAM_KEY  # the provider's key, never the client's
            await asyncio.sleep(0.2)
            b = await c.messages.batches.retrieve(batch.id)
            assert b.processing_status == "in_progress" and b.request_counts.processing == 3
            fake.finish(up_id)
            done = await wait_ended(c, batch.id)
            assert done.request_counts.succeeded == 3
            assert done.results_url.startswith(url + "/p/native/")  # ours, never the upstream's
            results = {r.custom_id: r.result async for r in await c.messages.batches.results(batch.id)}
        assert results["b"].message.content[0].text == "native answer 1"
        assert {k for k, *_ in fake.calls} >= {"create", "get", "results"}
        # costed as billed: the batch tier is half the list price ((10 * $3 + 5 * $15) / 1M, halved)
        recs = [r for r in await wait_log(home, 3) if r.get("native_batch")]
        assert len(recs) == 3 and {r["cost_usd"] for r in recs} == {round((10 * 3 + 5 * 15) / 1e6 / 2, 8)}
        assert {r["usage"]["service_tier"] for r in recs} == {"batch"}
    finally:
        await server.close()


async def test_native_cancel_is_forwarded(proxy_factory, home):
    fake, server, url = await _setup(proxy_factory, home)
    try:
        async with anthropic.AsyncAnthropic(base_url=url + "/p/native", api_key="client", max_retries=0) as c:
            batch = await c.messages.batches.create(requests=[req("a"), req("b")])
            await c.messages.batches.cancel(batch.id)
            done = await wait_ended(c, batch.id)
            assert (done.request_counts.succeeded, done.request_counts.canceled) == (1, 1)
        assert "cancel" in [k for k, *_ in fake.calls]
    finally:
        await server.close()


async def test_without_the_flag_or_off_anthropic_it_runs_locally(proxy_factory, home, fake_anthropic):
    fake, server, url = await _setup(proxy_factory, home)
    try:
        async with anthropic.AsyncAnthropic(base_url=url, api_key="client", max_retries=0) as c:  # test profile
            batch = await c.messages.batches.create(requests=[req("a")])
            done = await wait_ended(c, batch.id)
            assert done.request_counts.succeeded == 1
        assert fake.batches == {} and len(fake_anthropic.requests) == 1
    finally:
        await server.close()
