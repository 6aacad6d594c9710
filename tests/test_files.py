"""The Files API through the official anthropic SDK (GA ``client.files`` and ``client.beta.files``): upload,
list in both pagination styles, metadata, download refused (uploads are not downloadable), delete; bad
uploads; path-traversal filenames refused or kept as metadata only; unknown ids; and messages referencing
uploaded files, inlined for an Anthropic-kind and an OpenAI-kind upstream."""

from __future__ import annotations

import base64

import aiohttp
import anthropic
import pytest

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
TEXT = "Quarterly report\nRevenue grew 12 percent. \u00e9\u00e8\n"


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart body written by hand, so a filename reaches the server exactly as given."""
    out = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += b"--XyZ\r\nContent-Disposition: " + disp.encode() + b"\r\n"
        if filename is not None:
            out += b"Content-Type: text/plain\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + b"--XyZ--\r\n", "multipart/form-data; boundary=XyZ"


def client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)


async def test_upload_list_get_download_delete(proxy, home):
    url, _ = proxy
    async with client(url) as c:
        img = await c.files.upload(file=("pixel.png", PNG, "image/png"))
        assert img.id.startswith("file_") and img.type == "file"
        assert (img.filename, img.mime_type, img.size_bytes) == ("pixel.png", "image/png", len(PNG))
        assert img.downloadable is False and img.created_at is not None
        # the beta surface (sends the files-api beta header) works the same
        doc = await c.beta.files.upload(file=("report.txt", TEXT.encode(), "text/plain"),
                                        betas=["files-api-2025-04-14"])
        assert doc.mime_type == "text/plain"
        meta = await c.files.retrieve_metadata(img.id)
        assert meta.filename == "pixel.png" and meta.size_bytes == len(PNG)
        with pytest.raises(anthropic.BadRequestError, match="downloadable"):  # as on the API: uploads are not
            await c.files.download(doc.id)
        assert (home / "files" / doc.id).read_bytes() == TEXT.encode()
        listed = [f.id async for f in c.files.list()]
        assert listed == [doc.id, img.id]  # newest first
        assert [f.id async for f in c.files.list(ids=[img.id, "file_unknown"])] == [img.id]
        deleted = await c.files.delete(img.id)
        assert deleted.id == img.id and deleted.type == "file_deleted"
        assert not (home / "files" / img.id).exists()
        with pytest.raises(anthropic.NotFoundError, match=img.id):
            await c.files.retrieve_metadata(img.id)
    async with aiohttp.ClientSession() as s, s.get(f"{url}/v1/files/{doc.id}/content") as r:
        err = await r.json()
    assert r.status == 400 and err["error"]["details"] == {"error_code": "file_not_downloadable"}


async def test_both_pagination_styles(proxy):
    url, _ = proxy
    async with client(url) as c:
        ids = [(await c.files.upload(file=(f"f{i}.txt", b"x" * i, "text/plain"))).id for i in range(5)]
        newest_first = ids[::-1]
        # SDK 2.x cursor pages: page=<next_page> until next_page is null
        assert [f.id async for f in c.files.list(limit=2)] == newest_first
        first = await c.files.list(limit=2)
        assert first.next_page == f"page_{newest_first[1]}"
    async with aiohttp.ClientSession() as s:
        async def get(q: str) -> dict:
            async with s.get(f"{url}/v1/files?{q}") as r:
                assert r.status == 200, await r.text()
                return await r.json()

        p1 = await get("limit=2")
        assert [f["id"] for f in p1["data"]] == newest_first[:2] and p1["has_more"] is True
        assert (p1["first_id"], p1["last_id"]) == (newest_first[0], newest_first[1])
        p2 = await get(f"limit=2&after_id={p1['last_id']}")
        assert [f["id"] for f in p2["data"]] == newest_first[2:4] and p2["has_more"] is True
        p3 = await get(f"limit=2&after_id={p2['last_id']}")
        assert [f["id"] for f in p3["data"]] == newest_first[4:] and p3["has_more"] is False
        assert p3["next_page"] is None
        back = await get(f"limit=2&before_id={p3['first_id']}")
        assert [f["id"] for f in back["data"]] == newest_first[2:4] and back["has_more"] is True
        async with s.get(f"{url}/v1/files?after_id=file_nope") as r:
            assert r.status == 400 and "file_nope" in (await r.json())["error"]["message"]


async def test_bad_uploads(proxy_factory, home):
    url, _ = await proxy_factory("[files]\nmax_bytes = 1000\n")
    async with client(url) as c:
        with pytest.raises(anthropic.APIStatusError, match="files.max_bytes") as exc:
            await c.files.upload(file=("big.bin", b"x" * 5000, "application/octet-stream"))
        assert exc.value.status_code == 413
    assert [p.name for p in (home / "files").iterdir()] == []  # nothing half-written is kept
    async with aiohttp.ClientSession() as s:
        body, ctype = multipart([("purpose", None, b"user_data")])
        async with s.post(url + "/v1/files", data=body, headers={"content-type": ctype}) as r:
            assert r.status == 400 and "no 'file' part" in (await r.json())["error"]["message"]
        async with s.post(url + "/v1/files", json={"file": "x"}) as r:  # 415: the origin guard (server/request/guard.py)
            assert r.status == 415 and "multipart/form-data" in (await r.json())["error"]["message"]
        body, ctype = multipart([("file", "a\x01b.txt", b"x")])  # a raw control character: a bad header
        async with s.post(url + "/v1/files", data=body, headers={"content-type": ctype}) as r:
            assert r.status == 400 and "malformed multipart" in (await r.json())["error"]["message"]


@pytest.mark.parametrize("name, kept", [("../../evil.txt", None), (r"..\\..\\win.txt", None),
                                        ("/etc/passwd", None), ("..", ".."), ("a%01b%7F.txt", "a%01b%7F.txt"),
                                        ("..%2F..%2Fenc.txt", "..%2F..%2Fenc.txt")])
async def test_path_traversal_filenames_are_metadata_only(proxy, home, name, kept):
    """A name with a path separator is refused (the Files API's filename rule); any other is kept exactly as
    sent, as metadata: the body is stored by id and nothing is written anywhere else."""
    url, _ = proxy
    body, ctype = multipart([("file", name, b"payload")])
    async with aiohttp.ClientSession() as s, s.post(url + "/v1/files", data=body, headers={"content-type": ctype}) as r:
        meta = await r.json()
    if kept is None:
        assert r.status == 400 and meta["error"]["message"].startswith("filename: must not contain"), meta
        assert list((home / "files").iterdir()) == []
    else:
        assert r.status == 200, meta
        assert meta["filename"] == kept
        assert sorted(p.name for p in (home / "files").iterdir()) == [meta["id"]]
    assert not (home.parent / "evil.txt").exists() and not (home / "evil.txt").exists()


async def test_unknown_ids(proxy):
    url, _ = proxy
    async with client(url) as c:
        for call in (c.files.retrieve_metadata, c.files.download, c.files.delete):
            with pytest.raises(anthropic.NotFoundError, match="file_missing01"):
                await call("file_missing01")
        with pytest.raises(anthropic.BadRequestError, match="file_missing02"):
            await c.messages.create(model="claude-sonnet-4-5", max_tokens=20, messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_missing02"}},
                {"type": "text", "text": "what is this?"}]}])


async def _upload_both(c: anthropic.AsyncAnthropic) -> tuple[str, str]:
    img = await c.files.upload(file=("pixel.png", PNG, "image/png"))
    doc = await c.files.upload(file=("report.txt", TEXT.encode(), "text/plain"))
    return img.id, doc.id


def _content(img: str, doc: str) -> list[dict]:
    return [{"type": "image", "source": {"type": "file", "file_id": img}},
            {"type": "document", "source": {"type": "file", "file_id": doc}},
            {"type": "text", "text": "Describe the picture and summarise the report."}]


async def test_file_references_inlined_for_anthropic(proxy, fake_anthropic):
    url, _ = proxy
    async with client(url) as c:
        img, doc = await _upload_both(c)
        msg = await c.beta.messages.create(model="claude-sonnet-4-5", max_tokens=50, betas=["files-api-2025-04-14"],
                                           messages=[{"role": "user", "content": _content(img, doc)}])
        assert msg.content[0].text == "Hello from the fake upstream."
        n = await c.messages.count_tokens(model="claude-sonnet-4-5",
                                          messages=[{"role": "user", "content": _content(img, doc)}])
        assert n.input_tokens > 0
    for up in fake_anthropic.requests:  # the message and the count_tokens call
        blocks = up["body"]["messages"][0]["content"]
        assert blocks[0]["source"] == {"type": "base64", "media_type": "image/png",
                                       "data": base64.b64encode(PNG).decode()}
        assert blocks[1]["source"] == {"type": "text", "media_type": "text/plain", "data": TEXT}
        assert blocks[1]["title"] == "report.txt"
        assert b"file_id" not in up["raw"]


async def test_file_references_inlined_for_openai(proxy, fake_openai):
    url, _ = proxy
    async with client(url + "/p/oai") as c:
        img, doc = await _upload_both(c)
        msg = await c.messages.create(model="claude-sonnet-4-5", max_tokens=50,
                                      messages=[{"role": "user", "content": _content(img, doc)}])
    assert msg.content[0].text == "Hello from the fake OpenAI upstream."
    parts = fake_openai.requests[-1]["body"]["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert urls == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    texts = "\n".join(p["text"] for p in parts if p["type"] == "text")
    assert "Revenue grew 12 percent." in texts and "file_" not in texts


async def test_batch_items_may_reference_files(proxy, fake_anthropic):
    url, _ = proxy
    async with client(url) as c:
        img, doc = await _upload_both(c)
        params = {"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user",
                                                                                 "content": _content(img, doc)}]}
        batch = await c.messages.batches.create(requests=[
            {"custom_id": "with-files", "params": params},
            {"custom_id": "missing", "params": {**params, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_gone"}}]}]}}])
        import asyncio

        for _ in range(200):
            b = await c.messages.batches.retrieve(batch.id)
            if b.processing_status == "ended":
                break
            await asyncio.sleep(0.05)
        results = {r.custom_id: r.result async for r in await c.messages.batches.results(batch.id)}
    assert results["with-files"].type == "succeeded"
    assert results["missing"].type == "errored" and "file_gone" in results["missing"].error.error.message
    sent = fake_anthropic.requests[-1]["body"]["messages"][0]["content"]
    assert sent[0]["source"]["type"] == "base64"
