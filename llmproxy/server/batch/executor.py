"""The batch executor: runs each stored batch's items (non-streaming) as live requests run — each one an
``Exchange`` (``server/request/exchange.py``): the same routing, retries, fallback, circuits and send window — and
writes each result as it finishes.

* Any instance executes any batch: every instance sharing the store (PostgreSQL: several machines; SQLite:
  the ``serve --workers N`` processes of one host) runs a task per unfinished batch — found at start and
  every ``batches.poll_seconds`` — and takes items with ``claim_items`` under a lease
  (``batches.lease_seconds``) in its own name (``owner``), ``batches.concurrency`` at a time. While an item
  is queued or running its lease is renewed every third of a lease, so a slow item is not run twice; an
  instance that dies stops renewing, and once its leases pass another instance claims those items. A clean
  stop releases this instance's leases at once. The store keeps the first result of an item, so a result
  that arrives second (a lease that passed under a stalled instance) is dropped, not counted.
* The batch is ended by whichever instance finds no item without a result (``end_batch``: a conditional
  update, exactly one instance succeeds); the others see it ended and stop.
* Concurrency: at most ``batches.concurrency`` items of one batch in flight, and at most
  ``batches.per_provider_concurrency`` batch items per provider (the route's first target) across batches,
  **per instance** (a fleet of N instances allows N times as much).
* Live traffic first: while ``batches.yield_in_flight`` or more interactive requests are in flight, each
  batch keeps at most one item in flight (it still progresses, slowly).
* Each item's params are validated when it is processed (``checked``): an invalid one ends ``errored`` with
  an ``invalid_request_error`` naming the field, and the batch goes on.
* Each item is a request-log record (endpoint ``messages``, with ``batch_id`` and ``custom_id``), so logs,
  stats, metrics and cost cover batch work. Items never count towards ``server.max_concurrent_requests``.
* Each item is charged to the key that created its batch: its record carries that store key (``key: {id,
  name}``, as a live request's does), so the usage ledger, the key's budget and its ``--tpm`` count it; and
  its ``file_id``s are looked up among that key's files only (an admin's batch: every file).
* Cancel (status ``canceling`` in the store, seen by every instance within a poll interval): claiming
  stops, claimed items not started are released, in-flight items finish, and the items nobody holds a lease
  on become ``canceled`` (once: the store's first write); expiry likewise with ``expired``; then the batch
  is ``ended`` once every item has its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import deque
from datetime import UTC, datetime

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from llmproxy.errors import InvalidRequest, ProxyError
from llmproxy.protocol.anthropic import validate_messages
from llmproxy.server.request.exchange import Admitted, Exchange
from llmproxy.server.request.keylimits import FLEET
from llmproxy.server.request.middleware import new_request_id
from llmproxy.server.request.record import RequestRecord, bodies_wanted, finish, whole_message
from llmproxy.server.state import State, this_worker
from llmproxy.store import Batch, Item, Store, retrying
from llmproxy.store.inline import inline_files
from llmproxy.store.sqlite import now_iso

log = logging.getLogger("llmproxy")
PAGE = 500
POLL = 0.05  # seconds between looks at the live load while yielding
_NO_HEADERS = CIMultiDictProxy(CIMultiDict())  # a batch item has no client headers (and no client key)
#: how long a clean stop waits to give this instance's leases back
STOP_RELEASE_S = 3.0


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


class KeyNames:
    """The ``key`` a batch item's record carries (``{id, name}``, as ``record.py`` writes a live request's store
    key) from the owner id stored with its batch. A key's id never changes its name, so each id is looked up
    once (the store's key list, read again only for an id not seen yet)."""

    def __init__(self, store: Store):
        self.store = store
        self._names: dict[str, str] = {}

    async def charged(self, batch: Batch) -> dict | None:
        """The key ``batch``'s items are charged to, now counted in this instance's fleet counters (so their
        tokens and cost reach the key's budget and ``--tpm``); None for an admin's batch (``""``)."""
        key_id = batch.owner_key
        if not key_id:
            return None
        if key_id not in self._names:
            keys = await retrying(self.store.list_keys, "looking up a batch's key")
            self._names.update((k.id, k.name) for k in keys)
        FLEET.touch(key_id)
        return {"id": key_id, "name": self._names.get(key_id, key_id)}


def inline_item(body: dict, store: Store, batch: Batch, max_bytes: int):
    """A batch item's file references inlined: a store key's batch sees only that key's files."""
    return inline_files(body, store, max_bytes=max_bytes, owner_key=batch.owner_key or None)


class Executor:
    """This instance's share of every unfinished batch in the store (any instance executes any batch)."""

    def __init__(self, state: State, store: Store):
        self.state, self.store = state, store
        self.tasks: dict[str, asyncio.Task] = {}
        self._cancel: dict[str, asyncio.Event] = {}
        self._providers: dict[str, asyncio.Semaphore] = {}
        self.native = None  # llmproxy.server.batch.native.Native, set by the app when any profile uses it
        self.native_here = True  # native batches are mirrored by one worker of a host (see start)
        self._poller: asyncio.Task | None = None
        #: the lease owner: this instance (host, pid, random), as the registry names instances
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        #: items this instance ran, their results stored, and the results another instance had stored first
        self.counts = {"ran": 0, "stored": 0, "duplicate": 0}
        self.keys = KeyNames(store)

    @property
    def cfg(self):
        return self.state.runtime.cfg.batches

    async def start(self) -> None:
        """Resume every batch that has not ended (created here or on any instance sharing the store, or left
        by a process that was killed), then look for new ones, cancels and passed leases every
        ``batches.poll_seconds``. The first store call: a wrong database URL shows at start."""
        worker = this_worker()
        self.native_here = worker is None or worker[0] == 1
        log.info("batch executor %s: polling every %gs, leases of %gs", self.owner, self.cfg.poll_seconds,
                 self.cfg.lease_seconds)
        for batch in await self.store.unfinished_batches():
            log.info("resuming batch %s (%s)", batch.id, batch.status)
            self.run(batch)
        self._poller = asyncio.get_running_loop().create_task(self._poll(), name="batch poller")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.poll_seconds)
            try:
                batches = await self.store.unfinished_batches()
            except Exception as exc:  # noqa: BLE001 - the store down: the next poll tries again
                log.debug("batch poll: %r", exc)
                continue
            for batch in batches:
                if batch.status == "canceling":
                    self._cancel.setdefault(batch.id, asyncio.Event()).set()
                if batch.id not in self.tasks:
                    self.run(batch)

    def run(self, batch: Batch) -> None:
        native = batch.native and self.native is not None
        if batch.id in self.tasks or (native and not self.native_here):
            return
        ev = self._cancel.setdefault(batch.id, asyncio.Event())
        if batch.status == "canceling":
            ev.set()
        runner = self._run_native if native else self._run_batch
        task = asyncio.get_running_loop().create_task(runner(batch), name=f"batch {batch.id}")
        self.tasks[batch.id] = task
        task.add_done_callback(lambda _t, bid=batch.id: self._done(bid, _t))

    def _done(self, batch_id: str, task: asyncio.Task) -> None:
        self.tasks.pop(batch_id, None)
        self._cancel.pop(batch_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("batch %s stopped: %r", batch_id, task.exception())

    def cancel(self, batch: Batch) -> None:
        """Stop dispatching ``batch`` (its status is already ``canceling`` in the store; the other instances
        see it at their next poll)."""
        self._cancel.setdefault(batch.id, asyncio.Event()).set()
        if batch.id not in self.tasks:
            self.run(batch)

    async def stop(self) -> None:
        """Stop: items in flight are abandoned (no result), and this instance's leases are released so that
        another instance runs those items at once instead of after their lease passes."""
        if self._poller is not None:
            self._poller.cancel()
        ids, tasks = list(self.tasks), list(self.tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for bid in ids:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.store.release_items(bid, self.owner), STOP_RELEASE_S)

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
        """Rounds of: claim and run what is free (``_work``); on cancel or expiry give the items nobody runs
        their result; end the batch if no item lacks a result (one instance succeeds); else wait a poll
        interval — other instances hold the rest, or a dead one's leases have to pass — and go again."""
        expires = parse_time(batch.expires_at)
        held: set[int] = set()
        renewer = asyncio.get_running_loop().create_task(self._renew(batch.id, held))
        try:
            while True:
                outcome = await self._work(batch, expires, held)
                if outcome:
                    n = await retrying(lambda o=outcome: self.store.finish_pending(batch.id, o), f"batch {batch.id}")
                    if n:
                        log.info("batch %s: %d item(s) %s", batch.id, n, outcome)
                if await self._ended(batch):
                    return
                with contextlib.suppress(TimeoutError):  # a cancel seen meanwhile wakes it early
                    await asyncio.wait_for(self._cancel[batch.id].wait(), self.cfg.poll_seconds)
        finally:
            renewer.cancel()

    async def _ended(self, batch: Batch) -> bool:
        """Whether the batch is over for this instance: ended by this call (no item lacks a result), ended by
        another instance, or deleted."""
        if await retrying(lambda: self.store.end_batch(batch.id, now_iso()), f"batch {batch.id}"):
            log.info("batch %s ended (by %s)", batch.id, self.owner)
            return True
        now = await retrying(lambda: self.store.get_batch(batch.id), f"batch {batch.id}")
        if now is not None:
            batch.owner_key = now.owner_key  # a rotated key's successor took it over (store.rotate_key)
        return now is None or now.status == "ended"

    async def _work(self, batch: Batch, expires: datetime, held: set[int]) -> str | None:
        """Claim items (``batches.concurrency`` at a time, walking forward) and run them until none is free
        or the batch is canceled or expired; wait for those in flight. The outcome: canceled, expired, None."""
        slots = asyncio.Semaphore(self.cfg.concurrency)
        inflight: set[asyncio.Task] = set()
        queue: deque[Item] = deque()
        outcome, last = None, -1
        try:
            while True:
                if not queue:
                    if outcome := self._stopping(batch, expires):
                        break
                    queue.extend(await self._claim(batch.id, last))
                    if not queue and last >= 0:  # passed the end: once more from the start (leases that passed)
                        last = -1
                        queue.extend(await self._claim(batch.id, last))
                    if not queue:
                        break
                    last = queue[-1].index
                    held.update(it.index for it in queue)
                await slots.acquire()
                while self._busy() and inflight and not self._stopping(batch, expires):
                    await asyncio.sleep(POLL)  # live traffic first: one item at a time meanwhile
                if outcome := self._stopping(batch, expires):
                    slots.release()
                    break
                item = queue.popleft()
                t = asyncio.get_running_loop().create_task(self._item(batch, item))
                inflight.add(t)
                t.add_done_callback(lambda done, i=item.index: (inflight.discard(done), held.discard(i),
                                                                 slots.release()))
            if queue:  # stopping: what was claimed but not started is given back at once
                back = [it.index for it in queue]
                held.difference_update(back)
                await retrying(lambda: self.store.release_items(batch.id, self.owner, back), f"batch {batch.id}")
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)
        except asyncio.CancelledError:
            for t in inflight:
                t.cancel()
            raise
        return outcome or self._stopping(batch, expires)

    async def _claim(self, batch_id: str, after: int) -> list[Item]:
        return await retrying(lambda: self.store.claim_items(batch_id, self.owner, self.cfg.lease_seconds,
                                                             self.cfg.concurrency, after), f"batch {batch_id}")

    async def _renew(self, batch_id: str, held: set[int]) -> None:
        """Every third of a lease, extend the leases of the items this instance holds (queued or running), so
        an item slower than its lease is not run again elsewhere while this instance is alive."""
        while True:
            await asyncio.sleep(self.cfg.lease_seconds / 3)
            if held:
                try:
                    await self.store.renew_items(batch_id, self.owner, sorted(held), self.cfg.lease_seconds)
                except Exception as exc:  # noqa: BLE001 - the next round tries again (the lease may pass:
                    log.debug("batch %s: renewing leases: %r", batch_id, exc)  # one result is kept anyway)

    async def _item(self, batch: Batch, item: Item) -> None:
        state = self.state
        rec = RequestRecord(request_id=new_request_id(), endpoint="messages",
                            client={"address": None, "user_agent": "llmproxy-batch"})
        rec.extra.update(batch_id=batch.id, custom_id=item.custom_id, instance=self.owner)
        rec.profile, rec.stream, rec.bytes_in = batch.profile, False, len(item.params)
        body = None
        try:
            if (key := await self.keys.charged(batch)) is not None:
                rec.extra["key"] = key  # charged to the key that created the batch (ledger, budget, --tpm)
            body = orjson.loads(item.params)
            if isinstance(model := body.get("model"), str):
                rec.requested_model = model
            checked(body)
            limit = state.runtime.cfg.files.max_inline_bytes
            sent = await retrying(lambda: inline_item(body, self.store, batch, limit), f"batch {batch.id}")
            decision = state.runtime.router.decide(sent, batch.profile, raw_len=len(item.params))
            ex = Exchange(state, rec, Admitted(sent, None, decision, _NO_HEADERS, {}))  # records the decision
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
        finish(state, rec, body)  # the upstream call happened (and cost what it cost) even if its result loses
        line = result_line(item.custom_id, result)  # the database down: the item waits, its result is not lost
        stored = await retrying(lambda: self.store.put_result(batch.id, item.index, item.custom_id, kind, line),
                                f"batch {batch.id}")
        self.counts["ran"] += 1
        self.counts["stored" if stored else "duplicate"] += 1
        if not stored:  # its lease had passed and another instance ran it too: the first result stays
            log.info("batch %s item %s: a result was already stored; this one is dropped", batch.id, item.custom_id)

    async def _run_native(self, batch: Batch) -> None:
        await self.native.mirror(batch)
