"""The Files API (``/v1/files``, with or without the ``files-api`` beta header): multipart upload streamed to
the store under a size limit, list (both pagination styles the SDKs use), metadata, delete. As on the API,
an uploaded file is ``downloadable: false`` and its content endpoint answers the documented 400
(``file_not_downloadable``): only files the platform creates can be downloaded, and this proxy creates none.
``llmproxy files download`` reads a stored file from the store on the same machine. A message that
references an uploaded file gets its content inlined at the request's edge (``request/edge.py``,
``store/inline.py``).

Who sees what: a file belongs to the key that uploaded it. A store key (``llmproxy keys``) lists, reads and
deletes only its own files; another key's file is answered exactly as one that does not exist (404). An admin
(a config key, or an open proxy) sees every file. Batches follow the same rule (``batches.py``)."""

from __future__ import annotations

import functools
import mimetypes
from collections.abc import Awaitable, Callable

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from llmproxy.errors import InvalidRequest, NotFound, RequestTooLarge, StoreDown
from llmproxy.server.request.edge import int_param, json_response, viewer
from llmproxy.server.state import STATE, STORE
from llmproxy.store import FileTooLarge, Store, StoreUnavailable, filename_problem, visible

#: room for the multipart framing around the file in an upload's Content-Length
MULTIPART_OVERHEAD = 64 * 1024


class FileNotDownloadable(InvalidRequest):
    """The API's answer for the content of a file with ``downloadable: false`` (the SDKs raise
    ``FileNotDownloadableError`` on its ``error.details.error_code``)."""

    def body(self, request_id: str | None = None) -> dict:
        out = super().body(request_id)
        out["error"]["details"] = {"error_code": "file_not_downloadable"}
        return out


def guarded(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """``handler`` answering 503 (``StoreDown``) while the store cannot be reached."""
    @functools.wraps(handler)
    async def call(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except StoreUnavailable as exc:
            raise StoreDown.of(exc) from None
    return call


def creator(request: web.Request) -> str:
    """The owner a batch or file the caller creates is stored with: its store key's id, "" for an admin."""
    return viewer(request) or ""


def store_of(request: web.Request) -> Store:
    store = request.app.get(STORE)
    if store is None:
        raise NotFound("the batch and file store is not available")
    return store


# ------------------------------------------------------------------------------------------------ helpers

def mime_of(content_type: str | None, filename: str) -> str:
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct and ct != "application/octet-stream":
        return ct
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def page_response(data: list[dict], has_more: bool) -> web.Response:
    """Both list shapes: ``has_more/first_id/last_id`` and ``next_page`` (SDK 2.x cursor pages)."""
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response({"data": data, "has_more": has_more, "first_id": first, "last_id": last,
                          "next_page": f"page_{last}" if has_more and last else None})


def cursors(request: web.Request) -> tuple[str | None, str | None]:
    """(before_id, after_id); ``page=page_<id>`` is the newer SDKs' spelling of ``after_id=<id>``."""
    before, after, page = (request.query.get(k) for k in ("before_id", "after_id", "page"))
    if page:
        if not page.startswith("page_"):
            raise InvalidRequest(f"page: unknown page cursor {page!r}")
        after = after or page[len("page_"):]
    if before and after:
        raise InvalidRequest("before_id and after_id cannot be used together")
    return before, after


# ----------------------------------------------------------------------------------------------- handlers

async def upload(request: web.Request) -> web.Response:
    store = store_of(request)
    limit = request.app[STATE].runtime.cfg.files.max_bytes
    if not request.content_type.startswith("multipart/"):
        raise InvalidRequest(f"expected a multipart/form-data body with a 'file' part, got "
                             f"{request.content_type or 'no content type'}")
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise RequestTooLarge(f"upload of {request.content_length} bytes exceeds the {limit} byte file limit "
                              f"(files.max_bytes)")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise InvalidRequest(f"malformed multipart body: {exc}") from None
    meta = None
    while True:
        try:
            part = await reader.next()
        except (ValueError, HttpProcessingError) as exc:
            raise InvalidRequest(f"malformed multipart body: {exc}") from None
        if part is None:
            break
        if isinstance(part, BodyPartReader) and part.name == "file" and meta is None:
            meta = await _store_part(store, part, limit, creator(request))
        else:
            await part.release()
    if meta is None:
        raise InvalidRequest("multipart body has no 'file' part")
    return json_response(meta.to_api())


async def _store_part(store: Store, part: BodyPartReader, limit: int, owner_key: str):
    """The ``file`` part streamed into the store, its filename kept exactly as sent or refused (400)."""
    filename = part.filename
    if problem := filename_problem(filename):
        raise InvalidRequest(problem)

    async def chunks():
        while chunk := await part.read_chunk(256 * 1024):
            yield chunk

    try:
        return await store.put_file(filename, mime_of(part.headers.get("content-type"), filename), chunks(), limit,
                                    owner_key)
    except FileTooLarge:
        raise RequestTooLarge(f"file exceeds the {limit} byte limit (files.max_bytes)") from None


async def list_files(request: web.Request) -> web.Response:
    store, owner = store_of(request), viewer(request)
    ids = request.query.getall("ids", []) + request.query.getall("ids[]", [])
    if ids:  # one page of exactly these (known, and the caller's) files
        metas = [m for fid in list(dict.fromkeys(ids))[:100] if (m := visible(await store.get_file(fid), owner))]
        return page_response([m.to_api() for m in metas], False)
    limit = int_param(request, "limit", 20, 1, 1000)
    before, after = cursors(request)
    try:
        page, more = await store.list_files(limit, before, after, owner_key=owner)
    except KeyError as exc:
        raise InvalidRequest(f"unknown file id {exc.args[0]!r} in pagination cursor") from None
    return page_response([m.to_api() for m in page], more)


async def _meta(request: web.Request):
    fid = request.match_info["file_id"]
    meta = visible(await store_of(request).get_file(fid), viewer(request))
    if meta is None:  # absent, or another key's: the same answer (never that it exists)
        raise NotFound(f"file {fid!r} not found")
    return meta


async def get_file(request: web.Request) -> web.Response:
    return json_response((await _meta(request)).to_api())


async def download(request: web.Request) -> web.Response:
    meta = await _meta(request)
    raise FileNotDownloadable(f"file {meta.id!r} has downloadable: false; only files created by the platform "
                              f"(such as the code execution tool) can be downloaded, not uploaded ones")


async def delete_file(request: web.Request) -> web.Response:
    fid = (await _meta(request)).id  # another key's file is not found, as for get
    if not await store_of(request).delete_file(fid):
        raise NotFound(f"file {fid!r} not found")
    return json_response({"id": fid, "type": "file_deleted"})


def add_routes(app: web.Application, prefix: str) -> None:
    r = app.router
    r.add_post(prefix + "/v1/files", guarded(upload))
    r.add_get(prefix + "/v1/files", guarded(list_files))
    r.add_get(prefix + "/v1/files/{file_id}", guarded(get_file))
    r.add_delete(prefix + "/v1/files/{file_id}", guarded(delete_file))
    r.add_get(prefix + "/v1/files/{file_id}/content", guarded(download))
