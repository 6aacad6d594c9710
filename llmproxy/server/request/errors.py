"""Rendering errors, once, in the API's own shape."""

from __future__ import annotations

import orjson
from aiohttp import web

from llmproxy.errors import ProxyError


def is_openai_surface(request: web.Request) -> bool:
    return request.path.endswith("/chat/completions")


def error_response(err: ProxyError, request_id: str, *, openai: bool = False) -> web.Response:
    body = err.openai_body() if openai else err.body(request_id)
    headers = {"request-id": request_id}
    if err.retry_after:
        headers["retry-after"] = err.retry_after
    should = err.should_retry if err.should_retry is not None else (err.status >= 500 or err.status in (408, 409, 429))
    headers["x-should-retry"] = "true" if should else "false"
    return web.Response(status=err.status, body=orjson.dumps(body), content_type="application/json",
                        headers=headers)
