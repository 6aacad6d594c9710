"""Offline input-token estimate. It must be cheap (it runs on every request for long-context routing and
for count_tokens on non-Anthropic routes) and must grow with system, tools and messages.

Method: the serialised request length, minus base64 image/document payloads (counted at a fixed cost
each, as Anthropic bills images by pixels, not bytes), divided by an average bytes-per-token ratio.
The ratio and the error against a real BPE tokenizer are in docs/routing.md.
"""

from __future__ import annotations

BYTES_PER_TOKEN = 4.5  # serialised JSON bytes per token, calibrated in docs/routing.md
SKELETON_BYTES = 64  # the request's fixed JSON keys
IMAGE_TOKENS = 1600  # a typical ~1.15 MP image
PDF_PAGE_TOKENS = 2000
PDF_BYTES_PER_PAGE = 60_000


def _binary_payloads(messages: list) -> tuple[int, int]:
    """(bytes of base64 payloads, tokens to charge for them) in the messages, one level into tool results."""
    skipped = tokens = 0
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "tool_result" and isinstance(block.get("content"), list):
                inner = block["content"]
            else:
                inner = (block,)
            for b in inner:
                if not isinstance(b, dict) or b.get("type") not in ("image", "document"):
                    continue
                src = b.get("source")
                data = src.get("data") if isinstance(src, dict) else None
                if isinstance(data, str) and src.get("type") == "base64":
                    skipped += len(data)
                    if b["type"] == "image":
                        tokens += IMAGE_TOKENS
                    else:
                        tokens += max(1, (len(data) * 3 // 4) // PDF_BYTES_PER_PAGE + 1) * PDF_PAGE_TOKENS
                elif b.get("type") == "image":
                    tokens += IMAGE_TOKENS
    return skipped, tokens


def estimate(body: dict, raw_len: int) -> int:
    """Estimated input tokens of an Anthropic request whose serialised size is ``raw_len`` bytes."""
    msgs = body.get("messages")
    skipped, extra = _binary_payloads(msgs) if isinstance(msgs, list) else (0, 0)
    text_bytes = max(0, raw_len - skipped - SKELETON_BYTES)
    return max(1, int(text_bytes / BYTES_PER_TOKEN) + extra)
