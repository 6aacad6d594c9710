"""``GET /api/keys``: the store's client keys as JSON (admins only, as everything under ``/api/``), for the
dashboard and scripts; never a secret (the store has none). Keys are created and changed with ``llmproxy
keys`` (docs/operations.md "Keys"). ``GET /api/keys/me``, a store key's own usage, is any store key's
(``keyauth.own_key``)."""

from __future__ import annotations

from aiohttp import web

from llmproxy.errors import ProxyError
from llmproxy.server.edge import json_response
from llmproxy.server.keyauth import OWN_KEY_PATH, own_key, store_of_app


async def list_keys(request: web.Request) -> web.Response:
    """Every key, revoked ones included, oldest first: ``{"data": [{id, name, state, profiles, …}]}``."""
    store = store_of_app(request.app)
    if store is None:
        raise ProxyError("the store is not open yet", status=503, retry_after="1")
    return json_response({"data": [k.to_json() for k in await store.list_keys()]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/keys", list_keys)
    app.router.add_get(OWN_KEY_PATH, own_key)  # any store key, about itself (server/keyauth.py)
