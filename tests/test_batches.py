"""Message Batches through the proxy, driven by the official anthropic SDK: create -> poll -> results ->
list -> delete, per-item errors, create-time refusals naming the item, cancel with items in flight, expiry,
the request log, results_url under a /p/ prefix, yielding to live traffic. (What the API documents about
process-time validation and request_counts: tests/test_batches_documented.py.)"""

from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import pytest

from tests.conftest import wait_log


def client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)


def req(cid: str, text: str = "hello", **params) -> dict:
    return {"custom_id": cid, "params": {"model": "claude-sonnet-4-5", "max_tokens": 50,
                                         "messages": [{"role": "user", "content": text}], **params}}


async def wait_ended(c: anthropic.AsyncAnthropic, bid: str, timeout: float = 20.0):
    for _ in range(int(timeout / 0.05)):
        b = await c.messages.batches.retrieve(bid)
        if b.processing_status == "ended":
            return b
        await asyncio.sleep(0.05)
    raise AssertionError(f"batch {bid} did not end: {b}")


async def test_create_poll_results_list_delete(proxy, fake_anthropic, home):
    url, _ = proxy
    async with client(url) as c:
        batch = await c.messages.batches.create(requests=[req(f"r-{i}", f"question {i}") for i in range(5)])
        assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
        assert batch.processing_status == "in_progress" and batch.results_url is None
        assert batch.request_counts.processing == 5 and batch.llmproxy_progress["processing"] <= 5
        assert batch.expires_at > batch.created_at
        done = await wait_ended(c, batch.id)
        assert done.request_counts.succeeded == 5 and done.request_counts.processing == 0
        assert done.ended_at is not None
        assert done.results_url == f"{url}/v1/messages/batches/{batch.id}/results"
        results = [r async for r in await c.messages.batches.results(batch.id)]
        assert sorted(r.custom_id for r in results) == [f"r-{i}" for i in range(5)]
        assert all(r.result.type == "succeeded" for r in results)
        assert results[0].result.message.content[0].text == "Hello from the fake upstream."
        # routed like live traffic: the test profile's default target
        assert {r["body"]["model"] for r in fake_anthropic.requests} == {"claude-sonnet-4-5"}
        assert not any(r["body"].get("stream") for r in fake_anthropic.requests)
        page = await c.messages.batches.list(limit=10)
        assert [b.id for b in page.data] == [batch.id]
        deleted = await c.messages.batches.delete(batch.id)
        assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
        with pytest.raises(anthropic.NotFoundError, match=batch.id):
            await c.messages.batches.retrieve(batch.id)
    recs = [r for r in await wait_log(home, 5) if r.get("batch_id") == batch.id]
    assert sorted(r["custom_id"] for r in recs) == [f"r-{i}" for i in range(5)]
    assert all(r["endpoint"] == "messages" and r["status"] == 200 and r["target"] == "anthropic/claude-sonnet-4-5"
               for r in recs)
    assert all(r["usage"]["output_tokens"] == 7 and r.get("cost_usd") is not None for r in recs)


async def test_items_that_error_upstream(proxy_factory, fake_anthropic, fake_backup):
    url, _ = await proxy_factory("[batches]\nconcurrency = 1\n")
    # item 0: a 400 from the upstream (not retried, no fallback); item 1: the primary 500s -> fallback serves
    fake_anthropic.script = [{"status": 400, "error_type": "invalid_request_error", "message": "bad thing"},
                             {"status": 500}]
    async with client(url) as c:
        batch = await c.messages.batches.create(requests=[req("bad"), req("falls-back"), req("fine")])
        done = await wait_ended(c, batch.id)
        assert (done.request_counts.succeeded, done.request_counts.errored) == (2, 1)
        results = {r.custom_id: r.result async for r in await c.messages.batches.results(batch.id)}
    assert results["bad"].type == "errored"
    assert results["bad"].error.error.type == "invalid_request_error"
    assert "bad thing" in results["bad"].error.error.message
    assert results["falls-back"].type == "succeeded" and results["fine"].type == "succeeded"
    assert len(fake_backup.requests) == 1


@pytest.mark.parametrize("requests, expected", [
    ([], "requests"),
    ([{"params": req("x")["params"]}], "requests.0.custom_id: Field required"),
    ([req("a"), req("a")], "requests.1.custom_id: duplicate custom_id 'a' (also requests.0)"),
    ([req("a b")], "requests.0.custom_id: must match ^[a-zA-Z0-9_-]{1,64}$"),
    ([req("ok"), {"custom_id": "broken", "params": "m"}], "requests.1 (custom_id 'broken'): params: Input should"),
    ([req("s", stream=True)], "requests.0 (custom_id 's'): params.stream"),
    ([req("a"), req("b"), req("c")], "exceed the limit of 2"),
])
async def test_create_refuses_the_batch_structure(proxy_factory, requests, expected):
    url, _ = await proxy_factory("[batches]\nmax_requests = 2\n")
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages/batches", json={"requests": requests}) as r:
            body = await r.json()
    assert r.status == 400, body
    assert expected in body["error"]["message"]


async def test_size_limit(proxy_factory):
    url, _ = await proxy_factory("[batches]\nmax_bytes = 2000\n")
    async with client(url) as c:
        with pytest.raises(anthropic.APIStatusError, match="batches.max_bytes") as exc:
            await c.messages.batches.create(requests=[req(f"r{i}", "x" * 100) for i in range(30)])
    assert exc.value.status_code == 413


async def test_unknown_ids_and_not_ready(proxy_factory):
    url, _ = await proxy_factory("[server]\nsimulator_speed = 0.5\n", simulate=True)
    async with client(url) as c:
        for call in (c.messages.batches.retrieve, c.messages.batches.cancel, c.messages.batches.delete):
            with pytest.raises(anthropic.NotFoundError, match="msgbatch_nope"):
                await call("msgbatch_nope")
        with pytest.raises(anthropic.BadRequestError, match="msgbatch_nope"):
            await c.messages.batches.list(after_id="msgbatch_nope")
        batch = await c.messages.batches.create(requests=[req("slow", "write a long story")])
        with pytest.raises(anthropic.BadRequestError, match="only an ended batch"):
            await c.messages.batches.delete(batch.id)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/v1/messages/batches/{batch.id}/results") as r:
                assert r.status == 400 and "in_progress" in (await r.json())["error"]["message"]
        await c.messages.batches.cancel(batch.id)
        await wait_ended(c, batch.id)


async def test_cancel_with_items_in_flight(proxy_factory, home):
    url, state = await proxy_factory("[server]\nsimulator_speed = 2\n[batches]\nconcurrency = 2\n", simulate=True)
    async with client(url) as c:
        batch = await c.messages.batches.create(requests=[req(f"c{i}") for i in range(12)])
        for _ in range(400):  # the first result is in, two more items are in flight
            if (await c.messages.batches.retrieve(batch.id)).llmproxy_progress["succeeded"] >= 1:
                break
            await asyncio.sleep(0.01)
        canceling = await c.messages.batches.cancel(batch.id)
        assert canceling.processing_status in ("canceling", "ended")
        assert canceling.cancel_initiated_at is not None
        done = await wait_ended(c, batch.id)
        counts = done.request_counts
        assert counts.processing == 0 and counts.canceled >= 6 and counts.succeeded >= 2
        assert counts.succeeded + counts.canceled == 12 and counts.errored == 0
        results = [r async for r in await c.messages.batches.results(batch.id)]
        assert len(results) == 12 and len({r.custom_id for r in results}) == 12
        assert sum(r.result.type == "canceled" for r in results) == counts.canceled
        again = await c.messages.batches.cancel(batch.id)  # an ended batch comes back unchanged
        assert again.processing_status == "ended"


async def test_expiry_marks_unfinished_items_expired(proxy_factory):
    # 0.0005 h = 1.8 s; items take ~0.5 s each, one at a time
    url, _ = await proxy_factory("[server]\nsimulator_speed = 1\n[batches]\nconcurrency = 1\nexpiry_hours = 0.0005\n",
                                 simulate=True)
    async with client(url) as c:
        batch = await c.messages.batches.create(requests=[req(f"e{i}") for i in range(20)])
        done = await wait_ended(c, batch.id, timeout=30)
        counts = done.request_counts
        assert counts.expired > 0 and counts.succeeded > 0
        assert counts.expired + counts.succeeded == 20 and counts.processing == 0
        results = {r.custom_id: r.result.type async for r in await c.messages.batches.results(batch.id)}
    assert sorted(results.values()).count("expired") == counts.expired


async def test_results_url_keeps_the_profile_prefix(proxy, fake_openai):
    url, _ = proxy
    async with client(url + "/p/oai") as c:
        batch = await c.messages.batches.create(requests=[req("one")])
        done = await wait_ended(c, batch.id)
        assert done.results_url == f"{url}/p/oai/v1/messages/batches/{batch.id}/results"
        results = [r async for r in await c.messages.batches.results(batch.id)]
    # the batch ran through the oai profile: the OpenAI-kind fake answered
    assert results[0].result.type == "succeeded"
    assert results[0].result.message.content[0].text == "Hello from the fake OpenAI upstream."
    assert len(fake_openai.requests) == 1


async def test_batch_work_yields_to_live_traffic(proxy_factory):
    url, state = await proxy_factory("[server]\nsimulator_speed = 4\n[batches]\nconcurrency = 8\nyield_in_flight = 2\n",
                                     simulate=True)
    now, seen = [0], []
    for prov in state.runtime.providers.values():
        def counted(call, orig=prov.messages):
            async def run():
                now[0] += 1
                seen.append(now[0])
                try:
                    return await orig(call)
                finally:
                    now[0] -= 1
            return run()
        prov.messages = counted
    state.in_flight = 5  # pretend five interactive requests are being served
    async with client(url) as c:
        batch = await c.messages.batches.create(requests=[req(f"y{i}") for i in range(40)])
        await asyncio.sleep(0.5)
        assert seen and max(seen) == 1  # under load: one item at a time
        state.in_flight = 0
        await wait_ended(c, batch.id)
    assert max(seen) > 1  # without live load the batch runs at its concurrency
