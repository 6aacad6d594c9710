"""Anthropic event lists, whole: fold a stream into its Message (``assemble``), a Message into its stream
(``message_events``), and merge the text deltas of one batch (``coalesce``). Pure; no I/O."""

from __future__ import annotations

import orjson

Event = tuple[str, dict]

#: delta types whose pieces concatenate (the text field each carries)
_MERGEABLE = {"text_delta": "text", "thinking_delta": "thinking"}


def coalesce(events: list[Event]) -> list[Event]:
    """``events`` with each run of consecutive text (or thinking) deltas of one block merged into one delta.
    For events that are written to the client together (they came from one upstream read), one delta carries
    the same text as many, in one frame: the client sees the same message, the proxy encodes and writes less.
    The merged delta is a new dict: the events passed in are not changed."""
    out: list[Event] = []
    pieces: list[str] = []  # the run being merged: out[-1] is its delta, to be completed from these

    def close() -> None:
        if len(pieces) > 1:
            name, data = out[-1]
            field = _MERGEABLE[data["delta"]["type"]]
            out[-1] = (name, {**data, "delta": {**data["delta"], field: "".join(pieces)}})
        pieces.clear()

    for ev in events:
        name, data = ev
        if name == "content_block_delta":
            field = _MERGEABLE.get(data["delta"].get("type"))
            if field is not None:
                if pieces:
                    last = out[-1][1]
                    if last["index"] == data["index"] and last["delta"]["type"] == data["delta"]["type"]:
                        pieces.append(data["delta"][field])
                        continue
                    close()
                out.append(ev)
                pieces.append(data["delta"][field])
                continue
        if pieces:
            close()
        out.append(ev)
    if pieces:
        close()
    return out


def assemble(events: list[Event]) -> dict:
    """Fold an Anthropic event list into the final Message (what the SDK's accumulator does)."""
    msg: dict = {}
    partial: dict[int, list[str]] = {}
    for name, data in events:
        if name == "message_start":
            msg = dict(data["message"])
            msg["content"] = []
        elif name == "content_block_start":
            msg["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, d = msg["content"][data["index"]], data["delta"]
            if d["type"] == "text_delta":
                block["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                block["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                block["signature"] = d["signature"]
            elif d["type"] == "input_json_delta":
                partial.setdefault(data["index"], []).append(d["partial_json"])
        elif name == "content_block_stop":
            if data["index"] in partial:
                msg["content"][data["index"]]["input"] = orjson.loads("".join(partial.pop(data["index"])) or "{}")
        elif name == "message_delta":
            msg.update(data["delta"])
            msg["usage"] = {**msg.get("usage", {}), **data["usage"]}
    return msg


def message_events(msg: dict) -> list[tuple[str, dict]]:
    """A complete Anthropic Message as its event stream (blocks of any type; unknown ones start whole)."""
    usage = dict(msg.get("usage") or {})
    ev: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": {
        **msg, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})]

    def delta(i: int, d: dict) -> None:
        ev.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}))

    def start(i: int, block: dict) -> None:
        ev.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": block}))

    for i, b in enumerate(msg.get("content") or []):
        kind = b.get("type")
        if kind == "text":
            start(i, {"type": "text", "text": ""})
            if b.get("text"):
                delta(i, {"type": "text_delta", "text": b["text"]})
        elif kind == "thinking":
            start(i, {"type": "thinking", "thinking": "", "signature": ""})
            delta(i, {"type": "thinking_delta", "thinking": b.get("thinking", "")})
            delta(i, {"type": "signature_delta", "signature": b.get("signature", "")})
        elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
            start(i, {**b, "input": {}})
            delta(i, {"type": "input_json_delta", "partial_json": orjson.dumps(b.get("input", {})).decode()})
        else:  # redacted_thinking, *_tool_result, …: sent whole in their start event, as the API does
            start(i, b)
        ev.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    ev.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": msg.get("stop_reason"),
                                                                    "stop_sequence": msg.get("stop_sequence")},
                                 "usage": usage}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return ev
