"""Three llmproxy daemons (``llmproxy serve`` subprocesses, each with its own LLMPROXY_HOME) sharing one
PostgreSQL database and one fake upstream (a real aiohttp server on 127.0.0.1, in a thread of the test, one
listening port per instance so that it can tell which instance sent each request):

* a 3,000-item batch created on instance 1 is executed by all three, its results read from instance 3, one
  per item, and the upstream called once per item;
* a cancel sent to instance 2 stops new items on instances 1 and 3 within a poll interval; the items not
  started end ``canceled``, each item once;
* a file uploaded on instance 2 is used in a message on instance 3; the database stopped mid-batch: every
  instance keeps answering /v1/messages and the batch ends once it is back;
* ``kill -9`` of instance 1 mid-batch: once its leases pass, the others run its items; every item ends with
  exactly one result (0 lost, 0 duplicated), the upstream called at most once more per item instance 1
  held at the kill.

Run with ``-s`` to see the figures. Every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import asyncpg
import pytest
import tomli_w
from aiohttp import web

from llmproxy.settings import DATABASE_URL_ENV
from tests.conftest import free_port
from tests.helpers import REPO

LEASE_S, POLL_S, CONCURRENCY = 3.0, 1.0, 4
ITEM = re.compile(r"item (\d+)")


@dataclass
class Hit:
    port: int        # which listener (= which instance) it came through
    item: int
    at: float        # time.time() when it arrived
    text: str = ""   # the request's messages, as JSON


@dataclass
class Upstream:
    """An Anthropic-kind upstream answering every ``POST /v1/messages`` after ``delay`` seconds, recording
    each request (listener port, item number, arrival time). Runs on its own event loop in a thread."""
    ports: list[int]
    delay: float = 0.03
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        port = request.transport.get_extra_info("sockname")[1]
        text = json.dumps(body["messages"])
        with self.lock:
            self.hits.append(Hit(port, int(ITEM.search(text).group(1)), time.time(), text))
        await asyncio.sleep(self.delay)
        return web.json_response({
            "id": "msg_fleet", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": "done"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1}})

    def start(self) -> None:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/messages", self.messages)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            for port in self.ports:
                await web.TCPSite(runner, "127.0.0.1", port).start()
            self.stop_event = asyncio.Event()
            ready.set()
            await self.stop_event.wait()
            await runner.cleanup()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(serve())

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10), "the fake upstream did not start"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)

    def snapshot(self) -> list[Hit]:
        with self.lock:
            return list(self.hits)


@dataclass
class Daemon:
    home: Path
    port: int
    up_port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key="x", max_retries=0, timeout=30)

    def owner(self) -> str:
        """The executor's lease owner, from its start-up log line."""
        found = re.search(r"batch executor (\S+): polling", (self.home / "stderr.log").read_text())
        assert found, "the executor did not log its start"
        return found.group(1)

    def logged_items(self, batch_id: str) -> int:
        log = self.home / "logs" / "requests.jsonl"
        if not log.exists():
            return 0
        return sum(1 for line in log.read_text().splitlines() if json.loads(line).get("batch_id") == batch_id)


def configure(home: Path, up_port: int) -> None:
    (home / "profiles").mkdir(parents=True)
    (home / "profiles" / "fleet.toml").write_text('description = "fleet"\ndefault = "up,m1"\nfallbacks = []\n')
    cfg = {"server": {"default_profile": "fleet"},
           "batches": {"concurrency": CONCURRENCY, "lease_seconds": LEASE_S, "poll_seconds": POLL_S,
                       "yield_in_flight": 0},
           "providers": {"up": {"kind": "anthropic", "base_url": f"http://127.0.0.1:{up_port}",
                                "api_key_env": "UP_KEY", "max_retries": 0,
                                "models": {"m1": {"context_window": 200000, "max_output": 8192}}}}}
    (home / "config.toml").write_text(tomli_w.dumps(cfg))


def wait_for(what: str, check, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
    return got


def healthy(d: Daemon) -> bool:
    assert d.proc.poll() is None, (d.home / "stderr.log").read_text()[-3000:]
    try:
        with urllib.request.urlopen(d.url + "/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def fleet(pg_cluster, tmp_path_factory):
    """(upstream, [daemon 1, 2, 3], the database's URL): one fresh database."""
    url = pg_cluster.url(pg_cluster.new_database())
    daemons = [Daemon(tmp_path_factory.mktemp(f"inst{k}"), free_port(), free_port()) for k in (1, 2, 3)]
    up = Upstream([d.up_port for d in daemons])
    up.start()
    try:
        for d in daemons:
            configure(d.home, d.up_port)
        start(daemons, url)
        yield up, daemons, url
    finally:
        stop(daemons)
        up.stop()


def start(daemons: list[Daemon], url: str) -> None:
    """``llmproxy serve`` for every (configured) daemon on the database at ``url``; returns once each is
    healthy."""
    env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
    for d in daemons:
        d.proc = subprocess.Popen(
            [sys.executable, "-m", "llmproxy", "serve", "--port", str(d.port)], cwd=REPO,
            env={**env, "LLMPROXY_HOME": str(d.home), DATABASE_URL_ENV: url, "UP_KEY": "sk-up-test"},
            stdout=subprocess.DEVNULL, stderr=(d.home / "stderr.log").open("wb"))
    for d in daemons:
        wait_for(f"instance on {d.port}", lambda d=d: healthy(d), timeout=60)


def stop(daemons: list[Daemon]) -> None:
    """SIGTERM to every daemon still running, then wait for each (killed after 20 s)."""
    for d in daemons:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.send_signal(signal.SIGTERM)
    for d in daemons:
        if d.proc is not None:
            try:
                d.proc.wait(20)
            except subprocess.TimeoutExpired:
                d.proc.kill()


def requests_for(n: int, tag: str) -> list[dict]:
    return [{"custom_id": f"{tag}-{i}", "params": {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [
        {"role": "user", "content": f"{tag}: item {i}, one line please"}]}} for i in range(n)]


def ended(client: anthropic.Anthropic, batch_id: str, timeout: float = 120.0):
    return wait_for(f"batch {batch_id} to end", lambda: (b := client.messages.batches.retrieve(batch_id))
                    .processing_status == "ended" and b, timeout=timeout, every=0.1)


def one_result_each(client: anthropic.Anthropic, batch_id: str, n: int, tag: str) -> Counter:
    results = list(client.messages.batches.results(batch_id))
    ids = Counter(r.custom_id for r in results)
    assert set(ids) == {f"{tag}-{i}" for i in range(n)}, f"lost: {n - len(ids)}"
    assert max(ids.values()) == 1, f"duplicated: {[k for k, v in ids.items() if v > 1][:5]}"
    return Counter(r.result.type for r in results)


def since(up: Upstream, mark: int) -> list[Hit]:
    return up.snapshot()[mark:]


def test_a_batch_created_on_one_instance_is_run_by_all_three(fleet):
    up, (one, two, three), _ = fleet
    n, mark = 3000, len(up.snapshot())  # the size, with the upstream answering in 10 ms
    up.delay = 0.01
    try:
        batch = one.client().messages.batches.create(requests=requests_for(n, "all"))
        done = ended(three.client(), batch.id)
    finally:
        up.delay = 0.03
    assert done.request_counts.succeeded == n
    kinds = one_result_each(three.client(), batch.id, n, "all")
    assert kinds == {"succeeded": n}
    hits = since(up, mark)
    per_instance = Counter(h.port for h in hits)
    print(f"\n{n} items: upstream hits per instance {[per_instance[d.up_port] for d in (one, two, three)]}, "
          f"logged per instance {[d.logged_items(batch.id) for d in (one, two, three)]}")
    assert len(hits) == n and len({h.item for h in hits}) == n  # each item sent upstream once
    assert all(per_instance[d.up_port] > 0 for d in (one, two, three)), per_instance
    wait_for("the request logs", lambda: sum(d.logged_items(batch.id) for d in (one, two, three)) == n)
    assert all(d.logged_items(batch.id) > 0 for d in (one, two, three))


def test_a_cancel_on_instance_2_stops_new_items_on_1_and_3_within_a_poll_interval(fleet):
    up, (one, two, three), _ = fleet
    n, mark = 2000, len(up.snapshot())
    batch = one.client().messages.batches.create(requests=requests_for(n, "cancel"))
    wait_for("all three instances working", lambda: {h.port for h in since(up, mark)} == {
        d.up_port for d in (one, two, three)}, timeout=90)
    two.client().messages.batches.cancel(batch.id)
    canceled_at = time.time()
    done = ended(three.client(), batch.id)
    kinds = one_result_each(two.client(), batch.id, n, "cancel")
    hits = since(up, mark)
    last = {d.up_port: max(h.at for h in hits if h.port == d.up_port) - canceled_at for d in (one, three)}
    print(f"\ncancel: {len(hits)} items sent before it took effect, results {dict(kinds)}; last new item after "
          f"the cancel: instance 1 {last[one.up_port]:+.2f} s, instance 3 {last[three.up_port]:+.2f} s "
          f"(poll interval {POLL_S} s)")
    assert kinds["canceled"] > 0 and kinds["succeeded"] + kinds["canceled"] == n
    assert done.request_counts.canceled == kinds["canceled"]
    assert len(hits) == len({h.item for h in hits}) == kinds["succeeded"]  # no item sent twice
    # one poll interval, plus scheduling slack on a loaded 2-core machine
    assert all(v < POLL_S + 2.0 for v in last.values()), last


def test_a_cancel_stored_by_an_instance_not_running_the_batch_is_seen_by_all_within_a_poll_interval(fleet):
    """The cancel written to the store as the cancel endpoint writes it, by an instance whose executor does
    not run the batch (here: the test's own store object), so no executor is told: the store hands out no
    more items of a canceling batch, and the executors learn of the cancel by polling — within a poll
    interval all three stop, and one of them gives the items nobody ran their ``canceled`` result and ends
    the batch (without the poll the batch would never end: the wait for it times out)."""
    up, daemons, url = fleet
    n, mark = 2000, len(up.snapshot())
    batch = daemons[0].client().messages.batches.create(requests=requests_for(n, "polled"))
    wait_for("all three instances working", lambda: {h.port for h in since(up, mark)} == {
        d.up_port for d in daemons}, timeout=90)
    asyncio.run(cancel_in_store(url, batch.id))
    canceled_at = time.time()
    ended(daemons[2].client(), batch.id)
    kinds = one_result_each(daemons[1].client(), batch.id, n, "polled")
    hits = since(up, mark)
    last = [max(h.at for h in hits if h.port == d.up_port) - canceled_at for d in daemons]
    print(f"\ncancel seen by polling: last new item after it {', '.join(f'{v:+.2f} s' for v in last)} "
          f"(poll interval {POLL_S} s); results {dict(kinds)}")
    assert kinds["canceled"] > 0 and kinds["succeeded"] + kinds["canceled"] == n
    assert len(hits) == len({h.item for h in hits}) == kinds["succeeded"]
    assert all(v < POLL_S + 2.0 for v in last), last


async def cancel_in_store(url: str, batch_id: str) -> None:
    from llmproxy.settings import StoreConfig
    from llmproxy.store import open_store

    store = open_store(Path("/nonexistent"), StoreConfig(url=url))
    try:
        await store.update_batch(batch_id, status="canceling", cancel_initiated_at="2026-01-01T00:00:00Z")
    finally:
        await store.close()


def test_a_file_uploaded_on_instance_2_is_used_in_a_message_on_instance_3(fleet):
    up, (_one, two, three), _ = fleet
    content = "fleet-shared-file: the content only instance 2 received\n" * 20
    meta = two.client().beta.files.upload(file=("notes.txt", content.encode(), "text/plain"))
    assert three.client().beta.files.retrieve_metadata(meta.id).size_bytes == len(content.encode())
    mark = len(up.snapshot())
    msg = three.client().messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "file", "file_id": meta.id}},
        {"type": "text", "text": "item 900001: what do the notes say?"}]}])
    assert msg.content[0].text == "done"
    [hit] = [h for h in since(up, mark) if h.item == 900001]
    assert hit.port == three.up_port and "fleet-shared-file" in hit.text  # inlined by instance 3 from the store


def test_postgresql_stopped_under_three_instances_live_requests_go_on_and_batches_resume(fleet, pg_cluster):
    """The database stops mid-batch (``pg_ctl stop -m immediate``): every instance keeps answering
    /v1/messages; once it is back, the batch ends with one result per item."""
    from tests.store.test_db_down import start_server, stop_server

    up, daemons, _ = fleet
    n, mark = 600, len(up.snapshot())
    batch = daemons[0].client().messages.batches.create(requests=requests_for(n, "dbdown"))
    wait_for("the batch under way", lambda: len(since(up, mark)) >= 50, timeout=90)
    stop_server(pg_cluster)
    served = failed = 0
    try:
        deadline = time.monotonic() + 3.0
        k = 0
        while time.monotonic() < deadline:
            d = daemons[k % 3]
            k += 1
            try:
                d.client().messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[
                    {"role": "user", "content": f"item {800000 + k}: live while the database is down"}])
                served += 1
            except anthropic.APIError:
                failed += 1
    finally:
        start_server(pg_cluster)
    print(f"\ndatabase down ~3 s under three instances: {served} live requests served, {failed} failed")
    assert served > 0 and failed == 0
    ended(daemons[2].client(), batch.id)
    assert one_result_each(daemons[1].client(), batch.id, n, "dbdown") == {"succeeded": n}


# last: it kills instance 1, which the tests above still use
def test_kill_9_of_one_instance_mid_batch_loses_and_duplicates_nothing(fleet):
    up, (one, two, three), url = fleet
    n, mark = 3000, len(up.snapshot())  # the size, with the upstream answering in 10 ms
    up.delay = 0.01
    batch = one.client().messages.batches.create(requests=requests_for(n, "kill"))
    wait_for("a third of the batch", lambda: len(since(up, mark)) >= n // 3
             and all(any(h.port == d.up_port for h in since(up, mark)) for d in (one, two, three)), timeout=90)
    owner = one.owner()
    one.proc.send_signal(signal.SIGKILL)
    one.proc.wait(10)
    killed_at = time.time()
    before = three.client().messages.batches.retrieve(batch.id).llmproxy_progress
    held = asyncio.run(leased_without_result(url, batch.id, owner))
    done = ended(three.client(), batch.id)
    kinds = one_result_each(two.client(), batch.id, n, "kill")
    hits = since(up, mark)
    per_item = Counter(h.item for h in hits)
    twice = sum(1 for v in per_item.values() if v > 1)
    print(f"\nkill -9: {before['succeeded']} items done before the kill, {n - before['succeeded']} after; "
          f"{len(held)} held by the killed instance (leased, no result); results: {dict(kinds)}, lost "
          f"{n - sum(kinds.values())}, duplicated 0; upstream hits {len(hits)} for {n} items "
          f"({twice} items sent twice); ended {time.time() - killed_at:.1f} s after the kill")
    assert kinds == {"succeeded": n} and done.request_counts.succeeded == n
    assert len(per_item) == n and len(hits) <= n + len(held)
    assert {i for i, v in per_item.items() if v > 1} <= held  # only what the dead instance held ran twice


async def leased_without_result(url: str, batch_id: str, owner: str) -> set[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT i.idx FROM batch_items i WHERE i.batch_id = $1 AND i.lease_owner = $2 AND NOT EXISTS "
            "(SELECT 1 FROM batch_results r WHERE r.batch_id = i.batch_id AND r.idx = i.idx)", batch_id, owner)
        return {r["idx"] for r in rows}
    finally:
        await conn.close()
