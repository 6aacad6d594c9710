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

This module assembles the request (``to_openai``) and owns its top-level fields: limits, sampling, stop
sequences, user id, reasoning, structured output. The conversation is converted by ``convert/messages.py``,
the tools and tool choice by ``convert/tools.py``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from llmproxy.convert.messages import Target, chat_messages
from llmproxy.convert.quirks import Quirks
from llmproxy.convert.tools import tool_fields

#: stop strings an OpenAI-compatible upstream takes (OpenAI's limit); the rest are enforced by the proxy
MAX_STOP_SEQUENCES = 4


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


def _reasoning(out: dict, body: dict, quirks: Quirks) -> None:
    """The thinking request as the provider's reasoning setting (``Quirks.reasoning``), if it has one."""
    effort = _effort(body)
    if effort and quirks.reasoning == "reasoning_effort":
        out["reasoning_effort"] = effort
    elif quirks.reasoning == "openrouter" and (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
        th = body["thinking"]
        out["reasoning"] = {"max_tokens": th["budget_tokens"]} if th.get("budget_tokens") else {"effort": effort}


def _response_format(out: dict, body: dict, quirks: Quirks) -> None:
    """``output_config.format`` (a JSON schema) in the provider's structured-output mode, else as an
    instruction in the system message."""
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


def to_openai(body: dict, *, model: str, provider: str = "upstream", quirks: Quirks | None = None,
              max_output: int | None = None, images: bool = True) -> dict:
    """``images=False``: the model takes no image input (``ModelSpec.images``); images become placeholders."""
    quirks = quirks or Quirks()
    stream = bool(body.get("stream"))
    target = Target(provider, quirks, images)
    out: dict[str, Any] = {"model": model, "messages": chat_messages(body, target), "stream": stream}
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
    out.update(tool_fields(body, quirks.strict_schema))
    _reasoning(out, body, quirks)
    _response_format(out, body, quirks)
    if stream and quirks.stream_usage:
        out["stream_options"] = {"include_usage": True}
    return out
