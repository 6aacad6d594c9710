"""Running Message Batches: the executor (and, behind a flag, Anthropic's own batch API)."""
