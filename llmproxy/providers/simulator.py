"""The simulator: an offline, deterministic, clearly labelled stand-in for any provider.

It streams a proper Anthropic answer that says which profile, scenario and model it stands in for,
honours ``max_tokens`` and ``stop_sequences``, reports realistic usage and paces itself per model
(time to first token, tokens per second) so a fast and a cheap profile visibly differ.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import orjson

from llmproxy.config import ModelSpec, ProviderConfig
from llmproxy.protocol import tokens
from llmproxy.protocol.sse import Frame
from llmproxy.providers.base import Call, Reply

LABEL = "[llmproxy simulator]"
TOKENS_PER_DELTA = 4


def answer_text(call: Call, reason: str | None) -> str:
    d = call.decision
    head = (f"{LABEL} profile={d.profile} scenario={d.scenario} "
            f"would use {call.target.provider}/{call.target.model}")
    if d.concept:
        head += f" (concept: {d.concept})"
    head += "."
    if reason:
        head += f" Simulated because {reason}."
    words = d.text.split()
    echo = " ".join(words[:24]) + (" …" if len(words) > 24 else "")
    return f"{head}\nYou said: {echo}" if echo else head


def schema_instance(schema: dict, label: str, depth: int = 0) -> object:
    """A small value of the shape a JSON schema asks for; strings carry the simulator's label."""
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if t == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {k: schema_instance(v if isinstance(v, dict) else {}, label, depth + 1)
                for k, v in (schema.get("properties") or {}).items()}
    if t == "array":
        return []
    if t in ("integer", "number"):
        return 0
    if t == "boolean":
        return False
    return label


def answer_for(call: Call, reason: str | None) -> str:
    """The labelled answer, or (when the request asks for JSON-schema output) a labelled JSON object."""
    fmt = (call.body.get("output_config") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        label = f"{LABEL} {call.decision.profile}/{call.decision.scenario} via {call.target}"
        return orjson.dumps(schema_instance(fmt["schema"], label)).decode()
    return answer_text(call, reason)


def split_tokens(text: str) -> list[str]:
    """Word-ish pieces (each keeps its trailing whitespace), about one per token."""
    out, cur = [], ""
    for ch in text:
        if cur and not cur[-1].isspace() and ch.isspace():
            cur += ch
            continue
        if cur and cur[-1].isspace() and not ch.isspace():
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return out


def shape_output(text: str, max_tokens: int, stop_sequences: list[str]) -> tuple[list[str], str, str | None]:
    """(token pieces to emit, stop_reason, stop_sequence)."""
    stop_reason, stop_seq = "end_turn", None
    hits = [(text.find(s), s) for s in stop_sequences if s and s in text]
    if hits:
        pos, stop_seq = min(hits)
        text, stop_reason = text[:pos], "stop_sequence"
    pieces = split_tokens(text)
    if len(pieces) > max_tokens:
        pieces, stop_reason, stop_seq = pieces[:max_tokens], "max_tokens", None
    return pieces, stop_reason, stop_seq


def message_id(call: Call) -> str:
    digest = hashlib.sha256(orjson.dumps(call.body.get("messages"), option=orjson.OPT_SORT_KEYS)).hexdigest()
    return "msg_sim_" + digest[:24]


class SimulatorProvider:
    def __init__(self, config: ProviderConfig, reason: str | None = None, speed: float = 1.0):
        self.config = config
        self.simulated_reason = reason or "this provider is the simulator"
        self._reason = reason
        self.speed = speed

    def _pace(self, spec: ModelSpec | None) -> tuple[float, float]:
        if self.speed <= 0:
            return 0.0, 0.0
        spec = spec or ModelSpec(id="?")
        ttft = spec.sim_ttft_ms / 1000 / self.speed
        per_token = 1 / (spec.sim_tokens_per_second * self.speed) if spec.sim_tokens_per_second > 0 else 0.0
        return ttft, per_token

    def _usage_in(self, call: Call) -> int:
        return call.estimated_tokens or tokens.estimate(call.body, len(orjson.dumps(call.body)))

    async def messages(self, call: Call) -> Reply:
        text = answer_for(call, self._reason)
        max_tokens = int(call.body.get("max_tokens") or 4096)
        pieces, stop_reason, stop_seq = shape_output(text, max_tokens, list(call.body.get("stop_sequences") or []))
        headers = {"x-llmproxy-simulated": "true"}
        if call.stream:
            return Reply(headers=headers, stream=self._stream(call, pieces, stop_reason, stop_seq))
        ttft, per_token = self._pace(call.spec)
        await asyncio.sleep(ttft + per_token * len(pieces))
        msg = {
            "id": message_id(call), "type": "message", "role": "assistant", "model": call.target.model,
            "content": [{"type": "text", "text": "".join(pieces)}],
            "stop_reason": stop_reason, "stop_sequence": stop_seq,
            "usage": {"input_tokens": self._usage_in(call), "output_tokens": len(pieces),
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        }
        return Reply(headers=headers, message=msg)

    async def _stream(self, call: Call, pieces: list[str], stop_reason: str, stop_seq: str | None
                      ) -> AsyncIterator[list[Frame]]:
        ttft, per_token = self._pace(call.spec)
        start = {"type": "message_start", "message": {
            "id": message_id(call), "type": "message", "role": "assistant", "model": call.target.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self._usage_in(call), "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}
        await asyncio.sleep(ttft)
        yield [Frame("message_start", start),
               Frame("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}})]
        for i in range(0, len(pieces), TOKENS_PER_DELTA):
            group = pieces[i:i + TOKENS_PER_DELTA]
            if per_token:
                await asyncio.sleep(per_token * len(group))
            yield [Frame("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": "".join(group)}})]
        yield [Frame("content_block_stop", {"type": "content_block_stop", "index": 0}),
               Frame("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": stop_reason, "stop_sequence": stop_seq},
                                       "usage": {"output_tokens": len(pieces)}}),
               Frame("message_stop", {"type": "message_stop"})]

    async def count_tokens(self, call: Call) -> int:
        return self._usage_in(call)
