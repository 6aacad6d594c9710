"""Thinking blocks across providers. Reasoning translated from an OpenAI-style provider gets a signature
we mint (recognisable prefix); such blocks must never reach Anthropic, which verifies signatures."""

from __future__ import annotations

import hashlib

SIGNATURE_PREFIX = "llmproxy1."


def mint_signature(text: str) -> str:
    return SIGNATURE_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:40]


def is_ours(block: dict) -> bool:
    return block.get("type") == "thinking" and str(block.get("signature", "")).startswith(SIGNATURE_PREFIX)


def strip_foreign_thinking(body: dict) -> dict:
    """The request without thinking blocks whose signature we minted. Returns ``body`` itself when there are
    none, so unchanged requests are still forwarded byte for byte."""
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return body
    changed = False
    out = []
    for m in msgs:
        content = m.get("content") if isinstance(m, dict) else None
        if m.get("role") == "assistant" and isinstance(content, list) and any(
                isinstance(b, dict) and is_ours(b) for b in content):
            kept = [b for b in content if not (isinstance(b, dict) and is_ours(b))]
            out.append({**m, "content": kept or [{"type": "text", "text": ""}]})
            changed = True
        else:
            out.append(m)
    return {**body, "messages": out} if changed else body
