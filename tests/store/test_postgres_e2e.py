"""The real app on a PostgreSQL store (``[store] url`` pointing at the throwaway cluster), driven by the
official anthropic SDK with the simulator answering: a file uploaded, a small batch that references it
created, run and completed, its results read; everything lands in PostgreSQL and nothing in the SQLite
store under LLMPROXY_HOME."""

from __future__ import annotations

import asyncio

import anthropic

from llmproxy.settings import DATABASE_URL_ENV, StoreConfig
from llmproxy.store import open_store
from llmproxy.store.postgres import PostgresStore


async def test_files_and_a_batch_through_the_sdk_on_postgres(proxy_factory, pg_url, home, monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    url, _ = await proxy_factory(f'[store]\nurl = "{pg_url}"\npool_size = 4\n', simulate=True)
    text = "Quarterly report: revenue grew 12 percent.\n" * 50
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
        doc = await c.files.upload(file=("report.txt", text.encode(), "text/plain"))
        assert doc.size_bytes == len(text.encode()) and [f.id async for f in c.files.list()] == [doc.id]
        ref = {"type": "document", "source": {"type": "file", "file_id": doc.id}}
        reqs = [{"custom_id": f"r-{i}", "params": {
            "model": "claude-sonnet-4-5", "max_tokens": 40,
            "messages": [{"role": "user", "content": [ref, {"type": "text", "text": f"summarise {i}"}]}]}}
            for i in range(4)]
        batch = await c.messages.batches.create(requests=reqs)
        for _ in range(400):
            done = await c.messages.batches.retrieve(batch.id)
            if done.processing_status == "ended":
                break
            await asyncio.sleep(0.05)
        assert done.processing_status == "ended", done
        assert done.request_counts.succeeded == 4, done.request_counts
        results = [r async for r in await c.messages.batches.results(batch.id)]
        assert sorted(r.custom_id for r in results) == [f"r-{i}" for i in range(4)]
        assert all(r.result.type == "succeeded" and r.result.message.content for r in results)
        assert [b.id for b in (await c.messages.batches.list()).data] == [batch.id]
    # what the app stored is in PostgreSQL, readable by any other instance naming it
    other = open_store(home, StoreConfig(url=pg_url))
    try:
        assert isinstance(other, PostgresStore)
        assert (await other.get_batch(batch.id)).status == "ended"
        assert await other.read_file(doc.id) == text.encode()
        assert len([line async for line in other.results(batch.id)]) == 4
    finally:
        await other.close()
    assert not (home / "llmproxy.db").exists() and not (home / "files").exists()
