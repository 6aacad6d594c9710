"""File references inlined: an ``image`` or ``document`` block whose source is ``{type: "file", file_id}``
gets the stored content instead (base64 for images and PDFs, text for text documents), so a message that
references an uploaded file works with every upstream. Nothing is uploaded anywhere."""

from __future__ import annotations

import base64
from typing import Any

from llmproxy.errors import InvalidRequest
from llmproxy.store import FileMeta, Store

#: document types sent as text (besides text/*)
TEXT_TYPES = ("application/json", "application/xml", "application/x-yaml", "application/yaml",
              "application/csv", "application/javascript", "application/x-ndjson")


def _file_refs(body: dict) -> list[dict]:
    """Every file-sourced image/document block, wherever content blocks sit (messages, tool results)."""
    found: list[dict] = []

    def walk(blocks: Any) -> None:
        if not isinstance(blocks, list):
            return
        for b in blocks:
            if not isinstance(b, dict):
                continue
            src = b.get("source")
            if b.get("type") in ("image", "document") and isinstance(src, dict) and src.get("type") == "file":
                found.append(b)
            elif b.get("type") == "tool_result":
                walk(b.get("content"))

    for m in body.get("messages") or []:
        if isinstance(m, dict):
            walk(m.get("content"))
    return found


def is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in TEXT_TYPES


async def _source(block: dict, meta: FileMeta, data: bytes, where: str) -> dict:
    mime = meta.mime_type
    if block["type"] == "image":
        if not mime.startswith("image/"):
            raise InvalidRequest(f"{where}: file {meta.id!r} ({meta.filename}) is {mime}, not an image")
        return {"type": "base64", "media_type": mime, "data": base64.b64encode(data).decode("ascii")}
    if mime == "application/pdf":
        return {"type": "base64", "media_type": mime, "data": base64.b64encode(data).decode("ascii")}
    if is_text(mime):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"{where}: file {meta.id!r} ({meta.filename}) is not UTF-8 text") from None
        return {"type": "text", "media_type": "text/plain", "data": text}
    raise InvalidRequest(f"{where}: file {meta.id!r} ({meta.filename}) is {mime}; a document block takes "
                         f"PDF or text files")


async def inline_files(body: dict, store: Store | None) -> dict:
    """``body`` with every file reference replaced by the file's content; ``body`` itself (the same object)
    when it references none. An unknown ``file_id`` is a 400 naming it."""
    refs = _file_refs(body)
    if not refs:
        return body
    import copy

    body = copy.deepcopy(body)
    cache: dict[str, tuple[FileMeta, bytes]] = {}
    for block in _file_refs(body):
        fid = block["source"]["file_id"]
        if fid not in cache:
            meta = await store.get_file(fid) if store is not None else None
            if meta is None:
                raise InvalidRequest(f"file_id {fid!r} not found: upload it with POST /v1/files first")
            cache[fid] = (meta, await store.read_file(fid))
        meta, data = cache[fid]
        block["source"] = await _source(block, meta, data, f"{block['type']} block with file_id {fid!r}")
        if block["type"] == "document" and "title" not in block and meta.filename:
            block["title"] = meta.filename
    return body
