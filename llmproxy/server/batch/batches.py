"""The Message Batches API (``/v1/messages/batches``, also under every ``/p/<profile>`` prefix), run by the
proxy for any provider behind any profile. Create refuses what the API refuses there (the batch's structure:
``custom_id``s, the limits, ``stream: true``, a ``params`` that is not an object) and stores the batch; each
request's ``params`` are validated when the executor (``llmproxy/server/batch/executor.py``) processes it, so
one invalid request ends ``errored`` and the others run. ``request_counts`` are the API's (zero outcomes until
the batch has ended); the live counts are in ``llmproxy_progress``. ``results_url`` points at this proxy, as
the client reached it (prefix included); under ``/p/<profile>`` the list holds that profile's batches.

A batch belongs to the key that created it (``files.py``: who sees what): a store key lists, reads, cancels
and deletes only its own batches, another key's answering 404 as an unknown id; an admin sees every batch.
The batch's items are charged to that key (``executor.py``); a key whose budget is spent cannot create one."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
from aiohttp import web

from llmproxy import paths
from llmproxy.errors import InvalidRequest, NotFound, ProxyError, RequestTooLarge
from llmproxy.protocol.anthropic import parse_json, validate_messages
from llmproxy.routing import PROFILE_HEADER, CompiledProfile
from llmproxy.server.batch.executor import Executor
from llmproxy.server.batch.files import creator, cursors, guarded, store_of
from llmproxy.server.batch.native import Native
from llmproxy.server.request.edge import int_param, json_response, viewer
from llmproxy.server.request.keyauth import CALLER, budgets_of, check_batch
from llmproxy.server.request.keylimits import FLEET, check_budget
from llmproxy.server.state import STATE, STORE, State
from llmproxy.store import Batch, new_id, open_store, visible
from llmproxy.store.sqlite import now_iso

log = logging.getLogger("llmproxy")
EXECUTOR = web.AppKey("batch_executor", Executor)
CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: the API's limits per batch; ``batches.max_requests`` / ``batches.max_bytes`` may only lower them
API_MAX_REQUESTS = 100_000
API_MAX_BYTES = 256 * 1024 * 1024


async def store_context(app: web.Application) -> AsyncIterator[None]:
    """The store and the executor for the app's lifetime; unfinished batches resume on start."""
    state = app[STATE]
    store = await asyncio.to_thread(open_store, paths.home(), state.runtime.cfg.store)  # [store] url: shared
    app[STORE] = store
    ex = app[EXECUTOR] = Executor(state, store)
    ex.native = Native(state, store)
    await ex.start()
    yield
    await ex.stop()
    await store.close()


# ------------------------------------------------------------------------------------------------ shapes

def batch_object(batch: Batch, request: web.Request) -> dict:
    """The API's MessageBatch, plus ``llmproxy_progress`` (this proxy's extension: the counts as they move)."""
    ended = batch.status == "ended"
    return {"id": batch.id, "type": "message_batch", "processing_status": batch.status,
            "request_counts": batch.request_counts(), "ended_at": batch.ended_at, "created_at": batch.created_at,
            "expires_at": batch.expires_at, "archived_at": None, "cancel_initiated_at": batch.cancel_initiated_at,
            "results_url": results_url(request, batch.id) if ended else None,
            "llmproxy_progress": batch.progress()}


def results_url(request: web.Request, batch_id: str) -> str:
    """This proxy's own address as the client used it, with the ``/p/<profile>`` prefix if it used one."""
    prefix = f"/p/{request.match_info['profile']}" if request.match_info.get("profile") else ""
    return f"{request.scheme}://{request.host}{prefix}/v1/messages/batches/{batch_id}/results"


# ------------------------------------------------------------------------------------------------ create

async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes (batches may be larger than server.max_body_bytes)."""
    too_large = RequestTooLarge(f"batch request body exceeds the {limit} byte limit (the API's 256 MB, or "
                                f"batches.max_bytes when smaller)")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 20):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def validate_batch(data: object, max_requests: int) -> list[tuple[str, bytes]]:
    """What the API refuses at create, a 400 naming the request and the rule: the batch's shape, a missing,
    malformed or duplicate ``custom_id``, too many requests, a ``params`` that is not an object, ``stream:
    true``. Anything else about ``params`` is checked when the request is processed (its result is then
    ``errored``). Returns (custom_id, params JSON)."""
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object with a 'requests' list")
    reqs = data.get("requests")
    if not isinstance(reqs, list) or not reqs:
        raise InvalidRequest("requests: Field required (a non-empty list of {custom_id, params})")
    if len(reqs) > max_requests:
        raise InvalidRequest(f"requests: {len(reqs)} requests exceed the limit of {max_requests} per batch "
                             f"(the API's 100,000, or batches.max_requests when smaller)")
    seen: dict[str, int] = {}
    out = []
    for i, item in enumerate(reqs):
        where = f"requests.{i}"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where}: Input should be an object with custom_id and params")
        cid = item.get("custom_id")
        if cid is None:
            raise InvalidRequest(f"{where}.custom_id: Field required")
        if not isinstance(cid, str) or not CUSTOM_ID.match(cid):
            raise InvalidRequest(f"{where}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$ (1-64 letters, digits, "
                                 f"'_' and '-'), got {cid!r}")
        if cid in seen:
            raise InvalidRequest(f"{where}.custom_id: duplicate custom_id {cid!r} (also requests.{seen[cid]})")
        seen[cid] = i
        params = item.get("params")
        if not isinstance(params, dict):
            what = "Field required" if params is None else "Input should be an object (a Messages request)"
            raise InvalidRequest(f"{where} (custom_id {cid!r}): params: {what}")
        if params.get("stream") is True:
            raise InvalidRequest(f"{where} (custom_id {cid!r}): params.stream: batch requests cannot stream")
        out.append((cid, orjson.dumps(params)))
    return out


def credential_problem(state: State, profile: CompiledProfile) -> str | None:
    """Why a batch cannot run on ``profile``: a live provider it may route to has no key of its own and uses
    the client's (``forward_client_key``). Items run after the create request has ended and the proxy does
    not keep clients' credentials, so such a batch is refused rather than failing every item."""
    rt = state.runtime
    for name in sorted(reachable_providers(profile)):
        prov, live = rt.cfg.providers.get(name), rt.providers.get(name)
        if prov is None or live is None or live.simulated_reason is not None:
            continue
        if prov.forward_client_key and not prov.api_key():
            return (f"profile {profile.name!r} may route to provider {name!r}, which has no key of its own and "
                    f"forwards the client's credential (forward_client_key); batch requests run after this "
                    f"request has ended and the proxy does not keep client credentials, so batches cannot "
                    f"run on it: give {name!r} a key (api_key_env) or use another profile")
    return None


def reachable_providers(profile: CompiledProfile) -> set[str]:
    """Every provider ``profile`` can route to: default, scenarios, knowledge-graph routes, fallbacks."""
    cfg, kg = profile.config, profile.kg
    chains = [cfg.default, *cfg.scenarios.values(), *(c.routes for c in kg.concepts.values()),
              *(c.routes for c in kg.hooks.values())]
    return {t.provider for chain in chains for t in chain}


def params_valid(items: list[tuple[str, bytes]]) -> bool:
    """Whether every request's params pass the Messages validation (only then may a batch go native)."""
    try:
        for _cid, raw in items:
            validate_messages(orjson.loads(raw))
    except InvalidRequest:
        return False
    return True


async def create(request: web.Request) -> web.Response:
    state = request.app[STATE]
    cfg = state.runtime.cfg.batches
    profile = state.runtime.router.profile(request.match_info.get("profile"), request.headers.get(PROFILE_HEADER))
    raw = await read_limited(request, min(cfg.max_bytes, API_MAX_BYTES))
    data = parse_json(raw)
    items = validate_batch(data, min(cfg.max_requests, API_MAX_REQUESTS))
    check_batch(request, profile.name, data)  # a store key's allowed profiles (server/request/keyauth.py)
    if problem := credential_problem(state, profile):
        raise InvalidRequest(problem)
    await budget_left(request)
    now = datetime.now(UTC)
    batch = Batch(id=new_batch_id(), profile=profile.name, created_at=now_iso(),
                  expires_at=(now + timedelta(hours=cfg.expiry_hours)).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"), total=len(items), owner_key=creator(request))
    ex = request.app[EXECUTOR]
    if profile.config.native_batches and params_valid(items):
        try:
            batch.native = await ex.native.submit(batch, items, profile)
        except ProxyError as exc:  # the provider's batch API failed: run it here instead
            log.warning("batch %s: native submission failed (%s); running it locally", batch.id, exc.message)
    await store_of(request).create_batch(batch, items)
    ex.run(batch)
    return json_response(batch_object(batch, request))


def new_batch_id() -> str:
    return new_id("msgbatch_")


async def budget_left(request: web.Request) -> None:
    """A store key whose budget is spent may not start a batch (429, as its live requests get): its items
    run after this request and are charged to it, so a key near its budget may overspend by one batch."""
    caller = request.get(CALLER)
    if caller is None or caller.key is None or caller.key.budget_usd is None:
        return
    fail_open = request.app[STATE].runtime.cfg.auth.on_store_down == "open"
    await check_budget(caller.key, store_of(request), budgets_of(request.app), FLEET, fail_open)


# ------------------------------------------------------------------------------------------------ the rest

async def _batch(request: web.Request) -> Batch:
    bid = request.match_info["batch_id"]
    batch = visible(await store_of(request).get_batch(bid), viewer(request))
    if batch is None:  # absent, or another key's: the same answer (never that it exists)
        raise NotFound(f"message batch {bid!r} not found")
    return batch


async def get(request: web.Request) -> web.Response:
    return json_response(batch_object(await _batch(request), request))


async def list_batches(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 20, 1, 1000)
    before, after = cursors(request)
    profile = request.match_info.get("profile")  # under /p/<profile>: that profile's batches; the root: all
    if profile is not None:
        profile = request.app[STATE].runtime.router.profile(profile, None).name
    try:
        page, more = await store_of(request).list_batches(limit, before, after, profile=profile,
                                                          owner_key=viewer(request))
    except KeyError as exc:
        raise InvalidRequest(f"unknown message batch id {exc.args[0]!r} in pagination cursor") from None
    data = [batch_object(b, request) for b in page]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response({"data": data, "has_more": more, "first_id": first, "last_id": last})


async def results(request: web.Request) -> web.StreamResponse:
    batch = await _batch(request)
    if batch.status != "ended":
        raise InvalidRequest(f"message batch {batch.id!r} is {batch.status}; its results are available once it "
                             f"has ended")
    resp = web.StreamResponse(headers={"content-type": "application/x-jsonl"})
    await resp.prepare(request)
    buf: list[bytes] = []
    async for line in store_of(request).results(batch.id):
        buf.append(line)
        if len(buf) >= 256:
            await resp.write(b"\n".join(buf) + b"\n")
            buf = []
    if buf:
        await resp.write(b"\n".join(buf) + b"\n")
    await resp.write_eof()
    return resp


async def cancel(request: web.Request) -> web.Response:
    batch = await _batch(request)
    if batch.status == "in_progress":
        store = store_of(request)
        batch.status, batch.cancel_initiated_at = "canceling", now_iso()
        await store.update_batch(batch.id, status="canceling", cancel_initiated_at=batch.cancel_initiated_at)
        request.app[EXECUTOR].cancel(batch)
        batch = await store.get_batch(batch.id) or batch
    return json_response(batch_object(batch, request))


async def delete(request: web.Request) -> web.Response:
    batch = await _batch(request)
    if batch.status != "ended":
        raise InvalidRequest(f"message batch {batch.id!r} is {batch.status}; only an ended batch can be deleted "
                             f"(cancel it first)")
    await store_of(request).delete_batch(batch.id)
    return json_response({"id": batch.id, "type": "message_batch_deleted"})


def add_routes(app: web.Application, prefix: str) -> None:
    r = app.router
    base = prefix + "/v1/messages/batches"
    # guarded: 503 in the API's shape while the store's database cannot be reached (server/batch/files.py)
    r.add_post(base, guarded(create))
    r.add_get(base, guarded(list_batches))
    r.add_get(base + "/{batch_id}", guarded(get))
    r.add_delete(base + "/{batch_id}", guarded(delete))
    r.add_post(base + "/{batch_id}/cancel", guarded(cancel))
    r.add_get(base + "/{batch_id}/results", guarded(results))
