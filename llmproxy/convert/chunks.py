"""Reading Chat Completions chunks: usage, finish reasons, tool ids and arguments, reasoning text, and whether a
chunk carries nothing but text. Pure helpers of ``convert/stream.py``."""

from __future__ import annotations

import secrets

import orjson

FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                  "content_filter": "refusal", "end_turn": "end_turn", "eos": "end_turn"}
_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def tool_id(raw: object, seen: set[str]) -> str:
    """The provider's id when it is usable by Anthropic (charset, length, unique); else a fresh one."""
    rid = raw if isinstance(raw, str) else ""
    if len(rid) >= 8 and set(rid) <= _ID_OK and rid not in seen:
        seen.add(rid)
        return rid
    new = "toolu_llmp_" + secrets.token_hex(12)
    seen.add(new)
    return new


def normalise_arguments(args: str) -> str:
    """A JSON object text for a complete tool-call argument string (Anthropic requires an object)."""
    if not args.strip():
        return "{}"
    try:
        val = orjson.loads(args)
    except orjson.JSONDecodeError:
        return orjson.dumps({"_unparsed_arguments": args}).decode()
    return args if isinstance(val, dict) else orjson.dumps({"value": val}).decode()


def map_usage(u: dict | None) -> dict:
    if not u:
        return {}
    prompt = int(u.get("prompt_tokens") or 0)
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0)
    return {"input_tokens": max(0, prompt - cached), "output_tokens": int(u.get("completion_tokens") or 0),
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}


def map_stop(finish: str | None, matched_stop: object, stop_sequences: tuple[str, ...], has_tools: bool
             ) -> tuple[str, str | None]:
    if isinstance(matched_stop, str) and matched_stop in stop_sequences:
        return "stop_sequence", matched_stop
    if has_tools and finish in (None, "stop", "tool_calls", "function_call"):
        return "tool_use", None
    return FINISH_TO_STOP.get(finish or "stop", "end_turn"), None


def reasoning_text(delta: dict) -> str:
    for key in ("reasoning_content", "reasoning"):
        val = delta.get(key)
        if isinstance(val, str) and val:
            return val
    details = delta.get("reasoning_details")
    if isinstance(details, list):
        return "".join(d.get("text", "") for d in details if isinstance(d, dict) and isinstance(d.get("text"), str))
    return ""


_PLAIN_DELTA_KEYS = frozenset({"content", "role"})


def plain_text(chunk: dict) -> str | None:
    """The text of a chunk that carries nothing else (one choice, index 0, no finish, usage, refusal,
    reasoning or tool call); None for any other chunk."""
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1 or chunk.get("usage") or chunk.get("error") is not None:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") or choice.get("index", 0) != 0:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict:
        return None
    text = delta.get("content")
    if type(text) is not str:
        return None
    if len(delta) == 1:  # the usual text chunk
        return text
    return text if delta.keys() <= _PLAIN_DELTA_KEYS and delta.get("role") in (None, "assistant") else None
