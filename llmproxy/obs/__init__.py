"""Observability: the request log, redaction, cost."""
