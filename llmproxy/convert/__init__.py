"""Anthropic <-> OpenAI Chat Completions conversion. Pure functions and one incremental stream converter
each way; no I/O. The internal format is Anthropic's Messages format."""
