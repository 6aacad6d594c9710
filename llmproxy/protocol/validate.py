"""Shared helpers for validating inbound request bodies at the edge.

Every check raises ``InvalidRequest`` with a message that starts with the dotted path of the offending
field and says what was expected, in the style of Anthropic's own API::

    messages.2.content.0.text: Input should be a valid string

Nothing here recurses over client data: the depth and JSON-schema walks use explicit stacks, so a
hostile body cannot raise ``RecursionError``.

Bounds (module constants, documented here):

* ``MAX_DEPTH = 64`` — nesting levels of a whole request body (the body object is level 1). Real Claude
  Code requests nest at most 13 levels (tool schemas at most 10 below ``input_schema``). The bound keeps
  every later recursive walk (schema cleaning, redaction, conversion) far below Python's recursion limit
  and every re-serialisation below orjson's limit of 254 levels, with room for the few levels a
  conversion adds (e.g. ``tools.N.function.parameters``).
* ``MAX_NAME_CHARS = 256`` — identifiers the proxy echoes into logs and error messages (``model``, the
  ``/api/route`` ``profile``).
* Body size as a whole is bounded by the server (``server.max_body_bytes``, 32 MiB by default), which is
  what bounds string and array sizes; no further per-string bound is needed to protect the proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from llmproxy.errors import InvalidRequest

MAX_DEPTH = 64
MAX_NAME_CHARS = 256
_PATH_PART_CHARS = 40  # an object key longer than this is shortened in error paths

_MISSING = object()


# ------------------------------------------------------------------------------------------------ paths

def join(path: str, key: str | int) -> str:
    part = str(key)
    if len(part) > _PATH_PART_CHARS:
        part = part[:_PATH_PART_CHARS] + "…"
    return f"{path}.{part}" if path else part


def join_all(path: str, parts: list) -> str:
    """``path`` extended by many keys; a path of more than 80 keys is shown as its first 60 and last 10."""
    if len(parts) > 80:
        parts = [*parts[:60], "…", *parts[-10:]]
    out = [path] if path else []
    for part in parts:
        part = str(part)
        out.append(part[:_PATH_PART_CHARS] + "…" if len(part) > _PATH_PART_CHARS else part)
    return ".".join(out)


def fail(path: str, message: str) -> NoReturn:
    raise InvalidRequest(f"{path}: {message}" if path else message)


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# ------------------------------------------------------------------------------------------ type checks

def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def want_obj(v: Any, path: str) -> dict:
    if not isinstance(v, dict):
        fail(path, "Input should be an object")
    return v


def want_list(v: Any, path: str, *, min_items: int = 0) -> list:
    if not isinstance(v, list):
        fail(path, "Input should be a valid list")
    if len(v) < min_items:
        fail(path, f"List should have at least {min_items} item{'s' if min_items > 1 else ''}")
    return v


def want_str(v: Any, path: str, *, min_chars: int = 0, max_chars: int | None = None) -> str:
    if not isinstance(v, str):
        fail(path, "Input should be a valid string")
    if len(v) < min_chars:
        fail(path, f"String should have at least {min_chars} character{'s' if min_chars > 1 else ''}")
    if max_chars is not None and len(v) > max_chars:
        fail(path, f"String should have at most {max_chars} characters")
    return v


def want_int(v: Any, path: str, *, ge: int | None = None) -> int:
    if not is_int(v):
        fail(path, "Input should be a valid integer")
    if ge is not None and v < ge:
        fail(path, f"Input should be greater than or equal to {ge}")
    return v


def want_number(v: Any, path: str) -> float:
    if not is_number(v):
        fail(path, "Input should be a valid number")
    return v


def want_bool(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        fail(path, "Input should be a valid boolean")
    return v


def want_str_list(v: Any, path: str) -> list:
    for i, s in enumerate(want_list(v, path)):
        want_str(s, join(path, i))
    return v


def want_one_of(v: Any, path: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if v not in allowed:
        names = [repr(a) for a in allowed]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        fail(path, f"Input should be {listed}")
    return v


def required(obj: dict, key: str, path: str) -> Any:
    if key not in obj:
        fail(join(path, key), "Field required")
    return obj[key]


def optional(obj: dict, key: str, path: str, check: Callable[..., Any], *, nullable: bool = True,
             **kw: Any) -> Any:
    """Run ``check(value, path, **kw)`` on ``obj[key]`` when present. An optional field that is null counts
    as absent (every reader downstream treats the two alike) unless ``nullable=False``."""
    val = obj.get(key, _MISSING)
    if val is _MISSING or (nullable and val is None):
        return None
    return check(val, join(path, key), **kw)


# ------------------------------------------------------------------------------------------------ depth

def check_depth(value: Any, limit: int = MAX_DEPTH, path: str = "") -> None:
    """Raise InvalidRequest naming the first container nested deeper than ``limit`` levels (``value``
    itself is level 1). Iterative: safe for any nesting orjson can parse."""
    over = first_too_deep(value, limit)
    if over is not None:
        fail(join_all(path, over), f"Input is nested too deeply (at most {limit} levels are accepted)")


def first_too_deep(value: Any, limit: int) -> list | None:
    """The path (list of keys) of the first container deeper than ``limit`` levels, or None.

    Every request passes here, nearly all of them within the limit: one level at a time, holding nothing but
    the containers of the level (half the time of a walk that remembers each container's path, 14 µs on a
    Claude Code body); only a value that is too deep is walked again to name where."""
    if not isinstance(value, (dict, list)):
        return None
    level, depth = [value], 1
    while level:
        if depth > limit:
            return _path_too_deep(value, limit)
        below = []
        for node in level:
            for v in (node.values() if isinstance(node, dict) else node):
                if isinstance(v, (dict, list)):
                    below.append(v)
        level, depth = below, depth + 1
    return None


def _path_too_deep(value: dict | list, limit: int) -> list | None:
    """``first_too_deep``'s path, for a value known to be too deep."""
    # containers only (scalars cost nothing); each remembers its parent so a path is built only on failure
    links: list[tuple[int, Any]] = [(-1, None)]  # (parent link index, key)
    stack: list[tuple[Any, int, int]] = [(value, 1, 0)]  # (container, depth, link index)
    while stack:
        node, depth, link = stack.pop()
        if depth > limit:
            parts = []
            while link > 0:
                link, key = links[link]
                parts.append(key)
            return parts[::-1]
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            if isinstance(v, dict | list):
                links.append((link, k))
                stack.append((v, depth + 1, len(links) - 1))
    return None


# --------------------------------------------------------------------------------------- JSON schemas

_SUBSCHEMA = ("additionalProperties", "additionalItems", "not", "if", "then", "else", "contains",
              "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contentSchema")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_GROUPS = (*_SUBSCHEMA_LISTS, *_SUBSCHEMA_MAPS, "items")  # several sub-schemas, or (items) one


class _Wrong(Exception):
    """A schema node is wrong at ``keys`` (below the node): ``check_schema`` spells out the path."""

    def __init__(self, message: str, *keys: Any):
        super().__init__(message)
        self.message, self.keys = message, keys


def _check_keywords(node: dict) -> None:
    """The node's own structural keywords: ``type``, ``enum``, ``required``."""
    if "type" in node:
        t = node["type"]
        if isinstance(t, list):
            for i, item in enumerate(t):
                if not isinstance(item, str):
                    raise _Wrong("Input should be a valid string", "type", i)
        elif not isinstance(t, str):
            raise _Wrong("Input should be a valid string or a list of strings", "type")
    if "enum" in node and not isinstance(node["enum"], list):
        raise _Wrong("Input should be a valid list", "enum")
    req = node.get("required")
    if req is not None and not isinstance(req, bool):  # draft 3 allows a boolean
        if not isinstance(req, list):
            raise _Wrong("Input should be a valid list", "required")
        for i, item in enumerate(req):
            if not isinstance(item, str):
                raise _Wrong("Input should be a valid string", "required", i)


def _push_subschemas(node: dict, link: int, links: list[tuple[int, Any]], stack: list[tuple[Any, int]]) -> None:
    """Each sub-schema of the node onto ``stack``, with its keys below the node onto ``links`` (a keyword, then
    an index or a name for a list or an object of sub-schemas); checks that such a keyword has a list or an
    object."""
    for key in _SUBSCHEMA:
        if key in node:
            links.append((link, key))
            stack.append((node[key], len(links) - 1))
    for key in _SUBSCHEMA_GROUPS:
        if key not in node:
            continue
        subs = node[key]
        if key == "items":
            if not isinstance(subs, list):  # one schema (a list is the draft 4 tuple form)
                links.append((link, key))
                stack.append((subs, len(links) - 1))
                continue
            pairs: Iterable = enumerate(subs)
        elif key in _SUBSCHEMA_LISTS:
            if not isinstance(subs, list):
                raise _Wrong("Input should be a valid list", key)
            pairs = enumerate(subs)
        else:
            if not isinstance(subs, dict):
                raise _Wrong("Input should be an object", key)
            pairs = subs.items()
        links.append((link, key))
        parent = len(links) - 1
        for name, sub in pairs:
            links.append((parent, name))
            stack.append((sub, len(links) - 1))


def check_schema(schema: Any, path: str) -> dict:
    """A JSON Schema (an object) whose structural keywords have the types the meta-schema requires:
    ``type`` a string or list of strings, ``enum`` a list, ``required`` a list of strings, and
    sub-schemas (``properties`` values, ``items``, ``anyOf`` …) objects or booleans. Iterative, and the
    path of a node is only spelled out when that node is wrong."""
    want_obj(schema, path)
    links: list[tuple[int, Any]] = [(-1, None)]  # (parent link index, key) — the path, built on failure

    def where(link: int, *more: Any) -> str:
        parts: list[Any] = []
        while link > 0:
            link, key = links[link]
            parts.append(key)
        return join_all(path, [*reversed(parts), *more])

    stack: list[tuple[Any, int]] = [(schema, 0)]
    while stack:
        node, link = stack.pop()
        if isinstance(node, bool):
            continue
        if not isinstance(node, dict):
            fail(where(link), "Input should be a JSON schema (an object or a boolean)")
        try:
            _check_keywords(node)
            _push_subschemas(node, link, links, stack)
        except _Wrong as wrong:
            fail(where(link, *wrong.keys), wrong.message)
    return schema
