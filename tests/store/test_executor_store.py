"""What the multi-instance executor asks of the store, on both backends: a batch is ended exactly once by
concurrent instances and only when no item lacks a result; canceling/expiring leaves the items another
instance is running (a live lease) to finish; a renewed lease is not claimed by others, a passed one is;
claims walk forward from an index."""

from __future__ import annotations

import asyncio

from llmproxy.store import open_store
from tests.store.test_store_backends import batch


async def make(store, bid: str, n: int) -> None:  # noqa: F811
    await store.create_batch(batch(bid, n), [(f"c{i}", b'{"model":"m"}') for i in range(n)])


async def test_end_batch_only_when_every_item_has_a_result_and_once(store_settings):  # noqa: F811
    """Eight concurrent "instances" (each its own store: its own pool on PostgreSQL) try to end one batch:
    before the last result none can; after it exactly one gets True."""
    stores = [open_store(*store_settings) for _ in range(8)]
    try:
        await make(stores[0], "msgbatch_e", 2)
        assert await stores[0].put_result("msgbatch_e", 0, "c0", "succeeded", b"{}")
        assert not any(await asyncio.gather(*(s.end_batch("msgbatch_e", "2026-01-01T01:00:00Z") for s in stores)))
        assert (await stores[0].get_batch("msgbatch_e")).status == "in_progress"
        assert await stores[1].put_result("msgbatch_e", 1, "c1", "succeeded", b"{}")
        won = await asyncio.gather(*(s.end_batch("msgbatch_e", "2026-01-01T01:00:00Z") for s in stores))
        assert sum(won) == 1, won
        b = await stores[2].get_batch("msgbatch_e")
        assert (b.status, b.ended_at) == ("ended", "2026-01-01T01:00:00Z")
        assert not await stores[3].end_batch("msgbatch_e", "2026-01-01T02:00:00Z")  # already ended: unchanged
        assert (await stores[3].get_batch("msgbatch_e")).ended_at == "2026-01-01T01:00:00Z"
        assert not await stores[3].end_batch("msgbatch_missing", "2026-01-01T02:00:00Z")
    finally:
        for s in stores:
            await s.close()


async def test_finish_pending_leaves_items_under_a_running_lease(store):  # noqa: F811
    await make(store, "msgbatch_f", 4)
    running = await store.claim_items("msgbatch_f", "inst-a", 60, 1)        # item 0: another instance runs it
    assert [i.index for i in running] == [0]
    assert [i.index for i in await store.claim_items("msgbatch_f", "inst-b", 0, 1)] == [1]  # lease passed
    assert await store.finish_pending("msgbatch_f", "canceled") == 3         # 1, 2, 3 (1: its owner died)
    assert await store.put_result("msgbatch_f", 0, "c0", "succeeded", b"{}")  # the running one still lands
    assert await store.finish_pending("msgbatch_f", "canceled") == 0
    b = await store.get_batch("msgbatch_f")
    assert (b.counts["succeeded"], b.counts["canceled"]) == (1, 3)
    assert await store.end_batch("msgbatch_f", "2026-01-01T01:00:00Z")


async def test_renewed_leases_stay_and_claims_walk_forward(store):  # noqa: F811
    await make(store, "msgbatch_r", 6)
    mine = await store.claim_items("msgbatch_r", "inst-a", 0, 3)              # 0, 1, 2 with a lease that passed
    assert [i.index for i in mine] == [0, 1, 2]
    assert await store.renew_items("msgbatch_r", "inst-a", [0, 1], 60) == 2    # 0 and 1 renewed: held again
    assert await store.renew_items("msgbatch_r", "inst-b", [2], 60) == 0       # not b's lease: unchanged
    assert [i.index for i in await store.claim_items("msgbatch_r", "inst-b", 60, 10, after_index=3)] == [4, 5]
    assert [i.index for i in await store.claim_items("msgbatch_r", "inst-b", 60, 10)] == [2, 3]  # 2: passed
    assert await store.renew_items("msgbatch_r", "inst-a", [2], 60) == 0       # b holds it now
    assert await store.release_items("msgbatch_r", "inst-a") == 2
    assert [i.index for i in await store.claim_items("msgbatch_r", "inst-c", 60, 10)] == [0, 1]


async def test_no_claims_once_canceling(store):  # noqa: F811
    await make(store, "msgbatch_c", 3)
    await store.update_batch("msgbatch_c", status="canceling")
    assert await store.claim_items("msgbatch_c", "inst-a", 60, 10) == []
    assert await store.claim_items("msgbatch_missing", "inst-a", 60, 10) == []


async def test_an_item_is_either_claimed_or_canceled_never_both(store_settings):  # noqa: F811
    """Eight claimers (each its own store: its own pool on PostgreSQL) take small slices of a batch while
    another instance cancels the rest (``finish_pending``) in the middle: every item handed to a claimer is
    left to it (no result), every other one is canceled — a claim racing the cancel never gets an item the
    cancel has given a result (which would send it upstream for nothing)."""
    stores = [open_store(*store_settings) for _ in range(9)]
    n = 3000
    try:
        await make(stores[0], "msgbatch_x", n)
        claimed: list[int] = []

        async def claimer(s, owner: str) -> None:
            while items := await s.claim_items("msgbatch_x", owner, 300, 3):
                claimed.extend(i.index for i in items)

        async def cancel() -> int:
            while len(claimed) < n // 10:
                await asyncio.sleep(0.001)
            return await stores[8].finish_pending("msgbatch_x", "canceled")

        *_, canceled = await asyncio.gather(*(claimer(s, f"inst-{k}") for k, s in enumerate(stores[:8])), cancel())
        assert len(claimed) == len(set(claimed)) and len(claimed) + canceled == n, (len(claimed), canceled)
        lines = [line async for line in stores[0].results("msgbatch_x")]
        assert len(lines) == canceled  # no claimed item has a result
    finally:
        for s in stores:
            await s.close()
