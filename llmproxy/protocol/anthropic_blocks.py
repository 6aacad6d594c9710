"""Validation of the content of an inbound Anthropic request: messages, content blocks by type (text, image,
document, search_result, tool_use, tool_result, thinking, server tool results) and their sources.

``llmproxy.protocol.anthropic`` calls ``check_message`` for each of ``messages`` and ``check_block`` for each
``system`` block; a known block type is checked field by field, an unknown one is carried as long as it is an
object with a string ``type``. Failures name the offending field's path, as everywhere in validation.
"""

from __future__ import annotations

from typing import Any

from llmproxy.protocol.validate import (
    fail,
    join,
    optional,
    required,
    want_bool,
    want_list,
    want_obj,
    want_one_of,
    want_str,
)

ROLES = ("user", "assistant", "system")

# ------------------------------------------------------------------------------------------ small parts

def check_cache_control(v: Any, path: str) -> None:
    want_obj(v, path)
    want_str(required(v, "type", path), join(path, "type"))
    optional(v, "ttl", path, want_str)


def check_typed_objects(v: Any, path: str) -> None:
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
        check_content(required(src, "content", path), join(path, "content"))
    elif kind == "url":
        want_str(required(src, "url", path), join(path, "url"))
    elif kind == "file":
        want_str(required(src, "file_id", path), join(path, "file_id"))


def _text(b: dict, path: str) -> None:
    want_str(required(b, "text", path), join(path, "text"))
    optional(b, "citations", path, check_typed_objects)


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
    optional(b, "content", path, check_content)
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


def check_block(b: Any, path: str, only: tuple[str, ...] | None = None) -> None:
    """One content block: an object with a string ``type``; known types are checked, unknown ones carried."""
    want_obj(b, path)
    kind = want_str(required(b, "type", path), join(path, "type"))
    if only is not None:
        want_one_of(kind, join(path, "type"), only)
    optional(b, "cache_control", path, check_cache_control)
    check = BLOCKS.get(kind)
    if check is not None:
        check(b, path)


def check_content(v: Any, path: str, only: tuple[str, ...] | None = None) -> None:
    """A string, or a list of content blocks."""
    if isinstance(v, str):
        return
    if not isinstance(v, list):
        fail(path, "Input should be a valid string or a list of content blocks")
    for j, b in enumerate(v):
        check_block(b, join(path, j), only)


def check_message(m: Any, path: str) -> None:
    want_obj(m, path)
    role = want_one_of(required(m, "role", path), join(path, "role"), ROLES)
    # a mid-conversation system message carries text only (routing reads it as text)
    check_content(required(m, "content", path), join(path, "content"), ("text",) if role == "system" else None)
