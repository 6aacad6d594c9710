"""Observability: the request log, cost, metrics."""
