"""OpenAI chat-completion chunks -> a correct Anthropic event stream, incrementally (docs/anthropic-api.md §1, §3, §6).

``feed(chunk_dict) -> [(event, data)]`` and ``finish() -> [(event, data)]``; no I/O. Guarantees:
``message_start`` once; blocks opened and closed one at a time with indexes 0, 1, 2… without gaps; a thinking
block closes (with a non-empty signature) before text or tools; each tool call becomes one ``tool_use`` block
whose ``input_json_delta`` fragments concatenate to a JSON object; exactly one ``message_delta`` then
``message_stop``.

Tool arguments are buffered per call and emitted complete (one normalised ``input_json_delta``) at the end:
a provider that streams malformed arguments would otherwise hand the client fragments that can never become
JSON (the anthropic SDK raises on those). ``stream_tool_args=True`` forwards fragments as they arrive, for
providers whose tool JSON is constrained; calls interleaved by ``index`` are then buffered while another
tool block is open.

A refusal (``delta.refusal`` / ``message.refusal``) becomes visible text and ``stop_reason: "refusal"``.
Stop sequences are enforced here too, because an upstream takes at most four of them: text that could be the
start of one is held back until it cannot; at the first match the text before it is kept, everything after is
dropped, and the message ends with ``stop_reason: "stop_sequence"`` and the matched string.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import orjson

from llmproxy.convert.chunks import (
    map_stop,
    map_usage,
    normalise_arguments,
    plain_text,
    reasoning_text,
    tool_id,
)
from llmproxy.convert.events import Event, assemble
from llmproxy.convert.stops import first_stop, held_back
from llmproxy.convert.thinking import mint_signature
from llmproxy.errors import ProxyError, from_openai_error


@dataclass
class _Tool:
    id: str = ""
    name: str = ""
    args: list[str] = field(default_factory=list)
    block: int | None = None  # Anthropic index once started


class StreamConverter:
    def __init__(self, model: str, *, message_id: str | None = None, input_tokens: int = 0,
                 stop_sequences: tuple[str, ...] = (), provider: str = "upstream", stream_tool_args: bool = False):
        self.model = model
        self.stream_tool_args = stream_tool_args
        self.message_id = message_id or "msg_llmp_" + secrets.token_hex(12)
        self.input_tokens = input_tokens
        self.stop_sequences = tuple(q for q in stop_sequences if isinstance(q, str) and q)
        self.provider = provider
        self.hold = ""  # text held back: it may be the start of a stop sequence
        #: the stop sequence that ended the message here (the upstream's further output is ignored)
        self.stopped: str | None = None
        self.refused = False
        self.started = False
        self.next_index = 0
        self.open: str | None = None  # "text" | "thinking" | "tool"
        self.open_tool: int | None = None  # OpenAI index of the open tool
        self.tools: dict[int, _Tool] = {}
        self.thinking: list[str] = []
        self.finish_reason: str | None = None
        self.matched_stop: object = None
        self.usage: dict = {}
        self.ids: set[str] = set()
        self.output_chars = 0

    # -------------------------------------------------------------------------------------------- blocks
    def _start(self) -> list[Event]:
        self.started = True
        return [("message_start", {"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0}}})]

    def _close(self) -> list[Event]:
        if self.open is None:
            return []
        idx = self.next_index - 1
        ev: list[Event] = []
        if self.open == "text" and self.hold:  # no stop sequence can complete any more
            ev.append(self._text_delta(self.hold))
            self.hold = ""
        if self.open == "thinking":
            sig = mint_signature("".join(self.thinking))
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": idx,
                                               "delta": {"type": "signature_delta", "signature": sig}}))
            self.thinking = []
        ev.append(("content_block_stop", {"type": "content_block_stop", "index": idx}))
        self.open, self.open_tool = None, None
        return ev

    def _open(self, kind: str, block: dict) -> list[Event]:
        ev = self._close()
        ev.append(("content_block_start", {"type": "content_block_start", "index": self.next_index,
                                           "content_block": block}))
        self.open = kind
        self.next_index += 1
        return ev

    def _ensure(self, kind: str) -> list[Event]:
        if self.open == kind:
            return []
        block = {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": "", "signature": ""}
        return self._open(kind, block)

    def _start_tool(self, idx: int, slot: _Tool) -> list[Event]:
        slot.id = tool_id(slot.id, self.ids)
        ev = self._open("tool", {"type": "tool_use", "id": slot.id, "name": slot.name, "input": {}})
        slot.block = self.next_index - 1
        self.open_tool = idx
        if slot.args and "".join(slot.args):
            ev.append(self._json_delta(slot.block, "".join(slot.args)))
        return ev

    def _text_delta(self, text: str) -> Event:
        return ("content_block_delta", {"type": "content_block_delta", "index": self.next_index - 1,
                                        "delta": {"type": "text_delta", "text": text}})

    def _text(self, text: str) -> list[Event]:
        """Model text, with the stop sequences enforced (see the module docstring)."""
        if not self.stop_sequences:
            return self._ensure("text") + [self._text_delta(text)]
        buf = self.hold + text
        self.hold = ""
        hit = first_stop(buf, self.stop_sequences)
        if hit is not None:
            start, self.stopped = hit
            ev = self._ensure("text") + [self._text_delta(buf[:start])] if start else []
            return ev + self._close()
        keep = held_back(buf, self.stop_sequences)
        ev = self._ensure("text")
        if len(buf) > keep:
            ev.append(self._text_delta(buf[:len(buf) - keep]))
        self.hold = buf[len(buf) - keep:] if keep else ""
        return ev

    @staticmethod
    def _json_delta(index: int, fragment: str) -> Event:
        return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                        "delta": {"type": "input_json_delta", "partial_json": fragment}})

    # ------------------------------------------------------------------------------------------ feeding
    def feed_many(self, chunks: list[dict]) -> list[Event]:
        """``feed`` each chunk; a run of chunks that carry nothing but text (most of a stream) is fed as
        one text: the same message, one delta for the run. (With stop sequences, chunk by chunk: what
        is counted as output ends at the chunk that stopped the message.)"""
        if self.stop_sequences:
            return [e for chunk in chunks for e in self.feed(chunk)]
        ev: list[Event] = []
        run: list[str] = []
        for chunk in chunks:
            text = plain_text(chunk) if self.started else None
            if text is not None:
                run.append(text)
                continue
            if run:
                ev += self._plain("".join(run))
                run = []
            ev += self.feed(chunk)
        if run:
            ev += self._plain("".join(run))
        return ev

    def _plain(self, text: str) -> list[Event]:
        if not text:
            return []
        self.output_chars += len(text)
        return self._text(text)

    def feed(self, chunk: dict) -> list[Event]:
        if isinstance(chunk.get("error"), (dict, str)):
            err = chunk["error"]
            msg = err.get("message", "error") if isinstance(err, dict) else err
            code = err.get("code") if isinstance(err, dict) else None
            status = code if isinstance(code, int) and 400 <= code < 600 else 502
            raise from_openai_error(status, str(msg), code if isinstance(code, str) else None, self.provider)
        ev: list[Event] = [] if self.started else self._start()
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                self.matched_stop = choice.get("stop_reason", choice.get("matched_stop"))
            if self.stopped is not None:
                continue  # the message ended at a stop sequence: the rest is not part of it
            delta = choice.get("delta") or choice.get("message") or {}
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self.refused = True
                self.output_chars += len(refusal)
                ev += self._ensure("text")
                if self.hold:
                    ev.append(self._text_delta(self.hold))
                    self.hold = ""
                ev.append(self._text_delta(refusal))
            r = reasoning_text(delta)
            if r:
                ev += self._ensure("thinking")
                self.thinking.append(r)
                self.output_chars += len(r)
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": self.next_index - 1,
                                                   "delta": {"type": "thinking_delta", "thinking": r}}))
            c = delta.get("content")
            if isinstance(c, str) and c:
                self.output_chars += len(c)
                ev += self._text(c)
                if self.stopped is not None:
                    continue
            for tc in delta.get("tool_calls") or ():
                ev += self._tool_fragment(tc)
        return ev

    def _tool_fragment(self, tc: dict) -> list[Event]:
        idx = tc.get("index")
        if not isinstance(idx, int):  # some providers omit index: a new id means a new call
            idx = max(self.tools, default=-1)
            if idx < 0 or (tc.get("id") and self.tools[idx].id and tc["id"] != self.tools[idx].id):
                idx += 1
        slot = self.tools.setdefault(idx, _Tool())
        fn = tc.get("function") or {}
        if tc.get("id") and not slot.id:
            slot.id = tc["id"]
        if fn.get("name") and not slot.name:
            slot.name = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, dict):  # some local servers send the object itself
            args = orjson.dumps(args).decode()
        args = args if isinstance(args, str) else ""
        self.output_chars += len(args)
        if slot.block is not None and self.open_tool == idx:
            return [self._json_delta(slot.block, args)] if args else []
        slot.args.append(args)
        if self.stream_tool_args and slot.block is None and slot.name and self.open != "tool":
            return self._start_tool(idx, slot)
        return []  # buffered: emitted complete at the end

    def finish(self) -> list[Event]:
        ev: list[Event] = [] if self.started else self._start()
        ev += self._close()
        for idx in sorted(self.tools):
            slot = self.tools[idx]
            if slot.block is not None:
                continue
            slot.name = slot.name or "unknown_tool"
            args = normalise_arguments("".join(slot.args))
            slot.args = [args]
            ev += self._start_tool(idx, slot)
            ev += self._close()
        if self.stopped is not None:
            stop, seq = "stop_sequence", self.stopped
        elif self.refused:
            stop, seq = "refusal", None
        else:
            stop, seq = map_stop(self.finish_reason, self.matched_stop, self.stop_sequences, bool(self.tools))
        usage = map_usage(self.usage) or {"output_tokens": max(1, self.output_chars // 4)}
        ev.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": seq},
                                     "usage": usage}))
        ev.append(("message_stop", {"type": "message_stop"}))
        return ev


def message_from_response(resp: dict, model: str, *, stop_sequences: tuple[str, ...] = (),
                          provider: str = "upstream") -> dict:
    """A non-streaming chat.completion -> an Anthropic Message (the same rules as the stream)."""
    if not isinstance(resp, dict):
        raise ProxyError(f"{provider}: upstream answered something that is not a JSON object", status=502)
    conv = StreamConverter(model, message_id="msg_" + str(resp.get("id") or secrets.token_hex(12)).removeprefix("chatcmpl-"),
                           stop_sequences=stop_sequences, provider=provider)
    choices = resp.get("choices") or []
    if not choices and not resp.get("error"):
        raise ProxyError(f"{provider}: upstream answered with no choices", status=502)
    chunk = {**resp, "choices": [{**c, "delta": c.get("message") or {}} for c in choices]}
    events = conv.feed(chunk) + conv.finish()
    return assemble(events)
