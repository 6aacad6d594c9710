"""Validation of inbound Anthropic requests: parse once, check the fields the API requires, and name the
field that is wrong. Unknown keys are carried, never validated away (Claude Code sends newer keys)."""

from __future__ import annotations

from typing import Any

import orjson

from llmproxy.errors import InvalidRequest

ROLES = ("user", "assistant", "system")


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None


def _need(body: dict, key: str, typ: type | tuple, what: str) -> Any:
    if key not in body:
        raise InvalidRequest(f"{key}: Field required")
    val = body[key]
    if not isinstance(val, typ) or isinstance(val, bool) and bool not in (typ if isinstance(typ, tuple) else (typ,)):
        raise InvalidRequest(f"{key}: Input should be {what}")
    return val


def validate_messages(body: Any, *, count_tokens: bool = False) -> dict:
    """Check a /v1/messages (or count_tokens) body; return it. Raises InvalidRequest naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = _need(body, "model", str, "a valid string")
    if not model.strip():
        raise InvalidRequest("model: String should have at least 1 character")
    if not count_tokens:
        mt = _need(body, "max_tokens", int, "a valid integer")
        if mt < 1:
            raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    msgs = _need(body, "messages", list, "a valid list")
    if not msgs and not count_tokens:
        raise InvalidRequest("messages: List should have at least 1 item")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise InvalidRequest(f"messages.{i}: Input should be an object")
        if m.get("role") not in ROLES:
            raise InvalidRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = m.get("content")
        if isinstance(content, list):
            for j, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise InvalidRequest(f"messages.{i}.content.{j}: each content block needs a string 'type'")
        elif not isinstance(content, str):
            raise InvalidRequest(f"messages.{i}.content: Input should be a string or a list of content blocks")
    if "system" in body and not isinstance(body["system"], (str, list)):
        raise InvalidRequest("system: Input should be a string or a list of text blocks")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    if "tools" in body:
        tools = body["tools"]
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise InvalidRequest("tools: Input should be a list of tool objects")
        for k, t in enumerate(tools):
            if not isinstance(t.get("name"), str):
                raise InvalidRequest(f"tools.{k}.name: Field required")
    if "stop_sequences" in body and not (
            isinstance(body["stop_sequences"], list) and all(isinstance(s, str) for s in body["stop_sequences"])):
        raise InvalidRequest("stop_sequences: Input should be a list of strings")
    if "temperature" in body and (isinstance(body["temperature"], bool)
                                  or not isinstance(body["temperature"], (int, float))):
        raise InvalidRequest("temperature: Input should be a number")
    return body


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
