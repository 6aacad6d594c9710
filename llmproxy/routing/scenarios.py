"""Scenario detectors: small pure predicates over a parsed Anthropic request (see TRAFFIC.md for the
Claude Code shapes they key on). Each returns a reason string when it fires, else None."""

from __future__ import annotations

from collections.abc import Mapping

from llmproxy.routing.text import last_text_block, last_user_message, system_texts

BILLING_PREFIX = "x-anthropic-billing-header:"
TITLE_PROMPT = "Generate a concise, sentence-case title"
WEBFETCH_PREFIX = "Web page content:"
COMPACT_MARKERS = ("CRITICAL: Respond with TEXT ONLY. Do NOT call any tools.",
                   "Your task is to create a detailed summary of the conversation so far")
ULTRATHINK_SYSTEM = 'The user included the keyword "ultrathink"'


def is_claude_code(body: dict, headers: Mapping[str, str]) -> bool:
    sys_ = system_texts(body.get("system"))
    return bool(sys_ and sys_[0].startswith(BILLING_PREFIX)) or headers.get("user-agent", "").startswith("claude-cli")


def image(body: dict) -> str | None:
    m = last_user_message(body.get("messages") or [])
    content = m.get("content") if m else None
    if not isinstance(content, list):
        return None
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "image":
            return "the latest user turn carries an image"
        if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
            if any(isinstance(b, dict) and b.get("type") == "image" for b in block["content"]):
                return "a tool result in the latest user turn carries an image"
    return None


def web_search(body: dict) -> str | None:
    for t in body.get("tools") or ():
        if isinstance(t, dict) and str(t.get("type", "")).startswith("web_search"):
            return f"request carries the {t.get('type')} server tool"
    return None


def subagent(body: dict, headers: Mapping[str, str]) -> str | None:
    if headers.get("x-claude-code-agent-id"):
        return "x-claude-code-agent-id header (Claude Code subagent)"
    sys_ = system_texts(body.get("system"))
    if sys_ and sys_[0].startswith(BILLING_PREFIX) and "cc_is_subagent=true" in sys_[0]:
        return "subagent marker in the billing header"
    return None


def background(body: dict, background_models: tuple[str, ...]) -> str | None:
    """Claude Code's utility calls: title generation, WebFetch summaries, tool-less small-model calls."""
    sys_ = system_texts(body.get("system"))
    if any(s.startswith(TITLE_PROMPT) for s in sys_[2:3]) or any(TITLE_PROMPT in s[:200] for s in sys_[:3]):
        return "title generation request"
    tools = body.get("tools") or []
    if tools:
        return None
    m = last_user_message(body.get("messages") or [])
    if m is not None and last_text_block(m).lstrip().startswith(WEBFETCH_PREFIX):
        return "WebFetch page summary"
    model = str(body.get("model", "")).lower()
    for marker in background_models:
        if marker and marker.lower() in model:
            return f"tool-less request to a small model ({body.get('model')})"
    return None


def compact(body: dict) -> str | None:
    m = last_user_message(body.get("messages") or [])
    if m is None:
        return None
    last = last_text_block(m)
    for marker in COMPACT_MARKERS:
        if marker in last[:600]:
            return "conversation compaction prompt"
    return None


def think(body: dict, human_text: str, claude_code: bool, budget_threshold: int) -> str | None:
    """Explicit extended thinking. Claude Code's default thinking on every main turn does not count;
    its ``ultrathink`` keyword does (in the user text, or in the trailing role:system message)."""
    if "ultrathink" in human_text.lower():
        return "the user wrote 'ultrathink'"
    msgs = body.get("messages") or []
    for m in reversed(msgs[-3:]):
        if isinstance(m, dict) and m.get("role") == "system":
            c = m.get("content")
            txt = c if isinstance(c, str) else " ".join(
                b.get("text", "") for b in c if isinstance(b, dict)) if isinstance(c, list) else ""
            if ULTRATHINK_SYSTEM in txt:
                return "Claude Code flagged 'ultrathink' for this turn"
    if claude_code:
        return None
    th = body.get("thinking")
    if isinstance(th, dict) and th.get("type") == "enabled":
        budget = th.get("budget_tokens")
        if isinstance(budget, int) and budget >= max(budget_threshold, 1):
            return f"extended thinking requested (budget_tokens={budget})"
    return None
