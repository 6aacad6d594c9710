"""Native batches (a profile's ``native_batches = true``): when every item of a batch routes to the same live
provider that runs batches itself (a ``BatchProvider``: Anthropic-kind), the batch is submitted to that
provider's own Message Batches API (half price) instead of being run item by item; the proxy mirrors its
status, forwards a cancel, and when it has ended fetches its results into the store, where they are served
like any other batch's. Otherwise the batch runs locally as usual.

This module decides and records; the HTTP is the provider's (``llmproxy/providers/batches.py``: its timeouts
and error mapping, no redirect followed, ``results_url`` only on the provider's own origin). The client only
ever sees the proxy's own ``results_url``. Results the proxy cannot fetch (an upstream ``results_url`` on
another origin, or fetching failing ``RESULT_ATTEMPTS`` times) end each remaining item ``errored``, saying
why."""

from __future__ import annotations

import asyncio
import logging

import orjson

from llmproxy.config import Target
from llmproxy.errors import ProxyError, UpstreamError
from llmproxy.protocol.adapt import adapt_for_model
from llmproxy.providers.batches import BatchProvider
from llmproxy.routing import CompiledProfile
from llmproxy.server.batch.executor import KeyNames, inline_item
from llmproxy.server.request.middleware import new_request_id
from llmproxy.server.request.record import RequestRecord, finish, whole_message
from llmproxy.server.state import State
from llmproxy.store import RESULT_TYPES, Batch, Store
from llmproxy.store.sqlite import now_iso

log = logging.getLogger("llmproxy")

#: polls on which fetching an ended batch's results may fail (retryably) before its items end errored
RESULT_ATTEMPTS = 5


class Native:
    def __init__(self, state: State, store: Store):
        self.state, self.store = state, store
        self.keys = KeyNames(store)

    def _provider(self, name: str) -> BatchProvider:
        """The live provider ``name`` as a BatchProvider (a reload may have taken it away: an error then)."""
        prov = self.state.runtime.providers.get(name)
        if not isinstance(prov, BatchProvider) or prov.simulated_reason is not None:
            raise UpstreamError(f"{name}: no longer a live provider with a batch API (configuration reloaded?)")
        return prov

    async def submit(self, batch: Batch, items: list[tuple[str, bytes]], profile: CompiledProfile) -> dict | None:
        """Submit to the provider's batch API when every item's route starts at the same live BatchProvider;
        {"provider", "id", "request_counts"} of the upstream batch, or None (then the batch runs locally)."""
        rt = self.state.runtime
        reqs, providers = [], set()
        for cid, raw in items:
            params = await inline_item(orjson.loads(raw), self.store, batch, rt.cfg.files.max_inline_bytes)
            target = rt.router.decide(params, profile, raw_len=len(raw)).target
            prov = rt.providers.get(target.provider)
            if not isinstance(prov, BatchProvider) or prov.simulated_reason is not None:
                return None
            providers.add(target.provider)
            reqs.append({"custom_id": cid,
                         "params": adapt_for_model(params, target.model, prov.config.model(target.model))})
        if len(providers) != 1:
            return None
        (name,) = providers
        up = await self._provider(name).create_batch(reqs)
        log.info("batch %s submitted to %s as %s", batch.id, name, up["id"])
        return {"provider": name, "id": up["id"], "request_counts": up.get("request_counts")}

    async def _canceling(self, batch_id: str) -> bool:
        """Whether a cancel was asked for (the store says so, whichever worker took it)."""
        now = await self.store.get_batch(batch_id)
        return now is not None and now.status == "canceling"

    async def _poll(self, batch: Batch, native: dict, cancel_sent: bool) -> tuple[dict | None, bool]:
        """One look at the upstream batch, forwarding a cancel first if one is pending: (its object or None
        when the look failed, whether the cancel has been sent)."""
        name, up_id = native["provider"], native["id"]
        try:
            prov = self._provider(name)
            if not cancel_sent and await self._canceling(batch.id):
                await prov.cancel_batch(up_id)
                cancel_sent = True
            up = await prov.get_batch(up_id)
        except ProxyError as exc:
            log.warning("batch %s: mirroring %s failed: %s", batch.id, up_id, exc.message)
            return None, cancel_sent
        if up.get("request_counts") != native.get("request_counts"):
            native["request_counts"] = up.get("request_counts")
            await self.store.update_batch(batch.id, native=native)
        return up, cancel_sent

    async def mirror(self, batch: Batch) -> None:
        """Follow the upstream batch until it ends (forwarding a cancel), then store its results. A cancel
        made before a restart is sent again (the upstream takes it twice)."""
        native, cancel_sent = dict(batch.native or {}), False
        every = self.state.runtime.cfg.batches.native_poll_seconds
        while True:
            up, cancel_sent = await self._poll(batch, native, cancel_sent)
            if up is not None and up.get("processing_status") == "ended":
                break
            await asyncio.sleep(every)
        await self._collect(batch, native["provider"], up, every)
        await self.store.finish_pending(batch.id, "expired")  # anything the upstream did not report
        await self.store.update_batch(batch.id, status="ended", ended_at=up.get("ended_at") or now_iso())

    async def _collect(self, batch: Batch, provider: str, up: dict, every: float) -> None:
        """The ended batch's results into the store; retried on a passing failure, else every item still
        without a result ends errored with the reason. Each item's record is charged to the batch's key."""
        key = await self.keys.charged(batch)
        for attempt in range(1, RESULT_ATTEMPTS + 1):
            try:
                await self._fetch_results(batch, provider, up, key)
                return
            except ProxyError as exc:
                log.warning("batch %s: fetching the results of %s failed: %s", batch.id, up.get("id"), exc.message)
                if not exc.retryable or attempt == RESULT_ATTEMPTS:
                    await self._fail_pending(batch, provider, exc, key)
                    return
            await asyncio.sleep(every)

    async def _pending(self, batch: Batch) -> dict[str, int]:
        """custom_id -> index of every item without a stored result."""
        index: dict[str, int] = {}
        last = -1
        while page := await self.store.pending_items(batch.id, last, 5000):
            for it in page:
                index[it.custom_id] = last = it.index
        return index

    async def _fetch_results(self, batch: Batch, provider: str, up: dict, key: dict | None) -> None:
        index = await self._pending(batch)
        async for row in self._provider(provider).batch_results(up):
            cid, result = row.get("custom_id"), row.get("result")
            if cid not in index or not isinstance(result, dict) or result.get("type") not in RESULT_TYPES:
                continue
            if await self.store.put_result(batch.id, index[cid], cid, result["type"], orjson.dumps(row)):
                self._record(batch, provider, cid, result, key)

    async def _fail_pending(self, batch: Batch, provider: str, exc: ProxyError, key: dict | None) -> None:
        result = {"type": "errored", "error": exc.body()}
        for cid, i in (await self._pending(batch)).items():
            line = orjson.dumps({"custom_id": cid, "result": result})
            if await self.store.put_result(batch.id, i, cid, "errored", line):
                self._record(batch, provider, cid, result, key, status=exc.status)

    def _record(self, batch: Batch, provider: str, cid: str, result: dict, key: dict | None,
                status: int = 400) -> None:
        """One request-log record per item, as for locally run items (cost as billed: the batch tier's half;
        charged to the batch's key)."""
        rec = RequestRecord(request_id=new_request_id(), endpoint="messages",
                            client={"address": None, "user_agent": "llmproxy-batch"})
        rec.extra.update(batch_id=batch.id, custom_id=cid, native_batch=True)
        if key is not None:
            rec.extra["key"] = key
        rec.profile, rec.stream = batch.profile, False
        msg = result.get("message") if result.get("type") == "succeeded" else None
        if isinstance(msg, dict):
            rec.target, rec.simulated = Target(provider, str(msg.get("model"))), False
            rec.status = 200
            whole_message(rec, msg)
            rec.usage = {**rec.usage, "service_tier": rec.usage.get("service_tier") or "batch"}  # billed as a batch
        else:
            rec.status = status if result.get("type") == "errored" else 499
            err = result.get("error") if isinstance(result.get("error"), dict) else {}
            err = err.get("error") if isinstance(err.get("error"), dict) else {}
            rec.error = str(err.get("message") or result.get("type"))
        finish(self.state, rec)
