"""File references inlined: an ``image`` or ``document`` block whose source is ``{type: "file", file_id}``
gets the stored content instead (base64 for images and PDFs, text for text documents), so a message that
references an uploaded file works with every upstream. Nothing is uploaded anywhere.

Memory is bounded by ``files.max_inline_bytes``, not by the number of references: the size the request
will have once inlined is computed from the stored sizes (metadata) before any file is read, and a request
over the cap is a 413 naming the block that crosses it. Each file is then read once, and every block that
references it shares one encoded copy.

A caller sees only the files it may: with ``owner_key`` (a store key's id), a file another key uploaded is
refused exactly as a file that does not exist."""

from __future__ import annotations

import base64
import copy

from llmproxy.errors import InvalidRequest, RequestTooLarge
from llmproxy.store import FileMeta, Store, visible

#: document types sent as text (besides text/*)
TEXT_TYPES = ("application/json", "application/xml", "application/x-yaml", "application/yaml",
              "application/csv", "application/javascript", "application/x-ndjson")

def _walk(blocks: list, path: tuple, found: list[tuple[str, dict]]) -> None:
    """Append to ``found`` the file-sourced blocks of ``blocks`` (tool results' content included). A loop,
    not a generator, and a path written out only for a block found: it runs over every block of every
    request."""
    for j, b in enumerate(blocks):
        if type(b) is not dict:
            continue
        kind = b.get("type")
        if kind == "image" or kind == "document":
            src = b.get("source")
            if type(src) is dict and src.get("type") == "file":
                found.append((".".join(map(str, (*path, j))), b))
        elif kind == "tool_result" and type(b.get("content")) is list:
            _walk(b["content"], (*path, j, "content"), found)


def _file_refs(body: dict) -> list[tuple[str, dict]]:
    """(path, block) of every file-sourced image/document block, wherever content blocks sit (messages,
    tool results); the path as the API names fields, e.g. ``messages.3.content.1``."""
    found: list[tuple[str, dict]] = []
    for i, m in enumerate(body.get("messages") or ()):
        if type(m) is dict and type(content := m.get("content")) is list:
            _walk(content, ("messages", i, "content"), found)
    return found


def is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in TEXT_TYPES


def _encoding(block: dict, meta: FileMeta, where: str) -> str:
    """How the file goes into this block: "base64" or "text"; a 400 when the block cannot take it."""
    mime = meta.mime_type
    if block["type"] == "image":
        if not mime.startswith("image/"):
            raise InvalidRequest(f"{where}: file {meta.id!r} ({meta.filename}) is {mime}, not an image")
        return "base64"
    if mime == "application/pdf":
        return "base64"
    if is_text(mime):
        return "text"
    raise InvalidRequest(f"{where}: file {meta.id!r} ({meta.filename}) is {mime}; a document block takes "
                         f"PDF or text files")


def inlined_size(size: int, encoding: str) -> int:
    """Bytes a stored file of ``size`` bytes adds to the request once inlined (base64 grows it by a third)."""
    return 4 * ((size + 2) // 3) if encoding == "base64" else size


async def _plan(refs: list[tuple[str, dict]], store: Store | None, max_bytes: int,
                owner_key: str | None) -> dict[str, FileMeta]:
    """Every referenced file's metadata, checked against its blocks and the cap before anything is read."""
    metas: dict[str, FileMeta] = {}
    total = 0
    for path, block in refs:
        fid = block["source"].get("file_id")
        if not isinstance(fid, str) or not fid:
            raise InvalidRequest(f"{path}.source.file_id: Input should be a valid string")
        if fid not in metas:
            meta = visible(await store.get_file(fid), owner_key) if store is not None else None
            if meta is None:  # absent, or another key's: the same answer
                raise InvalidRequest(f"{path}: file_id {fid!r} not found: upload it with POST /v1/files first")
            metas[fid] = meta
        meta = metas[fid]
        total += inlined_size(meta.size_bytes, _encoding(block, meta, f"{path} ({block['type']} block)"))
        if total > max_bytes:
            raise RequestTooLarge(f"{path}: inlining file {fid!r} ({meta.size_bytes} bytes) takes the request's "
                                  f"inlined files to {total} bytes, over the {max_bytes} byte limit "
                                  f"(files.max_inline_bytes); reference fewer or smaller files")
    return metas


def _source(meta: FileMeta, data: bytes, encoding: str, path: str) -> dict:
    if encoding == "base64":
        return {"type": "base64", "media_type": meta.mime_type, "data": base64.b64encode(data).decode("ascii")}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"{path}: file {meta.id!r} ({meta.filename}) is not UTF-8 text") from None
    return {"type": "text", "media_type": "text/plain", "data": text}


async def inline_files(body: dict, store: Store | None, *, max_bytes: int, owner_key: str | None = None) -> dict:
    """``body`` with every file reference replaced by the file's content; ``body`` itself (the same object)
    when it references none. An unknown ``file_id`` (or, with ``owner_key``, one another key uploaded) is a
    400 naming it; inlined files adding up to more than ``max_bytes`` (``files.max_inline_bytes``) a 413 naming
    the block that crosses the limit."""
    refs = _file_refs(body)
    if not refs:
        return body
    metas = await _plan(refs, store, max_bytes, owner_key)  # nothing copied or read for a request refused here
    body = copy.deepcopy(body)
    refs = _file_refs(body)
    sources: dict[str, dict] = {}  # file id -> its encoded source, shared by every block that references it
    for path, block in refs:
        fid = block["source"]["file_id"]
        meta = metas[fid]
        if fid not in sources:
            data = await store.read_file(fid)
            sources[fid] = _source(meta, data, _encoding(block, meta, path), path)
            del data
        block["source"] = dict(sources[fid])  # its own dict, the same (immutable) encoded string
        if block["type"] == "document" and "title" not in block and meta.filename:
            block["title"] = meta.filename
    return body
