"""The batch executor: runs each stored batch's items (non-streaming) as live requests run — each one an
``Exchange`` (``server/exchange.py``): the same routing, retries, fallback, circuits and send window — and
writes each result as it finishes.

* One task per unfinished batch. On start every batch that is not ended is resumed: only items without a
  stored result run again, and the store keeps the first result of an item, so nothing is lost or doubled.
* Concurrency: at most ``batches.concurrency`` items of one batch in flight, and at most
  ``batches.per_provider_concurrency`` batch items per provider (the route's first target) across batches.
* Live traffic first: while ``batches.yield_in_flight`` or more interactive requests are in flight, each
  batch keeps at most one item in flight (it still progresses, slowly).
* Each item's params are validated when it is processed (``checked``): an invalid one ends ``errored`` with
  an ``invalid_request_error`` naming the field, and the batch goes on.
* Each item is a request-log record (endpoint ``messages``, with ``batch_id`` and ``custom_id``), so logs,
  stats, metrics and cost cover batch work. Items never count towards ``server.max_concurrent_requests``.
* Cancel: dispatching stops, in-flight items finish, the rest become ``canceled``; expiry likewise with
  ``expired``; then the batch is ``ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from llmproxy.errors import InvalidRequest, ProxyError
from llmproxy.protocol.anthropic import validate_messages
from llmproxy.server.exchange import Admitted, Exchange
from llmproxy.server.middleware import new_request_id
from llmproxy.server.record import RequestRecord, bodies_wanted, finish, whole_message
from llmproxy.server.state import State, this_worker
from llmproxy.store import Batch, Item, Store, retrying
from llmproxy.store.inline import inline_files
from llmproxy.store.sqlite import now_iso

log = logging.getLogger("llmproxy")
PAGE = 500
POLL = 0.05  # seconds between looks at the live load while yielding
_NO_HEADERS = CIMultiDictProxy(CIMultiDict())  # a batch item has no client headers (and no client key)


#: with several workers, how often worker 1 looks for batches the others stored
POLL_SECONDS = 0.5


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def result_line(custom_id: str, result: dict) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": result})


def checked(params: dict) -> dict:
    """One request's params validated as ``/v1/messages`` validates a body, when it is processed (as the API
    does): an invalid one is an InvalidRequest naming the field (``params.messages: …``), so that request
    alone ends ``errored``."""
    try:
        return validate_messages(params)
    except InvalidRequest as exc:
        raise InvalidRequest(f"params.{exc.message}") from None


class Executor:
    def __init__(self, state: State, store: Store):
        self.state, self.store = state, store
        self.tasks: dict[str, asyncio.Task] = {}
        self._cancel: dict[str, asyncio.Event] = {}
        self._providers: dict[str, asyncio.Semaphore] = {}
        self.native = None  # llmproxy.server.batch.native.Native, set by the app when any profile uses it
        self.executes = True  # False in workers other than the first (see start)
        self._poller: asyncio.Task | None = None

    @property
    def cfg(self):
        return self.state.runtime.cfg.batches

    async def start(self) -> None:
        """Resume every batch that had not ended when the daemon last stopped (or was killed). With several
        workers only worker 1 executes; it picks up what the others stored (and their cancels) by polling."""
        worker = this_worker()
        self.executes = worker is None or worker[0] == 1
        if not self.executes:
            return
        for batch in await self.store.unfinished_batches():
            log.info("resuming batch %s (%s)", batch.id, batch.status)
            self.run(batch)
        if worker is not None:
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name="batch poller")

    async def _poll(self, every: float = POLL_SECONDS) -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                for batch in await self.store.unfinished_batches():
                    if batch.id not in self.tasks:
                        self.run(batch)
                    elif batch.status == "canceling":
                        self._cancel.setdefault(batch.id, asyncio.Event()).set()

    def run(self, batch: Batch) -> None:
        if batch.id in self.tasks or not self.executes:
            return
        ev = self._cancel.setdefault(batch.id, asyncio.Event())
        if batch.status == "canceling":
            ev.set()
        runner = self._run_native if batch.native and self.native is not None else self._run_batch
        task = asyncio.get_running_loop().create_task(runner(batch), name=f"batch {batch.id}")
        self.tasks[batch.id] = task
        task.add_done_callback(lambda _t, bid=batch.id: self._done(bid, _t))

    def _done(self, batch_id: str, task: asyncio.Task) -> None:
        self.tasks.pop(batch_id, None)
        self._cancel.pop(batch_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("batch %s stopped: %r", batch_id, task.exception())

    def cancel(self, batch: Batch) -> None:
        """Stop dispatching ``batch`` (its status is already ``canceling`` in the store)."""
        self._cancel.setdefault(batch.id, asyncio.Event()).set()
        if batch.id not in self.tasks:
            self.run(batch)

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        tasks = list(self.tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    # ------------------------------------------------------------------ one batch
    def _provider_slot(self, name: str) -> asyncio.Semaphore:
        sem = self._providers.get(name)
        if sem is None:
            sem = self._providers[name] = asyncio.Semaphore(self.cfg.per_provider_concurrency)
        return sem

    def _stopping(self, batch: Batch, expires: datetime) -> str | None:
        if self._cancel[batch.id].is_set():
            return "canceled"
        if datetime.now(UTC) >= expires:
            return "expired"
        return None

    def _busy(self) -> bool:
        n = self.cfg.yield_in_flight
        return n > 0 and self.state.in_flight >= n

    async def _run_batch(self, batch: Batch) -> None:
        expires = parse_time(batch.expires_at)
        slots = asyncio.Semaphore(self.cfg.concurrency)
        inflight: set[asyncio.Task] = set()
        outcome: str | None = None
        last = -1
        try:
            while outcome is None:
                items = await retrying(lambda after=last: self.store.pending_items(batch.id, after, PAGE),
                                       f"batch {batch.id}")
                if not items:
                    break
                for item in items:
                    await slots.acquire()
                    while self._busy() and inflight and not self._stopping(batch, expires):
                        await asyncio.sleep(POLL)  # live traffic first: one item at a time meanwhile
                    if outcome := self._stopping(batch, expires):
                        slots.release()
                        break
                    last = item.index
                    t = asyncio.get_running_loop().create_task(self._item(batch, item))
                    inflight.add(t)
                    t.add_done_callback(lambda done: (inflight.discard(done), slots.release()))
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)
        except asyncio.CancelledError:
            for t in inflight:
                t.cancel()
            raise
        outcome = outcome or self._stopping(batch, expires)
        if outcome:
            n = await retrying(lambda: self.store.finish_pending(batch.id, outcome), f"batch {batch.id}")
            if n:
                log.info("batch %s: %d item(s) %s", batch.id, n, outcome)
        ended = now_iso()
        await retrying(lambda: self.store.update_batch(batch.id, status="ended", ended_at=ended), f"batch {batch.id}")

    async def _item(self, batch: Batch, item: Item) -> None:
        state = self.state
        rec = RequestRecord(request_id=new_request_id(), endpoint="messages",
                            client={"address": None, "user_agent": "llmproxy-batch"})
        rec.extra.update(batch_id=batch.id, custom_id=item.custom_id)
        rec.profile, rec.stream, rec.bytes_in = batch.profile, False, len(item.params)
        body = None
        try:
            body = orjson.loads(item.params)
            if isinstance(model := body.get("model"), str):
                rec.requested_model = model
            checked(body)
            limit = state.runtime.cfg.files.max_inline_bytes
            sent = await retrying(lambda: inline_files(body, self.store, max_bytes=limit), f"batch {batch.id}")
            decision = state.runtime.router.decide(sent, batch.profile, raw_len=len(item.params))
            rec.profile, rec.decision = decision.profile, decision
            ex = Exchange(state, rec, Admitted(sent, None, decision, _NO_HEADERS, {}))
            sent = None
            async with self._provider_slot(decision.target.provider):
                out = await ex.open()
            reply = out.reply
            if reply.stream is not None or not isinstance(reply.message, dict):
                reply.close()
                raise InvalidRequest("the upstream did not answer with a message")
            msg = reply.message
            rec.status = 200
            whole_message(rec, msg, size=len(reply.body_bytes()), collect=bodies_wanted(state))
            kind, result = "succeeded", {"type": "succeeded", "message": msg}
        except ProxyError as exc:
            rec.status, rec.error = exc.status, exc.message
            kind, result = "errored", {"type": "errored", "error": exc.body()}
        except asyncio.CancelledError:
            raise  # the daemon is stopping: no result, so the item runs again on the next start
        except Exception as exc:  # noqa: BLE001 - one bad item never stops its batch
            log.exception("batch %s item %s", batch.id, item.custom_id)
            rec.status, rec.error = 500, f"internal proxy error: {type(exc).__name__}"
            kind, result = "errored", {"type": "errored", "error": ProxyError(rec.error).body()}
        finish(state, rec, body)
        line = result_line(item.custom_id, result)  # the database down: the item waits, its result is not lost
        await retrying(lambda: self.store.put_result(batch.id, item.index, item.custom_id, kind, line),
                       f"batch {batch.id}")

    async def _run_native(self, batch: Batch) -> None:
        await self.native.mirror(batch)
