"""Estimated cost of a request from the catalog's prices (USD per million tokens). A price the catalog
does not know makes the cost unknown (None), never zero. Usage billed at the batch tier (``service_tier:
"batch"``: Anthropic's own Message Batches, which the proxy uses for native batches) costs ``BATCH_DISCOUNT``
of the list price, as Anthropic bills it."""

from __future__ import annotations

from llmproxy.config import ModelSpec

#: what the batch tier costs, as a fraction of the list price (Anthropic: 50% of standard prices)
BATCH_DISCOUNT = 0.5


def cost_usd(usage: dict | None, spec: ModelSpec | None) -> float | None:
    if not usage:
        return 0.0
    if spec is None:
        return None
    parts = ((usage.get("input_tokens"), spec.input_price), (usage.get("output_tokens"), spec.output_price),
             (usage.get("cache_read_input_tokens"), spec.cache_read_price),
             (usage.get("cache_creation_input_tokens"), spec.cache_write_price))
    total = 0.0
    for tokens, price in parts:
        if not tokens:
            continue
        if price is None:
            return None
        total += tokens * price
    if usage.get("service_tier") == "batch":
        total *= BATCH_DISCOUNT
    return round(total / 1e6, 8)
