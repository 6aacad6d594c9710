"""The floor for the passthrough path, a party of ``scripts/bench.py``: the least an aiohttp proxy must do
with a Messages request — read the body, parse it, set the model, serialise it, post it upstream on a pooled
connection, relay the answer's bytes as they arrive. No validation, routing, retries, records or logs.
Whatever llmproxy costs above this is its own work; the rest is aiohttp, the loopback and this machine.

Usage: python scripts/bench/relay.py --port P --upstream http://127.0.0.1:U
"""

from __future__ import annotations

import argparse

import aiohttp
import orjson
from aiohttp import web

FORWARD = ("anthropic-version", "anthropic-beta", "x-api-key", "user-agent")


async def messages(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    body["model"] = "claude-sonnet-4-5"  # what the bench's passthrough profile routes to
    payload = orjson.dumps(body)
    del body
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARD}
    headers["content-type"] = "application/json"
    async with request.app[SESSION].post(request.app[UPSTREAM] + "/v1/messages", data=payload,
                                         headers=headers) as up:
        out = web.StreamResponse(status=up.status, headers={"content-type": up.headers.get("content-type", "")})
        await out.prepare(request)
        async for chunk in up.content.iter_any():
            await out.write(chunk)
    await out.write_eof()
    return out


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def client(app: web.Application):
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    yield
    await app[SESSION].close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    a = ap.parse_args()
    app = web.Application(client_max_size=64 << 20)
    app[UPSTREAM] = a.upstream.rstrip("/")
    app.cleanup_ctx.append(client)
    app.router.add_post("/p/bench-pass/v1/messages", messages)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=a.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
