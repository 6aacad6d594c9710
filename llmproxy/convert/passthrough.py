"""Pure pieces for the Anthropic passthrough: what an Anthropic-kind upstream sends is mostly relayed as is,
but two things need fixing on the way.

- ``merge_beta``: a client may send ``anthropic-beta`` as several header lines; HTTP says they are one
  comma-separated list, so every line's flags are forwarded (once each, in order), not just the last line's.
- ``message_as_events``: an upstream that ignores ``stream: true`` and answers with JSON. Relaying the JSON
  to a streaming client gives its SDK an empty stream; the message is replayed as a valid event stream
  instead, and anything that is not a message becomes an upstream error.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from llmproxy.convert.stream import Event, message_events
from llmproxy.errors import ProxyError, UpstreamError, from_upstream_status

_TYPE_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
_STOP_REASONS = frozenset({"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
                           "model_context_window_exceeded"})


def merge_beta(values: Iterable[str]) -> str:
    """All ``anthropic-beta`` header lines as one value: flags split on commas, trimmed, duplicates dropped,
    first-seen order kept (e.g. ``request.headers.getall("anthropic-beta", [])``)."""
    seen: dict[str, None] = {}
    for line in values:
        for flag in str(line).split(","):
            if flag := flag.strip():
                seen.setdefault(flag, None)
    return ",".join(seen)


def message_as_events(answer: bytes | dict, provider: str = "upstream") -> list[Event]:
    """A JSON answer given to a streaming request, as the event stream the client asked for. Raises the
    upstream's error when the JSON is an error envelope, and ``UpstreamError`` when it is not a message."""
    if isinstance(answer, (bytes, bytearray, str)):
        try:
            answer = orjson.loads(answer)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{provider}: upstream answered a streaming request with something that is "
                                "neither an event stream nor JSON") from None
    if not isinstance(answer, dict):
        raise UpstreamError(f"{provider}: upstream answered a streaming request with JSON that is not a message")
    if answer.get("type") == "error":
        err = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        kind = str(err.get("type") or "api_error")
        raise from_upstream_status(_TYPE_STATUS.get(kind, 502), str(err.get("message") or "upstream error"), provider)
    content = answer.get("content")
    ok = (answer.get("type", "message") == "message" and isinstance(content, list)
          and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in content))
    if not ok:
        raise UpstreamError(f"{provider}: upstream answered a streaming request with JSON that is not a message")
    msg = {"id": answer.get("id") or "msg_llmp_replay", "type": "message", "role": "assistant",
           "model": answer.get("model", ""), **answer}
    if msg.get("stop_reason") not in _STOP_REASONS:
        msg["stop_reason"] = "end_turn"
    usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else {}
    msg["usage"] = {"input_tokens": 0, "output_tokens": 0, **usage}
    return message_events(msg)


def error_event(err: ProxyError, request_id: str | None = None) -> Event:
    """``event: error`` for a stream that has begun (the Anthropic surface)."""
    return ("error", err.body(request_id))
