"""Per-provider quirks of OpenAI-compatible upstreams, read from a provider's ``quirks`` config table."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

REASONING_STYLES = ("none", "openrouter", "reasoning_effort", "reasoning_content", "reasoning")


@dataclass(frozen=True)
class Quirks:
    #: how a request asks for reasoning, and which response field carries it:
    #: "openrouter" (request `reasoning` object; response `reasoning`/`reasoning_details`),
    #: "reasoning_effort" (OpenAI: request `reasoning_effort`), "reasoning_content" (DeepSeek, vLLM),
    #: "reasoning" (Ollama), "none" (never sent).
    reasoning: str = "none"
    #: echo earlier thinking back as `reasoning_content` on assistant messages (DeepSeek thinking-mode tool turns)
    reasoning_in_history: bool = False
    #: keep `cache_control` on content parts (OpenRouter to Anthropic/Gemini models); dropped by default
    cache_control: bool = False
    #: strip JSON-schema keys strict providers reject ($schema, format, …) from tool parameters
    strict_schema: bool = False
    #: cap for max_tokens regardless of the request (0 = the model's catalog limit only)
    max_tokens_cap: int = 0
    #: the request field for the output cap ("max_tokens", or "max_completion_tokens" for OpenAI's own API)
    max_tokens_field: str = "max_tokens"
    #: ask for usage in the stream (stream_options.include_usage)
    stream_usage: bool = True
    #: the provider accepts PDF documents as `file` content parts
    pdf: bool = False
    #: the provider accepts top_k
    top_k: bool = False
    #: forward tool-call argument fragments as they arrive (only for providers whose tool JSON is constrained);
    #: otherwise each call is emitted complete, with its JSON checked, when the stream ends
    stream_tool_args: bool = False
    #: how `output_config.format` (JSON-schema output) is asked for: "json_schema" (response_format with the
    #: schema), "json_object" (DeepSeek: JSON mode plus the schema in the system prompt), "none"
    structured_output: str = "json_schema"

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Quirks:
        known = {f.name for f in fields(cls)}
        q = cls(**{k: v for k, v in data.items() if k in known})
        if q.reasoning not in REASONING_STYLES:
            raise ValueError(f"quirks.reasoning must be one of {', '.join(REASONING_STYLES)}")
        return q
