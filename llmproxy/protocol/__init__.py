"""Wire shapes: SSE framing, request validation, token estimates. Pure; no I/O."""
