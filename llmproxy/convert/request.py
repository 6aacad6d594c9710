"""Anthropic Messages request -> OpenAI Chat Completions request (pure).

Rules (docs/anthropic-api.md §6): system blocks become one system message, minus Claude Code's billing-header
block (it changes every request and defeats upstream prompt caching); tool results become ``role: "tool"``
messages in order, before the user's other content; tool ids are preserved; custom tools become functions
with cleaned schemas, typed/server tools are dropped; thinking maps to the provider's reasoning setting;
fields an OpenAI upstream does not understand (cache_control, context_management, output_config, betas)
are dropped.

A block the provider cannot take never fails the request (Claude Code resends the history, so it would fail
every later turn too): a PDF becomes its extracted text, an image for a text-only model or a file reference
becomes a placeholder (``convert/documents.py``). Stop sequences beyond the upstream's limit (4, OpenAI's)
are not sent; the stream converter enforces them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from llmproxy.convert.documents import pdf_as_text, placeholder
from llmproxy.convert.quirks import Quirks

BILLING_PREFIX = "x-anthropic-billing-header:"
_STRICT_DROP = frozenset({"$schema", "$id", "$comment", "format", "examples", "default"})
_ALWAYS_DROP = frozenset({"$schema"})
#: stop strings an OpenAI-compatible upstream takes (OpenAI's limit); the rest are enforced by the proxy
MAX_STOP_SEQUENCES = 4


@dataclass(frozen=True)
class _Target:
    provider: str
    quirks: Quirks
    images: bool  # the model accepts image input


def system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        parts = [b.get("text", "") for b in system if isinstance(b, dict) and b.get("type", "text") == "text"]
        return "\n\n".join(p for p in parts if p and not p.startswith(BILLING_PREFIX))
    return ""


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
_FUNCTIONS: dict[tuple[bool, bytes], list[dict]] = {}
_FUNCTIONS_MAX = 32


def functions(tools: list[dict], strict: bool) -> list[dict]:
    """Anthropic custom tools as Chat Completions functions (cached; the result must not be modified)."""
    key = (strict, orjson.dumps(tools))
    hit = _FUNCTIONS.get(key)
    if hit is None:
        hit = [{"type": "function", "function": {
            "name": t["name"], "description": t.get("description", ""),
            "parameters": clean_schema(t.get("input_schema") or {"type": "object", "properties": {}}, strict)}}
            for t in tools]
        if len(_FUNCTIONS) >= _FUNCTIONS_MAX:
            _FUNCTIONS.pop(next(iter(_FUNCTIONS)))  # oldest first: dicts keep insertion order
        _FUNCTIONS[key] = hit
    return hit


def is_custom_tool(tool: dict) -> bool:
    return tool.get("type") in (None, "custom")


def _image_part(block: dict, t: _Target) -> dict:
    src = block.get("source") or {}
    kind = src.get("type")
    if not t.images:
        return {"type": "text", "text": placeholder("Image", f"the {t.provider} model for this request does "
                                                             "not accept images")}
    if kind == "base64":
        return {"type": "image_url", "image_url": {"url": f"data:{src.get('media_type', 'image/png')};base64,{src.get('data', '')}"}}
    if kind == "url":
        return {"type": "image_url", "image_url": {"url": src.get("url", "")}}
    ref = f" (file {src['file_id']})" if kind == "file" and src.get("file_id") else ""
    return {"type": "text", "text": placeholder(f"Image{ref}", f"an image given as {kind!r} cannot be sent to "
                                                                f"{t.provider}")}


def _document_part(block: dict, t: _Target) -> dict:
    src = block.get("source") or {}
    title = block.get("title")
    kind = src.get("type")
    if kind == "text":
        text = src.get("data", "")
        return {"type": "text", "text": f"{title}\n\n{text}" if title else text}
    if kind == "content":
        inner = src.get("content")
        text = inner if isinstance(inner, str) else "\n".join(
            b.get("text", "") for b in inner or [] if isinstance(b, dict) and b.get("type") == "text")
        return {"type": "text", "text": text}
    if kind == "base64" and src.get("media_type", "application/pdf") == "application/pdf":
        data = src.get("data", "")
        if not t.quirks.pdf:
            return {"type": "text", "text": pdf_as_text(data if isinstance(data, str) else "", title, t.provider)}
        return {"type": "file", "file": {"filename": title or "document.pdf",
                                         "file_data": f"data:application/pdf;base64,{data}"}}
    name = f' "{title}"' if isinstance(title, str) and title else ""
    if kind == "url":
        return {"type": "text", "text": placeholder(f"Document{name} at {src.get('url', '')}",
                                                    f"llmproxy does not fetch documents for {t.provider}")}
    ref = f" (file {src['file_id']})" if kind == "file" and src.get("file_id") else ""
    return {"type": "text", "text": placeholder(f"Document{name}{ref}", f"a document given as {kind!r} cannot be "
                                                                        f"sent to {t.provider}")}


def text_of(content: Any) -> str:
    """A string content, or the text blocks/parts of a list joined by newlines (the two APIs share the shape)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _tool_result(block: dict, t: _Target) -> tuple[dict, list[dict]]:
    """(the role:tool message, image/file parts that must follow in a user message: a tool message takes
    text only)."""
    content = block.get("content")
    attached: list[dict] = []
    if isinstance(content, list):
        texts = []
        for b in content:
            if not isinstance(b, dict):
                continue
            kind = b.get("type")
            if kind == "text":
                texts.append(b.get("text", ""))
            elif kind in ("image", "document"):
                part = _image_part(b, t) if kind == "image" else _document_part(b, t)
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    attached.append(part)
                    texts.append(f"[{'image' if kind == 'image' else 'document'} attached below]")
            elif kind == "search_result":
                texts.append(text_of(b.get("content")))
        text = "\n".join(texts)
    else:
        text = content if isinstance(content, str) else ""
    if block.get("is_error"):
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text}, attached


def _user_messages(content: list, t: _Target) -> list[dict]:
    out: list[dict] = []
    parts: list[dict] = []
    trailing: list[dict] = []
    for b in content:
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        if kind == "tool_result":
            msg, attached = _tool_result(b, t)
            out.append(msg)
            trailing += attached
        elif kind == "text":
            part: dict = {"type": "text", "text": b.get("text", "")}
            if t.quirks.cache_control and "cache_control" in b:
                part["cache_control"] = b["cache_control"]
            parts.append(part)
        elif kind == "image":
            parts.append(_image_part(b, t))
        elif kind == "document":
            parts.append(_document_part(b, t))
        elif kind == "search_result":
            parts.append({"type": "text", "text": text_of(b.get("content"))})
    parts = trailing + parts
    if parts:
        if all(p["type"] == "text" and "cache_control" not in p for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _assistant_message(content: list, quirks: Quirks) -> dict | None:
    texts, calls, reasoning = [], [], []
    for b in content:
        if not isinstance(b, dict):
            continue
        t = b.get("type")
        if t == "text":
            texts.append(b.get("text", ""))
        elif t == "tool_use":
            calls.append({"id": str(b.get("id", "")), "type": "function",
                          "function": {"name": b.get("name", ""),
                                       "arguments": orjson.dumps(b.get("input", {})).decode()}})
        elif t == "thinking":
            reasoning.append(b.get("thinking", ""))
    msg: dict = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        msg["tool_calls"] = calls
    elif msg["content"] is None:
        msg["content"] = ""
    if reasoning and quirks.reasoning_in_history:
        msg["reasoning_content"] = "\n".join(reasoning)
    return msg


def _messages(body: dict, t: _Target) -> list[dict]:
    out: list[dict] = []
    sys_ = system_text(body.get("system"))
    if sys_:
        out.append({"role": "system", "content": sys_})
    for m in body.get("messages") or []:
        role, content = m.get("role"), m.get("content")
        if role == "system":
            out.append({"role": "system", "content": text_of(content) if not isinstance(content, str) else content})
        elif isinstance(content, str):
            out.append({"role": role, "content": content})
        elif role == "user":
            out += _user_messages(content or [], t)
        elif role == "assistant":
            msg = _assistant_message(content or [], t.quirks)
            if msg is not None:
                out.append(msg)
    return out


def _effort(body: dict) -> str | None:
    th = body.get("thinking") or {}
    kind = th.get("type")
    if kind == "enabled":
        budget = th.get("budget_tokens") or 0
        return "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    if kind == "adaptive":
        effort = (body.get("output_config") or {}).get("effort", "medium")
        return {"xhigh": "high", "max": "high"}.get(effort, effort)
    return None


def _user_id(metadata: Any) -> str | None:
    uid = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(uid, str) or not uid:
        return None
    return uid if len(uid) <= 64 else "u_" + hashlib.sha256(uid.encode()).hexdigest()[:32]


def json_instruction(schema: Any) -> str:
    """The system-prompt fallback for JSON output where the upstream has no structured-output mode."""
    note = "Respond with a single JSON object and nothing else."
    return note + (f" It must match this JSON schema: {orjson.dumps(schema).decode()}" if schema else "")


def _add_system(msgs: list[dict], note: str) -> None:
    if msgs and msgs[0]["role"] == "system":
        msgs[0] = {**msgs[0], "content": msgs[0]["content"] + "\n\n" + note}
    else:
        msgs.insert(0, {"role": "system", "content": note})


def to_openai(body: dict, *, model: str, provider: str = "upstream", quirks: Quirks | None = None,
              max_output: int | None = None, images: bool = True) -> dict:
    """``images=False``: the model takes no image input (``ModelSpec.images``); images become placeholders."""
    quirks = quirks or Quirks()
    stream = bool(body.get("stream"))
    target = _Target(provider, quirks, images)
    out: dict[str, Any] = {"model": model, "messages": _messages(body, target), "stream": stream}
    limit = body.get("max_tokens")
    for cap in (max_output, quirks.max_tokens_cap):
        if cap and isinstance(limit, int) and limit > cap:
            limit = cap
    if isinstance(limit, int):
        out[quirks.max_tokens_field] = limit
    for key in ("temperature", "top_p"):
        if key in body:
            out[key] = body[key]
    if quirks.top_k and "top_k" in body:
        out["top_k"] = body["top_k"]
    if body.get("stop_sequences"):
        limit = getattr(quirks, "max_stop_sequences", MAX_STOP_SEQUENCES)  # a provider may take more
        out["stop"] = list(body["stop_sequences"])[:limit]
    if uid := _user_id(body.get("metadata")):
        out["user"] = uid
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and is_custom_tool(t)]
    if tools:
        out["tools"] = functions(tools, quirks.strict_schema)
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
    effort = _effort(body)
    if effort and quirks.reasoning == "reasoning_effort":
        out["reasoning_effort"] = effort
    elif quirks.reasoning == "openrouter" and (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
        th = body["thinking"]
        out["reasoning"] = {"max_tokens": th["budget_tokens"]} if th.get("budget_tokens") else {"effort": effort}
    fmt = (body.get("output_config") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        if quirks.structured_output == "json_schema":
            out["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": "response", "schema": fmt["schema"], "strict": False}}
        elif quirks.structured_output == "json_object":
            out["response_format"] = {"type": "json_object"}
            _add_system(out["messages"], json_instruction(fmt["schema"]))
        else:  # no JSON mode at all: the instruction is all there is
            _add_system(out["messages"], json_instruction(fmt["schema"]))
    if stream and quirks.stream_usage:
        out["stream_options"] = {"include_usage": True}
    return out
