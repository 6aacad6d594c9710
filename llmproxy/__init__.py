"""llmproxy: a local LLM routing proxy that speaks the Anthropic API."""

__version__ = "0.1.0"
