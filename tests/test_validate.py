"""Validation at the edge: every wrong input is a 400 naming its field, and whatever validation lets
through, conversion, routing and serialisation take without raising.

The table rows are the fuzzer's findings (one row per bad input, with the path the message must start
with). The properties mutate a realistic Claude Code-shaped request (and an OpenAI one) at any path, with
wrong-typed values, nulls, deep nesting and huge strings: ``validate_*`` either raises InvalidRequest or
returns, and if it returns, the pure downstream functions must not raise.
"""

from __future__ import annotations

import copy
import inspect
import os

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmproxy import config, routing
from llmproxy.config import ModelSpec, Quirks
from llmproxy.convert.inbound import to_anthropic
from llmproxy.convert.request import to_openai
from llmproxy.convert.thinking import strip_foreign_thinking
from llmproxy.errors import InvalidRequest, ProxyError
from llmproxy.protocol import tokens
from llmproxy.protocol.adapt import adapt_for_model
from llmproxy.protocol.anthropic import validate_messages, validate_route_request
from llmproxy.protocol.openai import MAX_ARGUMENTS_DEPTH, validate_chat
from llmproxy.protocol.validate import MAX_DEPTH, _path_too_deep, check_depth, check_schema, first_too_deep
from tests.routing import shapes as S

# ------------------------------------------------------------------------------ realistic requests

BILLING = "x-anthropic-billing-header: cc_version=9.9.9.fff; cc_entrypoint=cli;"
REMINDER = "<system-reminder>\nThe working tree is clean. Today is a Tuesday.\n</system-reminder>"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _string(desc: str, **kw) -> dict:
    return {"type": "string", "description": desc, **kw}


def _nested_schema() -> dict:
    """A question form: about as deep as Claude Code's deepest tool schema (10 levels)."""
    option = {"type": "object", "properties": {
        "label": _string("Short label"), "detail": {"type": "object", "properties": {
            "markdown": _string("Preview"), "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}},
            "additionalProperties": False}}, "required": ["label"]}
    question = {"type": "object", "properties": {
        "question": _string("The question"), "multi": {"type": "boolean", "default": False},
        "options": {"type": "array", "minItems": 2, "maxItems": 4, "items": option}}, "required": ["question"]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {"questions": {"type": "array", "items": question},
                           "answers": {"type": "object", "propertyNames": {"type": "string"},
                                       "additionalProperties": {"type": "string"}}},
            "required": ["questions"], "additionalProperties": False}


def cc_tools() -> list[dict]:
    simple = {"type": "object", "properties": {"path": _string("Absolute path", format="uri-reference"),
                                               "limit": {"type": "integer", "exclusiveMinimum": 0},
                                               "mode": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
              "required": ["path"], "additionalProperties": False}
    names = ["Agent", "Bash", "Edit", "Glob", "Grep", "Read", "Write", "WebFetch", "WebSearch", "TodoWrite",
             "NotebookEdit", "TaskCreate", "TaskGet", "TaskList", "TaskUpdate", "TaskStop", "Skill", "SendMessage",
             "CronCreate", "CronDelete", "EnterWorktree", "ExitWorktree"]
    tools = [{"name": n, "description": f"The {n} tool. Use it with care; plan and think first.",
              "input_schema": copy.deepcopy(simple)} for n in names]
    tools.append({"name": "AskUserQuestion", "description": "Ask the user", "input_schema": _nested_schema(),
                  "cache_control": {"type": "ephemeral"}})
    tools.append({"name": "mcp__files__list", "description": "MCP tool", "input_schema": {"type": "object"}})
    tools.append({"type": "web_search_20250305", "name": "web_search", "max_uses": 8})
    return tools


def claude_code_body() -> dict:
    """A main-loop Claude Code turn, in our own words: billing header and cached system blocks, 25 tools,
    a tool round trip with thinking, an image in a tool result, documents, a server tool replay."""
    return {
        "model": "claude-opus-4-8", "max_tokens": 32000, "stream": True,
        "system": [{"type": "text", "text": BILLING},
                   {"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Be brief. " * 50, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "tools": cc_tools(),
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"summary": {"type": "string"}, "files": {
                "type": "array", "items": {"type": "string"}}}, "required": ["summary"]}}},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": '{"device_id":"d1","session_id":"s1"}'},
        "stop_sequences": ["\n\nHuman:", "</answer>"],
        "top_k": 40, "service_tier": "auto", "container": "cntr_1",
        "mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "files"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": REMINDER},
                                         {"type": "text", "text": "Find the flaky test and fix it."}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Look at the CI log first.", "signature": "sig-abc"},
                {"type": "text", "text": "Reading the log."},
                {"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {"path": "/repo/ci.log", "limit": 200}},
                {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {"command": "pytest -x", "env": {
                    "A": ["1", {"deep": {"er": [True, None, 1.5]}}]}}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "FAILED test_io.py::test_timeout"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": True, "content": [
                    {"type": "text", "text": "exit 1"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}],
                 "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "The user switched to plan mode."},
            {"role": "assistant", "content": [
                {"type": "redacted_thinking", "data": "opaque-bytes"},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "pytest timeout"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
                    {"type": "web_search_result", "url": "https://docs.example", "title": "Docs",
                     "encrypted_content": "xyz"}]},
                {"type": "text", "text": "Found it.", "citations": [{"type": "web_search_result_location",
                                                                      "url": "https://docs.example"}]}]},
            {"role": "user", "content": [
                {"type": "document", "title": "spec.pdf", "source": {"type": "base64", "media_type": "application/pdf",
                                                                      "data": "JVBERi0xLjQK"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                 "context": "meeting notes", "citations": {"enabled": True}},
                {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "chunk"}]}},
                {"type": "image", "source": {"type": "url", "url": "https://img.example/a.png"}},
                {"type": "search_result", "source": "kb://1", "title": "KB", "content": [{"type": "text", "text": "hit"}]},
                {"type": "future_block_2027", "payload": {"anything": [1, 2]}},
                {"type": "text", "text": "ultrathink: now fix it", "cache_control": {"type": "ephemeral"}}]},
        ],
    }


def openai_body() -> dict:
    return {
        "model": "gpt-x", "stream": True, "stream_options": {"include_usage": True},
        "max_completion_tokens": 4000, "temperature": 0.2, "top_p": 0.9, "n": 1, "stop": ["END", "STOP"],
        "user": "u-1", "reasoning_effort": "medium", "parallel_tool_calls": False, "seed": 7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": True, "schema": {
            "type": "object", "properties": {"a": {"type": "string"}}}}},
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                    "parameters": _nested_schema()}},
                  {"type": "function", "function": {"name": "noop"}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "More rules."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG, "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://img.example/b.png"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": '{"city": "Oslo", "days": [1, 2]}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "content": [{"type": "text", "text": "It is sunny."}]},
            {"role": "user", "content": "thanks, now plan the trip"},
        ],
    }


# ------------------------------------------------------------------------------------ path helpers

def paths(value, prefix=()) -> list[tuple]:
    """Every path in ``value`` (to containers and leaves), iteratively."""
    out, stack = [], [(value, prefix)]
    while stack:
        node, p = stack.pop()
        if p:
            out.append(p)
        if isinstance(node, dict):
            stack += [(v, (*p, k)) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, (*p, i)) for i, v in enumerate(node)]
    return sorted(out, key=lambda x: [str(k) for k in x])


def get_at(body, path):
    for k in path:
        body = body[k]
    return body


def set_at(body, path, value):
    get_at(body, path[:-1])[path[-1]] = value
    return body


def delete_at(body, path):
    parent = get_at(body, path[:-1])
    del parent[path[-1]]
    return body


def dotted(path) -> str:
    return ".".join(str(p) for p in path)


def nested(levels: int, kind: str = "list"):
    value: object = "leaf"
    for _ in range(levels):
        value = [value] if kind == "list" else {"k": value}
    return value


HUGE = "h" * 1_000_000
DEEP = nested(400)


# ------------------------------------------------------------------------------------ table: 400s

def _cc(path, value):
    return set_at(claude_code_body(), path, value)


def _cc_del(path):
    return delete_at(claude_code_body(), path)


ANTHROPIC_ROWS = [
    # (id, body, expected path prefix of the message)
    ("text null", _cc(("messages", 0, "content", 1, "text"), None), "messages.0.content.1.text: Input should be a valid string"),
    ("system text [null]", _cc(("system", 1, "text"), [None]), "system.1.text: Input should be a valid string"),
    ("system number", _cc(("system",), 5), "system: Input should be a valid string or a list"),
    ("system block not object", _cc(("system", 0), "text"), "system.0: Input should be an object"),
    ("thinking on", _cc(("thinking",), "on"), "thinking: Input should be an object"),
    ("budget x", _cc(("thinking", "budget_tokens"), "x"), "thinking.budget_tokens: Input should be a valid integer"),
    ("budget missing", _cc_del(("thinking", "budget_tokens")), "thinking.budget_tokens: Field required"),
    ("thinking type", _cc(("thinking", "type"), 3), "thinking.type: Input should be a valid string"),
    ("output_config x", _cc(("output_config",), "x"), "output_config: Input should be an object"),
    ("effort list", _cc(("output_config", "effort"), ["high"]), "output_config.effort: Input should be a valid string"),
    ("format string", _cc(("output_config", "format"), "json"), "output_config.format: Input should be an object"),
    ("format schema list", _cc(("output_config", "format", "schema"), []), "output_config.format.schema: Input should be an object"),
    ("format schema props", _cc(("output_config", "format", "schema", "properties"), ["a"]),
     "output_config.format.schema.properties: Input should be an object"),
    ("format schema enum dict", _cc(("output_config", "format", "schema", "properties", "summary", "enum"), {"a": 1}),
     "output_config.format.schema.properties.summary.enum: Input should be a valid list"),
    ("image source data", _cc(("messages", 2, "content", 1, "content", 1, "source"), "data"),
     "messages.2.content.1.content.1.source: Input should be an object"),
    ("image base64 data int", _cc(("messages", 2, "content", 1, "content", 1, "source", "data"), 5),
     "messages.2.content.1.content.1.source.data: Input should be a valid string"),
    ("image url null", _cc(("messages", 5, "content", 3, "source", "url"), None), "messages.5.content.3.source.url"),
    ("image source type", _cc(("messages", 5, "content", 3, "source", "type"), None), "messages.5.content.3.source.type"),
    ("tool_use input list", _cc(("messages", 1, "content", 2, "input"), [1]),
     "messages.1.content.2.input: Input should be an object"),
    ("tool_use input string", _cc(("messages", 1, "content", 2, "input"), '{"a":1}'), "messages.1.content.2.input"),
    ("tool_use id missing", _cc_del(("messages", 1, "content", 2, "id")), "messages.1.content.2.id: Field required"),
    ("tool_use name int", _cc(("messages", 1, "content", 3, "name"), 1), "messages.1.content.3.name"),
    ("tool_result content int", _cc(("messages", 2, "content", 0, "content"), 7),
     "messages.2.content.0.content: Input should be a valid string or a list"),
    ("tool_result content [null]", _cc(("messages", 2, "content", 0, "content"), [None]),
     "messages.2.content.0.content.0: Input should be an object"),
    ("tool_result is_error str", _cc(("messages", 2, "content", 1, "is_error"), "false"),
     "messages.2.content.1.is_error: Input should be a valid boolean"),
    ("tool_result id", _cc(("messages", 2, "content", 0, "tool_use_id"), 12), "messages.2.content.0.tool_use_id"),
    ("thinking block text", _cc(("messages", 1, "content", 0, "thinking"), {"t": 1}), "messages.1.content.0.thinking"),
    ("redacted data", _cc(("messages", 4, "content", 0, "data"), None), "messages.4.content.0.data"),
    ("server result id", _cc(("messages", 4, "content", 2, "tool_use_id"), []), "messages.4.content.2.tool_use_id"),
    ("document text data", _cc(("messages", 5, "content", 1, "source", "data"), ["x"]), "messages.5.content.1.source.data"),
    ("document title", _cc(("messages", 5, "content", 0, "title"), 5), "messages.5.content.0.title"),
    ("document content blocks", _cc(("messages", 5, "content", 2, "source", "content"), 5),
     "messages.5.content.2.source.content"),
    ("search_result content", _cc(("messages", 5, "content", 4, "content"), "hit"), "messages.5.content.4.content"),
    ("block without type", _cc(("messages", 5, "content", 5), {"payload": 1}), "messages.5.content.5.type: Field required"),
    ("block type int", _cc(("messages", 5, "content", 5, "type"), 5), "messages.5.content.5.type"),
    ("cache_control string", _cc(("messages", 5, "content", 6, "cache_control"), "ephemeral"),
     "messages.5.content.6.cache_control: Input should be an object"),
    ("system message image", _cc(("messages", 3, "content"), [{"type": "image", "source": {"type": "url", "url": "u"}}]),
     "messages.3.content.0.type: Input should be 'text'"),
    ("role robot", _cc(("messages", 0, "role"), "robot"), "messages.0.role: Input should be 'user', 'assistant'"),
    ("role list", _cc(("messages", 0, "role"), ["user"]), "messages.0.role"),
    ("content missing", _cc_del(("messages", 0, "content")), "messages.0.content: Field required"),
    ("message not object", _cc(("messages", 0), "hi"), "messages.0: Input should be an object"),
    ("metadata list", _cc(("metadata",), ["u"]), "metadata: Input should be an object"),
    ("user_id int", _cc(("metadata", "user_id"), 5), "metadata.user_id: Input should be a valid string"),
    ("tool_choice string", _cc(("tool_choice",), "auto"), "tool_choice: Input should be an object"),
    ("tool_choice tool no name", _cc(("tool_choice",), {"type": "tool"}), "tool_choice.name: Field required"),
    ("tool_choice parallel", _cc(("tool_choice", "disable_parallel_tool_use"), "yes"),
     "tool_choice.disable_parallel_tool_use"),
    ("tools dict", _cc(("tools",), {"name": "x"}), "tools: Input should be a valid list"),
    ("tool name null", _cc(("tools", 3, "name"), None), "tools.3.name: Input should be a valid string"),
    ("tool schema missing", _cc_del(("tools", 3, "input_schema")), "tools.3.input_schema: Field required"),
    ("tool schema string", _cc(("tools", 3, "input_schema"), "object"), "tools.3.input_schema: Input should be an object"),
    ("tool schema type int", _cc(("tools", 22, "input_schema", "properties", "questions", "type"), 5),
     "tools.22.input_schema.properties.questions.type"),
    ("tool schema required", _cc(("tools", 3, "input_schema", "required"), "path"), "tools.3.input_schema.required"),
    ("tool description", _cc(("tools", 0, "description"), ["d"]), "tools.0.description"),
    ("tool type int", _cc(("tools", 24, "type"), 2025), "tools.24.type"),
    ("deep tool schema", _cc(("tools", 3, "input_schema", "properties", "path"), nested(300, "dict")),
     "tools.3.input_schema.properties.path.k.k"),
    ("deep tool input", _cc(("messages", 1, "content", 2, "input"), {"a": nested(300)}), "messages.1.content.2.input.a.0.0"),
    ("deep unknown key", _cc(("future_key",), DEEP), "future_key.0.0.0"),
    ("stop_sequences str", _cc(("stop_sequences",), "STOP"), "stop_sequences: Input should be a valid list"),
    ("stop_sequences [1]", _cc(("stop_sequences",), [1]), "stop_sequences.0: Input should be a valid string"),
    ("temperature str", _cc(("temperature",), "0.5"), "temperature: Input should be a valid number"),
    ("top_p bool", _cc(("top_p",), True), "top_p: Input should be a valid number"),
    ("top_k float", _cc(("top_k",), 1.5), "top_k: Input should be a valid integer"),
    ("stream str", _cc(("stream",), "yes"), "stream: Input should be a valid boolean"),
    ("max_tokens float", _cc(("max_tokens",), 1e23), "max_tokens: Input should be a valid integer"),
    ("max_tokens zero", _cc(("max_tokens",), 0), "max_tokens: Input should be greater than or equal to 1"),
    ("max_tokens bool", _cc(("max_tokens",), True), "max_tokens: Input should be a valid integer"),
    ("model huge", _cc(("model",), HUGE), "model: String should have at most"),
    ("model blank", _cc(("model",), "  "), "model: String should have at least 1 character"),
    ("model missing", _cc_del(("model",)), "model: Field required"),
    ("messages empty", _cc(("messages",), []), "messages: List should have at least 1 item"),
    ("service_tier", _cc(("service_tier",), 1), "service_tier"),
    ("context_management", _cc(("context_management",), "auto"), "context_management: Input should be an object"),
    ("context_management edits", _cc(("context_management", "edits"), [5]), "context_management.edits.0"),
    ("container", _cc(("container",), 5), "container: Input should be a valid string or an object"),
    ("mcp_servers", _cc(("mcp_servers",), {"a": 1}), "mcp_servers: Input should be a valid list"),
    ("citations", _cc(("messages", 4, "content", 3, "citations"), "all"), "messages.4.content.3.citations"),
]


@pytest.mark.parametrize("name,body,prefix", ANTHROPIC_ROWS, ids=[r[0] for r in ANTHROPIC_ROWS])
def test_bad_anthropic_input_is_400_naming_the_field(name, body, prefix):
    with pytest.raises(InvalidRequest) as exc:
        validate_messages(body)
    assert exc.value.status == 400
    assert exc.value.message.startswith(prefix), exc.value.message


def _oa(path, value):
    return set_at(openai_body(), path, value)


def _oa_del(path):
    return delete_at(openai_body(), path)


OPENAI_ROWS = [
    ("stream_options 5", _oa(("stream_options",), 5), "stream_options: Input should be an object"),
    ("include_usage str", _oa(("stream_options", "include_usage"), "yes"), "stream_options.include_usage"),
    ("stop 5", _oa(("stop",), 5), "stop: Input should be a valid string or a list of strings"),
    ("stop [5]", _oa(("stop",), [5]), "stop.0: Input should be a valid string"),
    ("model null", _oa(("model",), None), "model: Input should be a valid string"),
    ("messages dict", _oa(("messages",), {}), "messages: Input should be a valid list"),
    ("messages empty", _oa(("messages",), []), "messages: List should have at least 1 item"),
    ("role function", _oa(("messages", 0, "role"), "function"), "messages.0.role: Input should be 'system'"),
    ("user content null", _oa(("messages", 2, "content"), None), "messages.2.content: Input should be a valid string or a list"),
    ("user part null", _oa(("messages", 2, "content", 0), None), "messages.2.content.0: Input should be an object"),
    ("user part type", _oa(("messages", 2, "content", 0, "type"), "video"), "messages.2.content.0.type: Input should be"),
    ("text part text", _oa(("messages", 2, "content", 0, "text"), 5), "messages.2.content.0.text"),
    ("image_url int", _oa(("messages", 2, "content", 1, "image_url"), 5), "messages.2.content.1.image_url: Input should be an object"),
    ("image_url url", _oa(("messages", 2, "content", 1, "image_url", "url"), None), "messages.2.content.1.image_url.url"),
    ("file part", _oa(("messages", 2, "content", 3, "file"), "a.pdf"), "messages.2.content.3.file"),
    ("system parts image", _oa(("messages", 1, "content", 0, "type"), "image_url"), "messages.1.content.0.type"),
    ("tool_calls dict", _oa(("messages", 3, "tool_calls"), {"id": 1}), "messages.3.tool_calls: Input should be a valid list"),
    ("tool_call function str", _oa(("messages", 3, "tool_calls", 0, "function"), "f"), "messages.3.tool_calls.0.function"),
    ("tool_call name", _oa(("messages", 3, "tool_calls", 0, "function", "name"), None),
     "messages.3.tool_calls.0.function.name"),
    ("arguments int", _oa(("messages", 3, "tool_calls", 0, "function", "arguments"), 5),
     "messages.3.tool_calls.0.function.arguments: Input should be a valid string"),
    ("arguments not JSON", _oa(("messages", 3, "tool_calls", 0, "function", "arguments"), "{oops"),
     "messages.3.tool_calls.0.function.arguments: Input should be a JSON string"),
    ("arguments deep", _oa(("messages", 3, "tool_calls", 0, "function", "arguments"), "[" * 200 + "]" * 200),
     "messages.3.tool_calls.0.function.arguments.0.0"),
    ("tool_call id", _oa(("messages", 3, "tool_calls", 0, "id"), 5), "messages.3.tool_calls.0.id"),
    ("tool_call_id missing", _oa_del(("messages", 4, "tool_call_id")), "messages.4.tool_call_id: Field required"),
    ("tool content dict", _oa(("messages", 4, "content"), {"a": 1}), "messages.4.content"),
    ("assistant content int", _oa(("messages", 5, "content"), 5), "messages.5.content"),
    ("max_tokens str", _oa(("max_completion_tokens",), "100"), "max_completion_tokens: Input should be a valid integer"),
    ("max_tokens 0", _oa(("max_tokens",), 0), "max_tokens: Input should be greater than or equal to 1"),
    ("n str", _oa(("n",), "1"), "n: Input should be a valid integer"),
    ("temperature list", _oa(("temperature",), [1]), "temperature: Input should be a valid number"),
    ("stream str", _oa(("stream",), "true"), "stream: Input should be a valid boolean"),
    ("reasoning_effort", _oa(("reasoning_effort",), ["high"]), "reasoning_effort: Input should be a valid string"),
    ("response_format str", _oa(("response_format",), "json"), "response_format: Input should be an object"),
    ("json_schema str", _oa(("response_format", "json_schema"), "s"), "response_format.json_schema: Input should be an object"),
    ("json_schema schema", _oa(("response_format", "json_schema", "schema"), [1]), "response_format.json_schema.schema"),
    ("tools dict", _oa(("tools",), {"type": "function"}), "tools: Input should be a valid list"),
    ("tool function missing", _oa_del(("tools", 0, "function")), "tools.0.function: Field required"),
    ("tool function name", _oa(("tools", 1, "function", "name"), 5), "tools.1.function.name"),
    ("tool parameters", _oa(("tools", 0, "function", "parameters"), "object"), "tools.0.function.parameters"),
    ("tool_choice 5", _oa(("tool_choice",), 5), "tool_choice: Input should be 'none', 'auto', 'required' or an object"),
    ("tool_choice str", _oa(("tool_choice",), "sometimes"), "tool_choice: Input should be 'none'"),
    ("tool_choice function str", _oa(("tool_choice", "function"), "f"), "tool_choice.function: Input should be an object"),
    ("tool_choice name", _oa(("tool_choice", "function", "name"), [None]), "tool_choice.function.name"),
    ("parallel_tool_calls", _oa(("parallel_tool_calls",), "no"), "parallel_tool_calls"),
    ("user int", _oa(("user",), 5), "user: Input should be a valid string"),
    ("functions", _oa(("functions",), [{"name": 5}]), "functions.0.name"),
    ("deep unknown", _oa(("extra",), DEEP), "extra.0.0"),
]


@pytest.mark.parametrize("name,body,prefix", OPENAI_ROWS, ids=[r[0] for r in OPENAI_ROWS])
def test_bad_openai_input_is_400_naming_the_field(name, body, prefix):
    with pytest.raises(InvalidRequest) as exc:
        validate_chat(body)
    assert exc.value.status == 400
    assert exc.value.message.startswith(prefix), exc.value.message


ROUTE_ROWS = [
    ("profile [null]", {"text": "hi", "profile": [None]}, "profile: Input should be a valid string"),
    ("profile int", {"text": "hi", "profile": 5}, "profile: Input should be a valid string"),
    ("profile huge", {"text": "hi", "profile": HUGE}, "profile: String should have at most"),
    ("text missing", {"profile": "fast"}, "text: Field required"),
    ("text null", {"text": None}, "text: Input should be a valid string"),
    ("text list", {"text": ["a"]}, "text: Input should be a valid string"),
    ("not an object", [1, 2], "request body must be a JSON object"),
    ("deep", {"text": "a", "x": DEEP}, "x.0.0"),
    ("full request checked", {"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ("full request profile", {"model": "m", "profile": {}, "messages": []}, "profile"),
]


@pytest.mark.parametrize("name,data,prefix", ROUTE_ROWS, ids=[r[0] for r in ROUTE_ROWS])
def test_bad_route_request_is_400_naming_the_field(name, data, prefix):
    with pytest.raises(InvalidRequest) as exc:
        validate_route_request(data)
    assert exc.value.status == 400
    assert exc.value.message.startswith(prefix), exc.value.message


# ----------------------------------------------------------------------------- what must pass

def test_good_requests_pass_unchanged():
    body = claude_code_body()
    assert validate_messages(body) is body and body == claude_code_body()
    oa = openai_body()
    assert validate_chat(oa) is oa
    assert validate_messages(to_anthropic(oa))  # the converted form is a valid Anthropic request
    for text in ({"text": "plan it"}, {"text": "x", "profile": "fast"}, {"text": "x", "profile": None}):
        assert validate_route_request(text) is text
    assert validate_route_request({"model": "m", "messages": []})  # count_tokens rules: no max_tokens needed


@pytest.mark.parametrize("body", [
    S.main_turn("plan the design"), S.tool_followup("x"), S.title_request("t"), S.webfetch_summary(),
    S.subagent_request("explore")[0], S.compaction_request(), S.web_search_request("q"), S.image_in_tool_result("x"),
    S.slash_command_turn("/plan x"), S.post_compaction_turn("go on"), S.main_turn("x", trailing_system="ultrathink"),
])
def test_claude_code_shapes_pass(body):
    assert validate_messages(body) is body


@pytest.mark.parametrize("body", [S.count_tokens_context(), S.count_tokens_section("## Tools")])
def test_count_tokens_shapes_pass(body):
    assert validate_messages(body, count_tokens=True) is body


def test_unknown_keys_and_block_types_are_carried_and_nulls_mean_absent():
    body = claude_code_body()
    body["future_top_level"] = {"x": [1, {"y": None}]}
    body["messages"][0]["content"].append({"type": "brand_new_block", "whatever": [None]})
    body["messages"][0]["future_message_key"] = 1
    body["tools"][0]["defer_loading"] = True
    for key in ("system", "tools", "tool_choice", "thinking", "output_config", "metadata", "stop_sequences",
                "temperature", "top_k", "stream", "container", "mcp_servers", "context_management"):
        body[key] = None
    assert validate_messages(body) is body
    downstream_anthropic(body)


def test_depth_bound_is_exact_and_iterative():
    assert MAX_DEPTH < 254 // 2  # room below orjson's limit even after a conversion wraps a value
    at_limit = {"a": nested(MAX_DEPTH - 1)}  # the body is level 1, the innermost list level MAX_DEPTH
    check_depth(at_limit)
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        check_depth({"a": nested(MAX_DEPTH)})
    assert first_too_deep(nested(200_000), MAX_DEPTH) is not None  # no RecursionError
    schema: dict = {"type": 5}
    for _ in range(200_000):
        schema = {"items": schema}
    with pytest.raises(InvalidRequest, match=r"^s\.items\.items\..*\.type: Input should be a valid string"):
        check_schema(schema, "s")  # the schema walk is iterative too


@settings(max_examples=500, deadline=None)
@given(st.recursive(st.none() | st.integers(), lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=40), st.integers(1, 8))
def test_the_level_pass_finds_what_the_path_walk_finds(value, limit):
    """``first_too_deep`` measures a level at a time and walks again only to name the place: the same
    answer, and the same path, as the walk that remembers every container's path."""
    assert first_too_deep(value, limit) == _path_too_deep(value, limit) if isinstance(value, dict | list) \
        else first_too_deep(value, limit) is None


def test_real_tool_schema_depth_is_far_below_the_bound():
    body = claude_code_body()
    assert first_too_deep(body, 16) is None  # our realistic body; real Claude Code requests nest 13 levels
    assert first_too_deep(body, 12) is not None


def test_arguments_depth_fits_the_converted_body():
    args = orjson.dumps(nested(MAX_ARGUMENTS_DEPTH - 1)).decode()
    oa = openai_body()
    oa["messages"][3]["tool_calls"][0]["function"]["arguments"] = orjson.dumps({"a": orjson.loads(args)}).decode()
    validate_chat(oa)
    validate_messages(to_anthropic(oa))


# -------------------------------------------------------------------------- downstream (pure) code

CFG, _problems = config.load(strict=False)
PS = routing.compile_profiles(CFG)
QUIRKS = [Quirks(),
          Quirks(reasoning="openrouter", cache_control=True, strict_schema=True, pdf=True, top_k=True,
                 structured_output="json_object", max_tokens_cap=100, reasoning_in_history=True),
          Quirks(reasoning="reasoning_effort", structured_output="none", max_tokens_field="max_completion_tokens")]
SPECS = [None, ModelSpec(id="m"), ModelSpec(id="m", thinking=True, max_output=1000),
         ModelSpec(id="m", thinking=True, adaptive_thinking=True, effort=True)]
_TO_OPENAI_IMAGES = "images" in inspect.signature(to_openai).parameters


def downstream_anthropic(body: dict) -> None:
    """Everything pure the proxy does with a validated Anthropic body. Must not raise (a ProxyError under
    500 is a proper client error, e.g. an override naming an unknown model)."""
    raw = orjson.dumps(body)
    assert tokens.estimate(body, len(raw)) >= 1
    for prof in PS.values():
        for endpoint in ("messages", "count_tokens"):
            try:
                d = routing.decide(body, prof, CFG, PS, headers={}, endpoint=endpoint)
            except ProxyError as exc:
                assert exc.status < 500, exc
                continue
            orjson.dumps(d.to_dict())
    for spec in SPECS:
        adapted = strip_foreign_thinking(adapt_for_model(body, "target-model", spec))
        orjson.dumps(adapted)
        for q in QUIRKS:
            variants = [{"images": True}, {"images": False}] if _TO_OPENAI_IMAGES else [{}]
            for kw in variants:
                try:
                    out = to_openai(adapted, model="m", provider="p", quirks=q,
                                    max_output=spec.max_output if spec else None, **kw)
                except InvalidRequest:
                    continue
                orjson.dumps(out)
    _simulator(body)


def _simulator(body: dict) -> None:
    from llmproxy.providers import simulator

    fmt = (body.get("output_config") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        orjson.dumps(simulator.schema_instance(fmt["schema"], "label"))
    simulator.shape_output("some answer text here", int(body.get("max_tokens") or 4096),
                           list(body.get("stop_sequences") or []))


def downstream_openai(oa: dict) -> None:
    try:
        body = to_anthropic(oa)
    except InvalidRequest:
        return  # e.g. n != 1, an input_audio part: a clean 400 from the converter
    validate_messages(body)  # what validate_chat accepts converts to a valid Anthropic request
    downstream_anthropic(body)


def test_downstream_takes_the_realistic_bodies():
    downstream_anthropic(claude_code_body())
    downstream_openai(openai_body())


# ---------------------------------------------------------------------------------- properties

WRONG = [None, 0, -1, 1.5, True, False, "", "x", "on", "data", [], [None], [1, "a"], {}, {"type": None},
         {"type": 5}, {"type": "text"}, 2 ** 64 - 1, -(2 ** 63), 1e300, -(10 ** 6), "\u0000\u202e", "<system-reminder>",
         "profile:nope", "anthropic,nope", "x,y"]
# integers as orjson parses them (beyond 64 bits it gives floats)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1), st.floats(allow_nan=False,
                      allow_infinity=False), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=12)


KINDS = ("wrong", "wrong", "json", "delete", "deep", "at_limit", "over_limit", "huge", "extra_key", "wrap")
#: mutations a valid request often survives (nulls, any JSON where the proxy only carries, nesting right at
#: the bound, huge strings): more of them reach the downstream code
GENTLE = ("null", "json", "at_limit", "huge", "extra_key", "delete")


@st.composite
def mutation(draw, base: dict, max_mutations: int = 3, kinds: tuple[str, ...] = KINDS):
    """``base`` (a fresh copy) with 1-3 mutations at random paths; returns (body, what was done). With
    ``max_mutations=1`` what was done is (kind, path)."""
    body = copy.deepcopy(base)
    done = []
    for _ in range(draw(st.integers(1, max_mutations))):
        live = paths(body)
        if not live:
            break
        path = draw(st.sampled_from(live))
        kind = draw(st.sampled_from(kinds))
        if kind == "delete":
            delete_at(body, path)
        elif kind == "extra_key":
            target = get_at(body, path)
            if isinstance(target, dict):
                target[draw(st.sampled_from(["type", "text", "content", "source", "input", "zz_new"]))] = \
                    copy.deepcopy(draw(st.one_of(st.sampled_from(WRONG), json_value)))
            else:
                set_at(body, path, copy.deepcopy(draw(st.sampled_from(WRONG))))
        elif kind == "wrap":
            set_at(body, path, [get_at(body, path)])
        else:
            room = MAX_DEPTH - len(path)  # containers that still fit below this path
            if kind == "wrong":
                value = copy.deepcopy(draw(st.sampled_from(WRONG)))  # later mutations may edit it
            elif kind == "null":
                value = None
            elif kind == "json":
                value = draw(json_value)
            elif kind in ("deep", "huge"):
                value = nested(400) if kind == "deep" else HUGE  # fresh: later mutations may edit it
            else:
                value = nested(max(room, 0) + (kind == "over_limit"), draw(st.sampled_from(["list", "dict"])))
            set_at(body, path, value)
        done.append((kind, path))
    return body, (done[0] if max_mutations == 1 else done)


CC_BASE = claude_code_body()
OA_BASE = openai_body()
#: LLMPROXY_PROPERTY_EXAMPLES=5000 for a long run
FAST = settings(max_examples=int(os.environ.get("LLMPROXY_PROPERTY_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])


@FAST
@given(mutation(CC_BASE), st.booleans())
def test_mutated_claude_code_request_is_rejected_or_safe_downstream(case, count_tokens):
    body, _what = case
    try:
        validate_messages(body, count_tokens=count_tokens)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        return
    downstream_anthropic(body)


@FAST
@given(mutation(CC_BASE, kinds=GENTLE), st.booleans())
def test_gently_mutated_claude_code_request_is_rejected_or_safe_downstream(case, count_tokens):
    test_mutated_claude_code_request_is_rejected_or_safe_downstream.hypothesis.inner_test(case, count_tokens)


@FAST
@given(mutation(OA_BASE, kinds=GENTLE))
def test_gently_mutated_openai_request_is_rejected_or_safe_downstream(case):
    test_mutated_openai_request_is_rejected_or_safe_downstream.hypothesis.inner_test(case)


@FAST
@given(mutation(OA_BASE))
def test_mutated_openai_request_is_rejected_or_safe_downstream(case):
    oa, _what = case
    try:
        validate_chat(oa)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        return
    downstream_openai(oa)


@settings(max_examples=200, deadline=None)
@given(json_value)
def test_any_json_is_rejected_or_safe(value):
    """Whole bodies that are arbitrary JSON: never anything but InvalidRequest."""
    for check in (validate_messages, validate_chat, validate_route_request):
        try:
            check(value)
        except InvalidRequest:
            pass


@FAST
@given(st.data())
def test_wrong_type_error_names_the_field(data):
    """An integer where the request had a string, list or object: either carried (the proxy does not read
    that value) or rejected with a message that starts with exactly that field's path."""
    body = copy.deepcopy(CC_BASE)
    typed = [p for p in paths(body) if isinstance(get_at(body, p), str | list | dict)]
    path = data.draw(st.sampled_from(typed))
    set_at(body, path, data.draw(st.sampled_from([5, -1, 2 ** 64 - 1])))
    try:
        validate_messages(body)
    except InvalidRequest as exc:
        assert exc.message.startswith(dotted(path) + ":"), (dotted(path), exc.message)


@FAST
@given(mutation(CC_BASE, max_mutations=1))
def test_single_mutation_error_is_located_at_the_field(case):
    """One mutation: the error names the mutated field, something inside it, or (for a change that makes
    its object a different kind, e.g. a block's type) a field of its parent object."""
    body, (what, path) = case
    try:
        validate_messages(body)
    except InvalidRequest as exc:
        where = dotted(path[:-1]) if len(path) > 1 else dotted(path)
        assert exc.message.startswith(where), (what, exc.message)


@FAST
@given(mutation(OA_BASE, max_mutations=1))
def test_single_mutation_error_is_located_at_the_field_openai(case):
    oa, (what, path) = case
    try:
        validate_chat(oa)
    except InvalidRequest as exc:
        where = dotted(path[:-1]) if len(path) > 1 else dotted(path)
        assert exc.message.startswith(where), (what, exc.message)
