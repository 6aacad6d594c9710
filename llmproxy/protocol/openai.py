"""Validation of inbound OpenAI Chat Completions requests (``POST /v1/chat/completions``).

``validate_chat`` checks the type and shape of every field the proxy reads (``convert.inbound``, the
OpenAI surface, the passthrough to OpenAI-kind upstreams) and raises ``InvalidRequest`` whose message starts
with the dotted path of the offending field, e.g. ``messages.0.content: Input should be a valid string or
a list of content parts``. Unknown keys are carried. An optional field that is null counts as absent.

Tool-call ``arguments`` are JSON inside a string: they are parsed here too (the converter turns them into
``tool_use.input`` objects), must be valid JSON and nest at most ``MAX_ARGUMENTS_DEPTH`` levels, so the
converted Anthropic form still fits ``MAX_DEPTH``. Bounds are documented in ``llmproxy.protocol.validate``.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmproxy.errors import InvalidRequest
from llmproxy.protocol.validate import (
    MAX_DEPTH,
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

ROLES = ("system", "developer", "user", "assistant", "tool")
TOOL_CHOICES = ("none", "auto", "required")
#: nesting of a tool call's parsed ``arguments``; in the Anthropic form they sit 5 levels deep
#: (messages.N.content.N.input), so this keeps the converted body within MAX_DEPTH
MAX_ARGUMENTS_DEPTH = MAX_DEPTH - 8


# ------------------------------------------------------------------------------------------- content

def _text_part(p: dict, path: str) -> None:
    want_str(required(p, "text", path), join(path, "text"))


def _image_url_part(p: dict, path: str) -> None:
    iu = required(p, "image_url", path)
    where = join(path, "image_url")
    if isinstance(iu, str):  # accepted as a shorthand for {"url": ...}
        return
    want_obj(iu, where)
    want_str(required(iu, "url", where), join(where, "url"))
    optional(iu, "detail", where, want_str)


def _input_audio_part(p: dict, path: str) -> None:
    audio = want_obj(required(p, "input_audio", path), join(path, "input_audio"))
    where = join(path, "input_audio")
    want_str(required(audio, "data", where), join(where, "data"))
    optional(audio, "format", where, want_str)


def _file_part(p: dict, path: str) -> None:
    f = want_obj(required(p, "file", path), join(path, "file"))
    where = join(path, "file")
    for key in ("file_data", "file_id", "filename"):
        optional(f, key, where, want_str)


def _refusal_part(p: dict, path: str) -> None:
    want_str(required(p, "refusal", path), join(path, "refusal"))


PARTS = {"text": _text_part, "image_url": _image_url_part, "input_audio": _input_audio_part, "file": _file_part,
         "refusal": _refusal_part}


def _content(v: Any, path: str, only: tuple[str, ...]) -> None:
    """A string, or a list of content parts of the types in ``only``."""
    if isinstance(v, str):
        return
    if not isinstance(v, list):
        fail(path, "Input should be a valid string or a list of content parts")
    for j, part in enumerate(v):
        p = join(path, j)
        want_obj(part, p)
        kind = want_one_of(required(part, "type", p), join(p, "type"), only)
        PARTS[kind](part, p)


def _arguments(v: Any, path: str) -> None:
    if isinstance(v, dict):  # accepted: already-parsed arguments
        check_depth(v, MAX_ARGUMENTS_DEPTH, path)
        return
    want_str(v, path)
    if not v:
        return
    try:
        parsed = orjson.loads(v)
    except orjson.JSONDecodeError as exc:
        fail(path, f"Input should be a JSON string ({exc})")
    check_depth(parsed, MAX_ARGUMENTS_DEPTH, path)


def _tool_calls(v: Any, path: str) -> None:
    for k, tc in enumerate(want_list(v, path)):
        p = join(path, k)
        want_obj(tc, p)
        optional(tc, "id", p, want_str)
        optional(tc, "type", p, want_str)
        fn = want_obj(required(tc, "function", p), join(p, "function"))
        fp = join(p, "function")
        want_str(required(fn, "name", fp), join(fp, "name"))
        optional(fn, "arguments", fp, _arguments)


def _message(m: Any, path: str) -> None:
    want_obj(m, path)
    role = want_one_of(required(m, "role", path), join(path, "role"), ROLES)
    optional(m, "name", path, want_str)
    content = join(path, "content")
    if role in ("system", "developer"):
        _content(required(m, "content", path), content, ("text",))
    elif role == "user":
        _content(required(m, "content", path), content, tuple(PARTS))
    elif role == "assistant":
        optional(m, "content", path, _content, only=("text", "refusal"))
        optional(m, "tool_calls", path, _tool_calls)
        optional(m, "refusal", path, want_str)
        optional(m, "reasoning_content", path, want_str)
        fc = optional(m, "function_call", path, want_obj)
        if fc is not None:
            fp = join(path, "function_call")
            want_str(required(fc, "name", fp), join(fp, "name"))
            optional(fc, "arguments", fp, _arguments)
    else:  # tool
        want_str(required(m, "tool_call_id", path), join(path, "tool_call_id"))
        _content(required(m, "content", path), content, ("text",))


# ------------------------------------------------------------------------------------------ top level

def _function(fn: Any, path: str) -> None:
    want_obj(fn, path)
    want_str(required(fn, "name", path), join(path, "name"), min_chars=1)
    optional(fn, "description", path, want_str)
    optional(fn, "parameters", path, check_schema)
    optional(fn, "strict", path, want_bool)


def _tools(v: Any, path: str) -> None:
    for k, t in enumerate(want_list(v, path)):
        p = join(path, k)
        want_obj(t, p)
        kind = want_str(required(t, "type", p), join(p, "type"))
        if kind == "function":
            _function(required(t, "function", p), join(p, "function"))


def _functions(v: Any, path: str) -> None:
    for k, fn in enumerate(want_list(v, path)):
        _function(fn, join(path, k))


def _tool_choice(v: Any, path: str) -> None:
    if isinstance(v, str):
        want_one_of(v, path, TOOL_CHOICES)
        return
    if not isinstance(v, dict):
        fail(path, "Input should be 'none', 'auto', 'required' or an object")
    kind = want_str(required(v, "type", path), join(path, "type"))
    if kind == "function" or "function" in v:
        fn = want_obj(required(v, "function", path), join(path, "function"))
        want_str(required(fn, "name", join(path, "function")), join(join(path, "function"), "name"))


def _function_call(v: Any, path: str) -> None:
    if isinstance(v, str):
        return
    want_obj(v, path)
    want_str(required(v, "name", path), join(path, "name"))


def _response_format(v: Any, path: str) -> None:
    want_obj(v, path)
    kind = want_str(required(v, "type", path), join(path, "type"))
    if kind == "json_schema":
        js = want_obj(required(v, "json_schema", path), join(path, "json_schema"))
        p = join(path, "json_schema")
        optional(js, "name", p, want_str)
        optional(js, "schema", p, check_schema)
        optional(js, "strict", p, want_bool)


def _stop(v: Any, path: str) -> None:
    if isinstance(v, str):
        return
    if not isinstance(v, list):
        fail(path, "Input should be a valid string or a list of strings")
    want_str_list(v, path)


def _stream_options(v: Any, path: str) -> None:
    want_obj(v, path)
    optional(v, "include_usage", path, want_bool)


def validate_chat(body: Any) -> dict:
    """Check a Chat Completions request body; return it unchanged. Raises InvalidRequest whose message
    starts with the path of the offending field."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    check_depth(body)
    model = want_str(required(body, "model", ""), "model", max_chars=MAX_NAME_CHARS)
    if not model.strip():
        fail("model", "String should have at least 1 character")
    msgs = want_list(required(body, "messages", ""), "messages", min_items=1)
    for i, m in enumerate(msgs):
        _message(m, join("messages", i))
    for key in ("max_tokens", "max_completion_tokens", "n"):
        optional(body, key, "", want_int, ge=1)
    optional(body, "seed", "", want_int)
    optional(body, "top_logprobs", "", want_int, ge=0)
    for key in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        optional(body, key, "", want_number)
    for key in ("stream", "parallel_tool_calls", "logprobs", "store"):
        optional(body, key, "", want_bool)
    optional(body, "stream_options", "", _stream_options)
    optional(body, "stop", "", _stop)
    for key in ("user", "reasoning_effort", "service_tier", "verbosity"):
        optional(body, key, "", want_str)
    optional(body, "response_format", "", _response_format)
    optional(body, "tools", "", _tools)
    optional(body, "tool_choice", "", _tool_choice)
    optional(body, "functions", "", _functions)
    optional(body, "function_call", "", _function_call)
    for key in ("metadata", "logit_bias", "audio", "prediction", "web_search_options"):
        optional(body, key, "", want_obj)
    optional(body, "modalities", "", want_str_list)
    return body
