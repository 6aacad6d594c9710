"""Messages that reference uploaded files are inlined under ``files.max_inline_bytes``: the size is known from
the stored metadata before any file is read, a request over the cap is a 413 naming the block that crosses
it (nothing is read, nothing reaches the upstream), and each file is read and encoded once however many
blocks reference it."""

from __future__ import annotations

import base64
import os
import tracemalloc

import anthropic
import pytest

from llmproxy.store import open_store
from llmproxy.store.inline import inline_files

MB = 1_000_000


def client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)


def refs(file_id: str, n: int) -> list[dict]:
    return [{"role": "user", "content": [*({"type": "document", "source": {"type": "file", "file_id": file_id}}
                                           for _ in range(n)), {"type": "text", "text": "summarise"}]}]


async def test_fifty_references_to_a_4_mb_file_are_refused_before_reading(proxy, fake_anthropic):
    """The finding: 50 references to one 4 MB file in a 4.8 KB request took the daemon from 54 to 448 MiB.
    Under the default cap (32 MiB) the 7th reference crosses it (6 x 5.33 MB of base64 fit)."""
    url, _ = proxy
    async with client(url) as c:
        up = await c.files.upload(file=("big.pdf", os.urandom(4 * MB), "application/pdf"))
        tracemalloc.start()
        try:
            with pytest.raises(anthropic.APIStatusError) as counted:
                await c.messages.count_tokens(model="claude-sonnet-4-5", messages=refs(up.id, 50))
            with pytest.raises(anthropic.APIStatusError) as sent:
                await c.messages.create(model="claude-sonnet-4-5", max_tokens=20, messages=refs(up.id, 50))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    for err in (counted.value, sent.value):
        assert err.status_code == 413
        assert err.body["error"]["type"] == "request_too_large"
        message = err.body["error"]["message"]
        assert "messages.0.content.6" in message and up.id in message and "files.max_inline_bytes" in message
    assert peak < 4 * MB  # the file was never read: not even one copy of it
    assert fake_anthropic.requests == []


@pytest.mark.parametrize(("n", "ok"), [(3, True), (4, False)])
async def test_a_raised_cap_is_the_limit(proxy_factory, fake_anthropic, n, ok):
    """1 MB PDF = 1,333,336 base64 bytes per reference; with a 5 MB cap three fit and a fourth does not."""
    url, _ = await proxy_factory("[files]\nmax_inline_bytes = 5000000\n")
    data = os.urandom(MB)
    async with client(url) as c:
        up = await c.files.upload(file=("one.pdf", data, "application/pdf"))
        if not ok:
            with pytest.raises(anthropic.APIStatusError, match=r"messages\.0\.content\.3") as exc:
                await c.messages.create(model="claude-sonnet-4-5", max_tokens=20, messages=refs(up.id, n))
            assert exc.value.status_code == 413 and fake_anthropic.requests == []
            return
        await c.messages.create(model="claude-sonnet-4-5", max_tokens=20, messages=refs(up.id, n))
    blocks = fake_anthropic.requests[-1]["body"]["messages"][0]["content"]
    encoded = base64.b64encode(data).decode()
    assert [b["source"] for b in blocks[:n]] == [{"type": "base64", "media_type": "application/pdf",
                                                  "data": encoded}] * n
    assert [b["title"] for b in blocks[:n]] == ["one.pdf"] * n


async def inlined_memory(store, file_id: str, n: int) -> tuple[int, int]:
    """(bytes held by the inlined body of ``n`` references, peak while inlining it)."""
    body = {"model": "m", "max_tokens": 1, "messages": refs(file_id, n)}
    tracemalloc.start()
    try:
        inlined = await inline_files(body, store, max_bytes=64 * MB)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(inlined["messages"][0]["content"]) == n + 1
    return held, peak


async def test_memory_does_not_grow_with_the_number_of_references(tmp_path):
    """Each file is read once and encoded once: 20 references hold what one does (one 1.33 MB encoded copy;
    20 separate copies were 27 MB)."""
    store = open_store(tmp_path)

    async def chunks():
        yield os.urandom(MB)

    try:
        meta = await store.put_file("one.pdf", "application/pdf", chunks(), 10 * MB)
        one_held, one_peak = await inlined_memory(store, meta.id, 1)
        many_held, many_peak = await inlined_memory(store, meta.id, 20)
    finally:
        await store.close()
    assert many_held - one_held < MB // 4 and many_peak - one_peak < MB // 4
