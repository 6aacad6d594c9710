"""Making any record serialisable: what the request log does with a record orjson cannot write as it is
(nested too deep, unknown types, non-string keys, integers beyond 64 bits, lone surrogates, cycles)."""

from __future__ import annotations

from typing import Any

#: nesting kept in a line whose record could not be serialised as it is (the record is level 1, a request
#: body level 2; validated bodies nest at most 64 levels). Far below orjson's 254 and the recursion limit.
LOG_MAX_DEPTH = 128
#: containers and values copied from one such record at most; the rest is replaced by a marker
LOG_MAX_NODES = 200_000
DEPTH_MARKER = f"[llmproxy: dropped here, nested deeper than {LOG_MAX_DEPTH} levels]"
NODES_MARKER = f"[llmproxy: dropped here, record has more than {LOG_MAX_NODES} values]"
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # what orjson serialises


def safe_str(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - str() of a hostile object may raise anything
        return f"<unprintable {type(value).__name__}>"
    if not isinstance(text, str):
        return f"<unprintable {type(value).__name__}>"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: orjson refuses them
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def safe_scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return value
        try:
            return str(value)
        except ValueError:  # more digits than int->str allows
            return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return safe_str(value)


def make_safe(rec: Any, notes: list[str]) -> Any:
    """A copy of ``rec`` that orjson can always serialise and that every recursive walk (redaction) can
    walk: at most LOG_MAX_DEPTH levels and LOG_MAX_NODES values, string keys, JSON values only. Iterative.
    What was changed is appended to ``notes``."""
    seen = {"deep": 0, "nodes": 0, "strs": 0, "keys": 0}
    count = 0

    def convert(value: Any, depth: int) -> tuple[Any, bool]:
        """(the scalar or an empty container, whether it is a container to fill)."""
        nonlocal count
        count += 1
        if count > LOG_MAX_NODES:
            seen["nodes"] += 1
            return NODES_MARKER, False
        if isinstance(value, dict | list | tuple | set | frozenset):
            if depth > LOG_MAX_DEPTH:
                seen["deep"] += 1
                return DEPTH_MARKER, False
            return ({} if isinstance(value, dict) else []), True
        if isinstance(value, str):
            out = safe_str(value)
            seen["strs"] += out is not value
            return out, False
        out = safe_scalar(value)
        seen["strs"] += type(out) is not type(value)
        return out, False

    root, fill = convert(rec, 1)
    stack: list[tuple[Any, Any, int]] = [(rec, root, 1)] if fill else []
    while stack:
        src, dst, depth = stack.pop()
        if isinstance(src, dict):
            for k, v in list(src.items()):
                key = k if isinstance(k, str) else safe_str(k)
                if key is not k:
                    seen["keys"] += 1
                key = safe_str(key)
                val, fill = convert(v, depth + 1)
                dst[key] = val
                if fill:
                    stack.append((v, val, depth + 1))
        else:
            for v in list(src):
                val, fill = convert(v, depth + 1)
                dst.append(val)
                if fill:
                    stack.append((v, val, depth + 1))
    if seen["deep"]:
        notes.append(f"{seen['deep']} sub-tree(s) nested deeper than {LOG_MAX_DEPTH} levels replaced by a marker")
    if seen["nodes"]:
        notes.append(f"record cut after {LOG_MAX_NODES} values")
    if seen["strs"]:
        notes.append(f"{seen['strs']} value(s) JSON cannot hold written as strings")
    if seen["keys"]:
        notes.append(f"{seen['keys']} non-string key(s) written as strings")
    return root


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {safe_str(exc)[:300]}"
