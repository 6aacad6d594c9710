"""Validation of inbound Anthropic requests: parse once, check the type and shape of every field the proxy
reads downstream (conversion, routing, token estimate, simulator), and name the field that is wrong.

Past this edge, conversion and routing code may trust its input: a body ``validate_messages`` returns has
the types documented in ANTHROPIC_API.md §2 wherever the proxy looks, nests at most ``MAX_DEPTH`` levels,
and serialises with orjson. Unknown keys are carried, never validated away (Claude Code sends newer keys);
unknown content-block types are carried as long as they are objects with a string ``type``. An optional
field that is null counts as absent. Bounds are documented in ``llmproxy.protocol.validate``.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmproxy.errors import InvalidRequest
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
    want_one_of,
    want_str,
    want_str_list,
)

ROLES = ("user", "assistant", "system")


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None


# ------------------------------------------------------------------------------------------ small parts

def _cache_control(v: Any, path: str) -> None:
    want_obj(v, path)
    want_str(required(v, "type", path), join(path, "type"))
    optional(v, "ttl", path, want_str)


def _str_or_obj(v: Any, path: str) -> None:
    if not isinstance(v, str | dict):
        fail(path, "Input should be a valid string or an object")


def _typed_objects(v: Any, path: str) -> None:
    """A list of objects, each with a string ``type`` (context_management.edits, mcp_servers, citations)."""
    for i, item in enumerate(want_list(v, path)):
        want_obj(item, join(path, i))
        optional(item, "type", join(path, i), want_str)


# ------------------------------------------------------------------------------------------------ blocks

def _image_source(src: Any, path: str) -> None:
    want_obj(src, path)
    kind = want_str(required(src, "type", path), join(path, "type"))
    if kind == "base64":
        want_str(required(src, "media_type", path), join(path, "media_type"))
        want_str(required(src, "data", path), join(path, "data"))
    elif kind == "url":
        want_str(required(src, "url", path), join(path, "url"))
    elif kind == "file":
        want_str(required(src, "file_id", path), join(path, "file_id"))


def _document_source(src: Any, path: str) -> None:
    want_obj(src, path)
    kind = want_str(required(src, "type", path), join(path, "type"))
    if kind == "base64":
        want_str(required(src, "media_type", path), join(path, "media_type"))
        want_str(required(src, "data", path), join(path, "data"))
    elif kind == "text":
        optional(src, "media_type", path, want_str)
        want_str(required(src, "data", path), join(path, "data"))
    elif kind == "content":
        _content(required(src, "content", path), join(path, "content"))
    elif kind == "url":
        want_str(required(src, "url", path), join(path, "url"))
    elif kind == "file":
        want_str(required(src, "file_id", path), join(path, "file_id"))


def _text(b: dict, path: str) -> None:
    want_str(required(b, "text", path), join(path, "text"))
    optional(b, "citations", path, _typed_objects)


def _image(b: dict, path: str) -> None:
    _image_source(required(b, "source", path), join(path, "source"))


def _document(b: dict, path: str) -> None:
    _document_source(required(b, "source", path), join(path, "source"))
    optional(b, "title", path, want_str)
    optional(b, "context", path, want_str)
    optional(b, "citations", path, want_obj)


def _search_result(b: dict, path: str) -> None:
    optional(b, "source", path, want_str)
    optional(b, "title", path, want_str)
    content = join(path, "content")
    for j, inner in enumerate(want_list(required(b, "content", path), content)):
        p = join(content, j)
        want_obj(inner, p)
        want_one_of(required(inner, "type", p), join(p, "type"), ("text",))
        _text(inner, p)


def _tool_use(b: dict, path: str) -> None:
    want_str(required(b, "id", path), join(path, "id"))
    want_str(required(b, "name", path), join(path, "name"))
    want_obj(required(b, "input", path), join(path, "input"))


def _tool_result(b: dict, path: str) -> None:
    want_str(required(b, "tool_use_id", path), join(path, "tool_use_id"))
    optional(b, "content", path, _content)
    optional(b, "is_error", path, want_bool)


def _thinking(b: dict, path: str) -> None:
    want_str(required(b, "thinking", path), join(path, "thinking"))
    optional(b, "signature", path, want_str)


def _redacted_thinking(b: dict, path: str) -> None:
    want_str(required(b, "data", path), join(path, "data"))


def _server_tool_result(b: dict, path: str) -> None:
    want_str(required(b, "tool_use_id", path), join(path, "tool_use_id"))


_SERVER_RESULTS = ("web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
                   "bash_code_execution_tool_result", "text_editor_code_execution_tool_result",
                   "tool_search_tool_result")
BLOCKS = {
    "text": _text, "image": _image, "document": _document, "search_result": _search_result,
    "tool_use": _tool_use, "server_tool_use": _tool_use, "mcp_tool_use": _tool_use,
    "tool_result": _tool_result, "thinking": _thinking, "redacted_thinking": _redacted_thinking,
    **{t: _server_tool_result for t in _SERVER_RESULTS},
}


def _block(b: Any, path: str, only: tuple[str, ...] | None = None) -> None:
    """One content block: an object with a string ``type``; known types are checked, unknown ones carried."""
    want_obj(b, path)
    kind = want_str(required(b, "type", path), join(path, "type"))
    if only is not None:
        want_one_of(kind, join(path, "type"), only)
    optional(b, "cache_control", path, _cache_control)
    check = BLOCKS.get(kind)
    if check is not None:
        check(b, path)


def _content(v: Any, path: str, only: tuple[str, ...] | None = None) -> None:
    """A string, or a list of content blocks."""
    if isinstance(v, str):
        return
    if not isinstance(v, list):
        fail(path, "Input should be a valid string or a list of content blocks")
    for j, b in enumerate(v):
        _block(b, join(path, j), only)


def _message(m: Any, path: str) -> None:
    want_obj(m, path)
    role = want_one_of(required(m, "role", path), join(path, "role"), ROLES)
    # a mid-conversation system message carries text only (routing reads it as text)
    _content(required(m, "content", path), join(path, "content"), ("text",) if role == "system" else None)


# ----------------------------------------------------------------------------------------- top level

def _system(v: Any, path: str) -> None:
    if isinstance(v, str):
        return
    if not isinstance(v, list):
        fail(path, "Input should be a valid string or a list of text blocks")
    for j, b in enumerate(v):
        _block(b, join(path, j))


#: tool lists already found valid, by their JSON: Claude Code sends the same 20-30 tools (most of a request's
#: validation work: their schemas) every turn, so a known list is not walked again
_VALID_TOOLS: dict[bytes, None] = {}
_VALID_TOOLS_MAX = 32


def _tools_key(tools: Any) -> bytes | None:
    if not isinstance(tools, list) or not tools:
        return None
    try:
        return orjson.dumps(tools)
    except (TypeError, orjson.JSONEncodeError):  # deeper than orjson writes: the full check says where
        return None


def _remember_tools(key: bytes) -> None:
    if len(_VALID_TOOLS) >= _VALID_TOOLS_MAX:
        _VALID_TOOLS.pop(next(iter(_VALID_TOOLS)))
    _VALID_TOOLS[key] = None


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
        optional(t, "cache_control", p, _cache_control)


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
    optional(v, "edits", path, _typed_objects)


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
        _message(m, join("messages", i))
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
    optional(body, "mcp_servers", "", _typed_objects)
    optional(body, "cache_control", "", _cache_control)
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


THINKING_BUDGET_DEFAULT = 16_000


def adapt_for_model(body: dict, model: str, spec) -> dict:
    """The request as the target model accepts it. Returns ``body`` itself (same object) when nothing needs
    changing, so the caller can forward the original bytes untouched.

    A request routed away from the model it was written for may carry fields that model rejects:
    ``thinking: {type: adaptive}`` and ``output_config.effort`` (Claude Code sends both to Opus-class
    models), or a ``max_tokens`` above the model's output limit.
    """
    changes: dict = {}
    drop: list[str] = []
    if body.get("model") != model:
        changes["model"] = model
    if spec is not None:
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens > spec.max_output:
            changes["max_tokens"] = max_tokens = spec.max_output
        th = body.get("thinking")
        if isinstance(th, dict) and th.get("type") in ("adaptive", "enabled"):
            if not spec.thinking:
                drop.append("thinking")
                if "context_management" in body:
                    drop.append("context_management")
            elif th.get("type") == "adaptive" and not spec.adaptive_thinking:
                if isinstance(max_tokens, int) and max_tokens > 1024 + 1:
                    changes["thinking"] = {"type": "enabled",
                                           "budget_tokens": min(THINKING_BUDGET_DEFAULT, max_tokens - 1)}
                else:
                    drop.append("thinking")
            elif th.get("type") == "enabled" and isinstance(max_tokens, int):
                budget = th.get("budget_tokens")
                if isinstance(budget, int) and budget >= max_tokens:
                    changes["thinking"] = {**th, "budget_tokens": max(1024, max_tokens - 1)}
        oc = body.get("output_config")
        if isinstance(oc, dict) and "effort" in oc and not spec.effort:
            rest = {k: v for k, v in oc.items() if k != "effort"}
            if rest:
                changes["output_config"] = rest
            else:
                drop.append("output_config")
    if not changes and not drop:
        return body
    out = {k: v for k, v in body.items() if k not in drop}
    out.update(changes)
    return out
