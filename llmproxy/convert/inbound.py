"""The inbound OpenAI surface: a Chat Completions request -> the internal Anthropic form, and Anthropic
results (a Message, or its event stream) -> OpenAI's shapes. Pure.

Ranges and modes that differ between the APIs:

- ``temperature``: OpenAI takes 0-2, Anthropic 0-1. Values are *clamped* to 1, not divided by 2. Both APIs
  scale the logits by the same temperature and both default to 1, so a value in 0-1 (nearly every request:
  0, 0.2, 0.7, 1) means the same thing on both sides and is kept as it is; halving would turn the common
  explicit ``temperature: 1`` into 0.5 and make every request more deterministic than the client asked for.
  Above 1 there is no Anthropic equivalent; 1 is the closest. Each change is written to ``notes`` (for the
  request log). With thinking on (from ``reasoning_effort``) Anthropic accepts only the default sampling, so
  ``temperature``/``top_p`` are dropped then, with a note.
- ``response_format: json_schema`` becomes Anthropic's structured output, ``output_config.format``; the
  OpenAI-kind converter turns it back into ``response_format`` (or its own fallback, per provider quirk).
  ``json_object`` (no schema) has no Anthropic equivalent: a system instruction asks for JSON.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from llmproxy.convert.messages import text_of
from llmproxy.convert.request import json_instruction
from llmproxy.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 8192
STOP_TO_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "refusal": "content_filter", "pause_turn": "stop", "model_context_window_exceeded": "length"}


def _image_block(url: str) -> dict:
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media = head[5:].split(";")[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_content(content: Any, i: int) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"messages.{i}.content: expected a string or a list of content parts")
    out = []
    for j, p in enumerate(content):
        t = p.get("type") if isinstance(p, dict) else None
        if t == "text":
            out.append({"type": "text", "text": p.get("text", "")})
        elif t == "image_url":
            iu = p.get("image_url")
            url = iu.get("url") if isinstance(iu, dict) else iu
            if not isinstance(url, str):
                raise InvalidRequest(f"messages.{i}.content.{j}.image_url.url: required")
            out.append(_image_block(url))
        elif t == "file":
            f = p.get("file") or {}
            data = f.get("file_data", "")
            if isinstance(data, str) and data.startswith("data:application/pdf;base64,"):
                out.append({"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                           "data": data.split(",", 1)[1]}})
            else:
                raise InvalidRequest(f"messages.{i}.content.{j}.file.file_data: only inline files (file_data) are supported")
        else:
            raise InvalidRequest(f"messages.{i}.content.{j}.type: unsupported content part {t!r}")
    return out


def _args(raw: Any, i: int) -> dict:
    if isinstance(raw, dict):
        return raw
    try:
        val = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"messages.{i}.tool_calls: function.arguments is not valid JSON") from None
    return val if isinstance(val, dict) else {"value": val}


def to_anthropic(req: Any, notes: list[str] | None = None) -> dict:
    """An OpenAI Chat Completions request -> an Anthropic Messages request (raises InvalidRequest).
    ``notes`` (when given) receives a line for each value changed to fit the Anthropic API."""
    notes = notes if notes is not None else []
    if not isinstance(req, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = req.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: required")
    msgs = req.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise InvalidRequest("messages: a non-empty list is required")
    if req.get("n", 1) != 1:
        raise InvalidRequest("n: only n=1 is supported")
    system, out = _conversation(msgs)
    if not out:
        raise InvalidRequest("messages: at least one user, assistant or tool message is required (the Anthropic "
                             "API has no request made of system or developer messages alone)")
    body: dict[str, Any] = {"model": model, "messages": out,
                            "max_tokens": req.get("max_completion_tokens") or req.get("max_tokens") or DEFAULT_MAX_TOKENS}
    system += _response_format(req.get("response_format"), body)
    if system:
        body["system"] = "\n\n".join(system)
    _sampling(req, body, notes)
    _tools(req, body)
    _effort(req.get("reasoning_effort"), body, notes)
    return body


def _conversation(msgs: list) -> tuple[list[str], list[dict]]:
    """OpenAI messages -> (system texts, Anthropic messages): consecutive same-role turns merged, tool
    answers as the user's ``tool_result`` blocks. Reasoning from an earlier assistant turn
    (``reasoning_content``) carries no verifiable signature and is not replayed."""
    system: list[str] = []
    out: list[dict] = []

    def push(role: str, blocks: list[dict]) -> None:
        if out and out[-1]["role"] == role and isinstance(out[-1]["content"], list):
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})

    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise InvalidRequest(f"messages.{i}: expected an object")
        role = m.get("role")
        if role in ("system", "developer"):
            if out:
                out.append({"role": "system", "content": text_of(m.get("content"))})
            else:
                system.append(text_of(m.get("content")))
        elif role == "user":
            c = _user_content(m.get("content"), i)
            push("user", [{"type": "text", "text": c}] if isinstance(c, str) else c)
        elif role == "assistant":
            push("assistant", _assistant_blocks(m, i))
        elif role == "tool":
            push("user", [{"type": "tool_result", "tool_use_id": str(m.get("tool_call_id", "")),
                           "content": text_of(m.get("content"))}])
        else:
            raise InvalidRequest(f"messages.{i}.role: unsupported role {role!r}")
    return system, out


def _assistant_blocks(m: dict, i: int) -> list[dict]:
    blocks: list[dict] = []
    text = text_of(m.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequest(f"messages.{i}.tool_calls: expected a list")
    for j, tc in enumerate(calls):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict):
            raise InvalidRequest(f"messages.{i}.tool_calls.{j}.function: expected an object")
        blocks.append({"type": "tool_use", "id": tc.get("id") or f"call_{i}_{len(blocks)}",
                       "name": fn.get("name", ""), "input": _args(fn.get("arguments"), i)})
    return blocks or [{"type": "text", "text": ""}]


def _response_format(rf: Any, body: dict) -> list[str]:
    """``json_schema`` -> ``output_config.format``; ``json_object`` (no schema) -> a system instruction."""
    if not (isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema")):
        return []
    schema = (rf.get("json_schema") or {}).get("schema") if isinstance(rf.get("json_schema"), dict) else None
    if rf["type"] == "json_schema" and isinstance(schema, dict):
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        return []
    return [json_instruction(schema)]


def _sampling(req: dict, body: dict, notes: list[str]) -> None:
    for key in ("temperature", "top_p", "stream"):
        if key in req and req[key] is not None:
            body[key] = req[key]
    temp = body.get("temperature")
    if isinstance(temp, (int, float)) and not isinstance(temp, bool) and temp > 1:
        body["temperature"] = 1.0
        notes.append(f"temperature {temp:g} clamped to 1 (OpenAI's range is 0-2, Anthropic's 0-1; values up to 1 "
                     "are kept as they are)")
    stop = req.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(req.get("user"), str):
        body["metadata"] = {"user_id": req["user"]}


_TOOL_CHOICE = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def _tools(req: dict, body: dict) -> None:
    tools = req.get("tools")
    if not tools:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("tools: expected a list")
    converted = []
    for k, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type") != "function":
            continue
        fn = t.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidRequest(f"tools.{k}.function.name: required")
        converted.append({"name": fn["name"], "description": fn.get("description", ""),
                          "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}})
    body["tools"] = converted
    tc = req.get("tool_choice")
    if tc is None:
        return
    if isinstance(tc, str) and tc in _TOOL_CHOICE:
        body["tool_choice"] = dict(_TOOL_CHOICE[tc])
    elif isinstance(tc, dict) and isinstance(tc.get("function"), dict) and tc["function"].get("name"):
        body["tool_choice"] = {"type": "tool", "name": tc["function"]["name"]}
    if req.get("parallel_tool_calls") is False and "tool_choice" in body:
        body["tool_choice"]["disable_parallel_tool_use"] = True


_EFFORT_BUDGET = {"low": 2048, "medium": 8192, "high": 24576}


def _effort(effort: Any, body: dict, notes: list[str]) -> None:
    """``reasoning_effort`` -> extended thinking with a budget (when ``max_tokens`` leaves room for it)."""
    budget = _EFFORT_BUDGET.get(effort) if isinstance(effort, str) else None
    if budget is None or not (isinstance(body["max_tokens"], int) and body["max_tokens"] > budget):
        return
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    for key in ("temperature", "top_p"):
        if key in body:
            notes.append(f"{key} {body.pop(key):g} dropped: with thinking on, Anthropic takes only the "
                         "default sampling")


# ----------------------------------------------------------------------------------- Anthropic -> OpenAI

def _usage(u: dict) -> dict:
    cached = int(u.get("cache_read_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + cached + int(u.get("cache_creation_input_tokens") or 0)
    comp = int(u.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": comp, "total_tokens": prompt + comp,
            "prompt_tokens_details": {"cached_tokens": cached}}


def completion_from_message(msg: dict, model: str) -> dict:
    text, calls, reasoning = [], [], []
    for b in msg.get("content") or []:
        if b.get("type") == "text":
            text.append(b.get("text", ""))
        elif b.get("type") == "tool_use":
            calls.append({"id": b["id"], "type": "function",
                          "function": {"name": b["name"], "arguments": orjson.dumps(b.get("input", {})).decode()}})
        elif b.get("type") == "thinking":
            reasoning.append(b.get("thinking", ""))
    message: dict = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return {"id": "chatcmpl-" + str(msg.get("id", "")).removeprefix("msg_"), "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": STOP_TO_FINISH.get(msg.get("stop_reason") or "end_turn", "stop")}],
            "usage": _usage(msg.get("usage") or {})}


class ChunkConverter:
    """Anthropic events -> OpenAI ``chat.completion.chunk`` dicts (``feed`` per event)."""

    def __init__(self, model: str, include_usage: bool):
        self.model = model
        self.include_usage = include_usage
        self.id = "chatcmpl-llmp"
        self.created = int(time.time())
        self.tool_index: dict[int, int] = {}  # anthropic block index -> openai tool_calls index
        self.usage: dict = {}

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def feed(self, name: str, data: dict) -> list[dict]:
        if name == "message_start":
            m = data.get("message") or {}
            self.id = "chatcmpl-" + str(m.get("id", "llmp")).removeprefix("msg_")
            self.usage = dict(m.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if name == "content_block_start":
            b = data.get("content_block") or {}
            if b.get("type") == "tool_use":
                k = self.tool_index[data["index"]] = len(self.tool_index)
                return [self._chunk({"tool_calls": [{"index": k, "id": b.get("id"), "type": "function",
                                                     "function": {"name": b.get("name"), "arguments": ""}}]})]
            return []
        if name == "content_block_delta":
            d = data.get("delta") or {}
            if d.get("type") == "text_delta":
                return [self._chunk({"content": d.get("text", "")})]
            if d.get("type") == "thinking_delta":
                return [self._chunk({"reasoning_content": d.get("thinking", "")})]
            if d.get("type") == "input_json_delta" and data.get("index") in self.tool_index:
                return [self._chunk({"tool_calls": [{"index": self.tool_index[data["index"]],
                                                     "function": {"arguments": d.get("partial_json", "")}}]})]
            return []
        if name == "message_delta":
            self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            stop = (data.get("delta") or {}).get("stop_reason") or "end_turn"
            return [self._chunk({}, STOP_TO_FINISH.get(stop, "stop"))]
        if name == "message_stop" and self.include_usage:
            return [{"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                     "choices": [], "usage": _usage(self.usage)}]
        return []
