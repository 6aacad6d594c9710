"""Anthropic tools -> Chat Completions functions (pure), for ``convert/request.py``: custom tools only
(typed/server tools are dropped), their JSON schemas cleaned of keywords strict providers reject, and the
converted lists cached (Claude Code sends the same tools every turn); ``tool_choice`` mapped alongside.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmproxy.protocol.toolcache import MAX_BYTES, MAX_ENTRY_BYTES, ToolListCache

_STRICT_DROP = frozenset({"$schema", "$id", "$comment", "format", "examples", "default"})
_ALWAYS_DROP = frozenset({"$schema"})


def clean_schema(schema: Any, strict: bool, _names: bool = False) -> Any:
    """Drop schema keywords strict providers reject. Inside a ``properties`` map the keys are parameter
    names (a parameter may well be called ``format``), so nothing is dropped at that level."""
    drop = _STRICT_DROP if strict else _ALWAYS_DROP
    if isinstance(schema, dict):
        return {k: clean_schema(v, strict, _names=(k in ("properties", "patternProperties", "$defs", "definitions")
                                                     and not _names))
                for k, v in schema.items() if _names or k not in drop}
    if isinstance(schema, list):
        return [clean_schema(v, strict) for v in schema]
    return schema


#: converted tool lists by (strictness, the tools' JSON): Claude Code sends the same 20-30 tools every turn,
#: and cleaning their schemas is most of a translated request's conversion cost. Shared, never mutated.
#: Bounded by bytes: an entry weighs its JSON key and the converted list (objects, ≈ 4x the JSON), and the
#: bounds are the validation cache's in tool-list JSON (a list up to 256 KiB kept, 2 MiB in all: ≈ 10 MiB)
_ENTRY_PER_JSON_BYTE = 5  # memory per byte of JSON (tracemalloc, the bench's 57 KB Claude Code list: 293 KB)
_FUNCTIONS: ToolListCache[list[dict]] = ToolListCache(max_bytes=_ENTRY_PER_JSON_BYTE * MAX_BYTES,
                                                      max_entry_bytes=_ENTRY_PER_JSON_BYTE * MAX_ENTRY_BYTES)


def functions(tools: list[dict], strict: bool) -> list[dict]:
    """Anthropic custom tools as Chat Completions functions (cached; the result must not be modified)."""
    key = (strict, orjson.dumps(tools))
    hit = _FUNCTIONS.get(key)
    if hit is None:
        hit = [{"type": "function", "function": {
            "name": t["name"], "description": t.get("description", ""),
            "parameters": clean_schema(t.get("input_schema") or {"type": "object", "properties": {}}, strict)}}
            for t in tools]
        # the key's JSON copied to its own size: orjson's output keeps the larger buffer it was written into
        _FUNCTIONS.put((strict, bytes(memoryview(key[1]))), hit, len(key[1]) * _ENTRY_PER_JSON_BYTE)
    return hit


def is_custom_tool(tool: dict) -> bool:
    return tool.get("type") in (None, "custom")


def tool_fields(body: dict, strict: bool) -> dict:
    """The request's ``tools``, ``tool_choice`` and ``parallel_tool_calls`` in Chat Completions form (none
    when it has no custom tool; a choice naming a tool that was dropped is not sent)."""
    out: dict[str, Any] = {}
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and is_custom_tool(t)]
    if tools:
        out["tools"] = functions(tools, strict)
        names = {t["name"] for t in tools}
        tc = body.get("tool_choice")
        if isinstance(tc, dict):
            kind = tc.get("type")
            if kind == "auto":
                out["tool_choice"] = "auto"
            elif kind == "any":
                out["tool_choice"] = "required"
            elif kind == "none":
                out["tool_choice"] = "none"
            elif kind == "tool" and tc.get("name") in names:
                out["tool_choice"] = {"type": "function", "function": {"name": tc["name"]}}
            if tc.get("disable_parallel_tool_use"):
                out["parallel_tool_calls"] = False
    return out
