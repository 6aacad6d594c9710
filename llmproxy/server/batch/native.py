"""Native batches (a profile's ``native_batches = true``): when every item of a batch routes to the same live
Anthropic-kind provider, the batch is submitted to that provider's own Message Batches API (half price)
instead of being run item by item; the proxy mirrors its status, forwards a cancel, and when it has ended
fetches its results into the store, where they are served like any other batch's. Otherwise the batch runs
locally as usual. The upstream's ``results_url`` is fetched by the proxy with the provider's key; the client
only ever sees the proxy's own."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson

from llmproxy.errors import ProxyError, UpstreamError
from llmproxy.protocol.adapt import adapt_for_model
from llmproxy.routing import CompiledProfile
from llmproxy.server.middleware import new_request_id
from llmproxy.server.record import RequestRecord, finish
from llmproxy.server.state import State
from llmproxy.store import Batch
from llmproxy.store.inline import inline_files
from llmproxy.store.sqlite import now_iso

log = logging.getLogger("llmproxy")


class Native:
    def __init__(self, state: State, store):
        self.state, self.store = state, store

    def _headers(self, provider: str) -> dict[str, str]:
        cfg = self.state.runtime.cfg.providers[provider]
        out = {"anthropic-version": "2023-06-01", "content-type": "application/json", **cfg.headers}
        if key := cfg.api_key():
            out["x-api-key"] = key
        return out

    async def _call(self, method: str, provider: str, url: str, payload: bytes | None = None) -> aiohttp.ClientResponse:
        cfg = self.state.runtime.cfg.providers[provider]
        assert self.state.session is not None
        try:
            resp = await self.state.session.request(method, url, data=payload, headers=self._headers(provider),
                                                    timeout=aiohttp.ClientTimeout(total=cfg.total_timeout,
                                                                                  connect=cfg.connect_timeout))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(f"{provider}: batch API unreachable ({exc})") from None
        if resp.status >= 400:
            raw = await resp.read()
            resp.close()
            from llmproxy.errors import from_upstream_status
            from llmproxy.providers.anthropic import error_message

            raise from_upstream_status(resp.status, error_message(raw), provider)
        return resp

    async def submit(self, batch: Batch, items: list[tuple[str, bytes]], profile: CompiledProfile) -> dict | None:
        """Submit to the provider's batch API when every item's route starts at the same live Anthropic-kind
        provider; {"provider", "id"} of the upstream batch, or None (then the batch runs locally)."""
        rt = self.state.runtime
        reqs, providers = [], set()
        for cid, raw in items:
            params = await inline_files(orjson.loads(raw), self.store, max_bytes=rt.cfg.files.max_inline_bytes)
            target = rt.router.decide(params, profile, raw_len=len(raw)).target
            prov = rt.providers.get(target.provider)
            if prov is None or prov.config.kind != "anthropic" or prov.simulated_reason is not None:
                return None
            providers.add(target.provider)
            reqs.append({"custom_id": cid,
                         "params": adapt_for_model(params, target.model, prov.config.model(target.model))})
        if len(providers) != 1:
            return None
        (name,) = providers
        base = rt.cfg.providers[name].base_url
        resp = await self._call("POST", name, base + "/v1/messages/batches", orjson.dumps({"requests": reqs}))
        up = await resp.json()
        log.info("batch %s submitted to %s as %s", batch.id, name, up.get("id"))
        return {"provider": name, "id": up["id"], "request_counts": up.get("request_counts")}

    async def mirror(self, executor, batch: Batch) -> None:
        """Follow the upstream batch until it ends (forwarding a cancel), then store its results."""
        store, native = executor.store, dict(batch.native or {})
        name, up_id = native["provider"], native["id"]
        base = self.state.runtime.cfg.providers[name].base_url + "/v1/messages/batches/" + up_id
        canceled_sent = False  # a cancel made before a restart is sent again (the upstream takes it twice)
        while True:
            try:
                if executor._cancel[batch.id].is_set() and not canceled_sent:
                    (await self._call("POST", name, base + "/cancel")).close()
                    canceled_sent = True
                resp = await self._call("GET", name, base)
                up = await resp.json()
            except ProxyError as exc:
                log.warning("batch %s: mirroring %s failed: %s", batch.id, up_id, exc.message)
                up = None
            if up is not None:
                if up.get("request_counts") != native.get("request_counts"):
                    native["request_counts"] = up.get("request_counts")
                    await store.update_batch(batch.id, native=native)
                if up.get("processing_status") == "ended":
                    break
            await asyncio.sleep(self.state.runtime.cfg.batches.native_poll_seconds)
        await self._fetch_results(store, batch, name, up.get("results_url") or base + "/results")
        await store.finish_pending(batch.id, "expired")  # anything the upstream did not report
        await store.update_batch(batch.id, status="ended", ended_at=up.get("ended_at") or now_iso())

    async def _fetch_results(self, store, batch: Batch, provider: str, url: str) -> None:
        index: dict[str, int] = {}
        last = -1
        while page := await store.pending_items(batch.id, last, 5000):
            for it in page:
                index[it.custom_id] = last = it.index
        resp = await self._call("GET", provider, url)
        try:
            async for line in resp.content:
                if not line.strip():
                    continue
                row = orjson.loads(line)
                cid, result = row.get("custom_id"), row.get("result") or {}
                if cid not in index or result.get("type") not in ("succeeded", "errored", "canceled", "expired"):
                    continue
                if await store.put_result(batch.id, index[cid], cid, result["type"], orjson.dumps(row)):
                    self._record(batch, provider, cid, result)
        finally:
            resp.close()

    def _record(self, batch: Batch, provider: str, cid: str, result: dict) -> None:
        """One request-log record per item, as for locally run items (cost at list price: an upper bound)."""
        from llmproxy.config import Target

        rec = RequestRecord(request_id=new_request_id(), endpoint="messages",
                            client={"address": None, "user_agent": "llmproxy-batch"})
        rec.extra.update(batch_id=batch.id, custom_id=cid, native_batch=True)
        rec.profile, rec.stream = batch.profile, False
        msg = result.get("message") if result.get("type") == "succeeded" else None
        if isinstance(msg, dict):
            rec.target, rec.simulated = Target(provider, str(msg.get("model"))), False
            rec.status, rec.stop_reason = 200, msg.get("stop_reason")
            rec.usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else {}
        else:
            rec.status = 400 if result.get("type") == "errored" else 499
            err = (result.get("error") or {}).get("error") or {}
            rec.error = str(err.get("message") or result.get("type"))
        finish(self.state, rec)

