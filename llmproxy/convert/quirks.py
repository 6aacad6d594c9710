"""Per-provider quirks of OpenAI-compatible upstreams. The type belongs to the config layer (it is parsed once,
as ``ProviderConfig.quirks``); this module re-exports it for the converters."""

from llmproxy.config import REASONING_STYLES, STRUCTURED_OUTPUT_STYLES, Quirks

__all__ = ["REASONING_STYLES", "STRUCTURED_OUTPUT_STYLES", "Quirks"]
