"""Validation of inbound Anthropic requests: parse once, check the type and shape of every field the proxy
reads downstream (conversion, routing, token estimate, simulator), and name the field that is wrong.

Past this edge, conversion and routing code may trust its input: a body ``validate_messages`` returns has
the types documented in docs/anthropic-api.md §2 wherever the proxy looks, nests at most ``MAX_DEPTH`` levels,
and serialises with orjson. Unknown keys are carried, never validated away (Claude Code sends newer keys);
unknown content-block types are carried as long as they are objects with a string ``type``. An optional
field that is null counts as absent. Bounds are documented in ``llmproxy.protocol.validate``.

This module holds the request's top level (and the cache of tool lists already found valid); messages and
content blocks are checked by ``llmproxy.protocol.anthropic_blocks``. ``adapt_for_model`` lives in
``llmproxy.protocol.adapt`` and is re-exported here for the importers that still name this module.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmproxy.errors import InvalidRequest
from llmproxy.protocol.anthropic_blocks import (
    check_block,
    check_cache_control,
    check_message,
    check_typed_objects,
)
from llmproxy.protocol.toolcache import ToolListCache
from llmproxy.protocol.validate import (
    MAX_NAME_CHARS,
    check_depth,
    check_schema,
    fail,
    join,
    optional,
    required,
    want_bool,
    want_int,
    want_list,
    want_number,
    want_obj,
    want_str,
    want_str_list,
)

__all__ = ["parse_json", "validate_messages", "validate_route_request"]


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None


def _str_or_obj(v: Any, path: str) -> None:
    if not isinstance(v, str | dict):
        fail(path, "Input should be a valid string or an object")


def _system(v: Any, path: str) -> None:
    if isinstance(v, str):
        return
    if not isinstance(v, list):
        fail(path, "Input should be a valid string or a list of text blocks")
    for j, b in enumerate(v):
        check_block(b, join(path, j))


#: tool lists already found valid, by their JSON: Claude Code sends the same 20-30 tools (most of a request's
#: validation work: their schemas) every turn, so a known list is not walked again. Bounded by bytes (the keys'
#: size): a list over 256 KiB of JSON is checked every time rather than kept
_VALID_TOOLS: ToolListCache[None] = ToolListCache()


def _tools_key(tools: Any) -> bytes | None:
    if not isinstance(tools, list) or not tools:
        return None
    try:
        return orjson.dumps(tools)
    except (TypeError, orjson.JSONEncodeError):  # deeper than orjson writes: the full check says where
        return None


def _remember_tools(key: bytes) -> None:
    # a copy of its own size: orjson's output keeps the larger buffer it was written into (+25 %)
    _VALID_TOOLS.put(bytes(memoryview(key)), None, len(key))


def _tools(v: Any, path: str) -> None:
    for k, t in enumerate(want_list(v, path)):
        p = join(path, k)
        want_obj(t, p)
        want_str(required(t, "name", p), join(p, "name"), min_chars=1)
        kind = optional(t, "type", p, want_str)
        if kind in (None, "custom"):  # a custom (client) tool; typed/server tools are carried as they are
            check_schema(required(t, "input_schema", p), join(p, "input_schema"))
            optional(t, "description", p, want_str)
            optional(t, "strict", p, want_bool)
        optional(t, "cache_control", p, check_cache_control)


def _tool_choice(v: Any, path: str) -> None:
    want_obj(v, path)
    kind = want_str(required(v, "type", path), join(path, "type"))
    if kind == "tool":
        want_str(required(v, "name", path), join(path, "name"))
    optional(v, "disable_parallel_tool_use", path, want_bool)


def _thinking_config(v: Any, path: str) -> None:
    want_obj(v, path)
    kind = want_str(required(v, "type", path), join(path, "type"))
    if kind == "enabled":
        want_int(required(v, "budget_tokens", path), join(path, "budget_tokens"))
    else:
        optional(v, "budget_tokens", path, want_int)
    optional(v, "display", path, want_str)


def _output_config(v: Any, path: str) -> None:
    want_obj(v, path)
    optional(v, "effort", path, want_str)
    fmt = optional(v, "format", path, want_obj)
    if fmt is not None:
        p = join(path, "format")
        kind = want_str(required(fmt, "type", p), join(p, "type"))
        if kind == "json_schema":
            check_schema(required(fmt, "schema", p), join(p, "schema"))


def _metadata(v: Any, path: str) -> None:
    want_obj(v, path)
    optional(v, "user_id", path, want_str)


def _context_management(v: Any, path: str) -> None:
    want_obj(v, path)
    optional(v, "edits", path, check_typed_objects)


def validate_messages(body: Any, *, count_tokens: bool = False) -> dict:
    """Check a /v1/messages (or count_tokens) body; return it unchanged. Raises InvalidRequest whose
    message starts with the path of the offending field (``messages.2.content.0.text: …``)."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    tools_key = _tools_key(body.get("tools"))
    known_tools = tools_key is not None and tools_key in _VALID_TOOLS
    check_depth({k: v for k, v in body.items() if k != "tools"} if known_tools else body)
    model = want_str(required(body, "model", ""), "model", max_chars=MAX_NAME_CHARS)
    if not model.strip():
        fail("model", "String should have at least 1 character")
    if count_tokens:
        optional(body, "max_tokens", "", want_int, ge=1)
    else:
        want_int(required(body, "max_tokens", ""), "max_tokens", ge=1)
    msgs = want_list(required(body, "messages", ""), "messages", min_items=0 if count_tokens else 1)
    for i, m in enumerate(msgs):
        check_message(m, join("messages", i))
    optional(body, "system", "", _system)
    optional(body, "stream", "", want_bool)
    if not known_tools:
        optional(body, "tools", "", _tools)
        if tools_key is not None:
            _remember_tools(tools_key)
    optional(body, "tool_choice", "", _tool_choice)
    optional(body, "thinking", "", _thinking_config)
    optional(body, "output_config", "", _output_config)
    optional(body, "metadata", "", _metadata)
    optional(body, "stop_sequences", "", want_str_list)
    optional(body, "temperature", "", want_number)
    optional(body, "top_p", "", want_number)
    optional(body, "top_k", "", want_int, ge=0)
    optional(body, "service_tier", "", want_str)
    optional(body, "context_management", "", _context_management)
    optional(body, "container", "", _str_or_obj)
    optional(body, "mcp_servers", "", check_typed_objects)
    optional(body, "cache_control", "", check_cache_control)
    return body


def validate_route_request(data: Any) -> dict:
    """Check a ``POST /api/route`` body and return it unchanged: either a full Anthropic request (it has
    ``messages``; checked as a count_tokens body, since routing needs no ``max_tokens``) or
    ``{"text": str, "profile": str (optional)}``."""
    if not isinstance(data, dict):
        raise InvalidRequest('request body must be a JSON object: an Anthropic request, or {"text", "profile"}')
    optional(data, "profile", "", want_str, max_chars=MAX_NAME_CHARS)
    if "messages" in data:
        return validate_messages(data, count_tokens=True)
    check_depth(data)
    if "text" not in data:
        fail("text", "Field required (or send a full Anthropic request with messages)")
    want_str(data["text"], "text")
    return data
