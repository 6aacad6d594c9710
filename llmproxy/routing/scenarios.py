"""Scenario detectors: small pure predicates over a parsed Anthropic request (docs/routing.md, "Scenario
precedence", names the Claude Code shapes they key on). Each returns a reason string when it fires, else None."""

from __future__ import annotations

from collections.abc import Mapping

from llmproxy.routing.text import last_text_block, last_user_message, message_plain_text, system_texts

BILLING_PREFIX = "x-anthropic-billing-header:"
TITLE_PROMPT = "Generate a concise, sentence-case title"
WEBFETCH_PREFIX = "Web page content:"
COMPACT_MARKERS = ("CRITICAL: Respond with TEXT ONLY. Do NOT call any tools.",
                   "Your task is to create a detailed summary of the conversation so far")
ULTRATHINK_SYSTEM = 'The user included the keyword "ultrathink"'
# Claude Code 2.1.197 plan mode (recorded): the full instructions open with PLAN_MODE_ON, in the trailing
# role:"system" message (opus) or a <system-reminder> user block (haiku), on the first request after the mode is
# entered; later turns carry no marker until the mode is left, which adds a system message with PLAN_MODE_OFF.
# Only these recorded markers are used. Leaving sends a short system message of its own, so the exit marker is
# looked for in short texts or after an on-marker (rfind with a long needle is ~4x faster than ``in`` with a
# short one on Claude Code's non-ASCII texts; this keeps plan_mode() to one search per big system text).
PLAN_MODE_ON = "Plan mode is active"
PLAN_MODE_OFF = "You have exited plan mode"


def is_claude_code(body: dict, headers: Mapping[str, str]) -> bool:
    sys_ = system_texts(body.get("system"))
    return bool(sys_ and sys_[0].startswith(BILLING_PREFIX)) or headers.get("user-agent", "").startswith("claude-cli")


def image(turn: list) -> str | None:
    """An image anywhere in the current turn's user messages (the human text's or a tool result's)."""
    for m in reversed(turn):
        if isinstance(m, dict) and m.get("role") == "user" and (why := _image_in(m.get("content"))):
            return why
    return None


def _image_in(content) -> str | None:
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


def plan_mode(messages: list) -> str | None:
    """Claude Code's plan mode is on: the latest plan-mode marker in the conversation turns it on, not off.
    Read from role:"system" messages and <system-reminder> user blocks only, never from human text or tools."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        role = m.get("role")
        if role == "system":
            texts = [c] if isinstance(c, str) else [message_plain_text(m)]
        elif role == "user":
            if isinstance(c, str):
                texts = [c] if c.startswith("<system-reminder>") else []
            elif isinstance(c, list):
                texts = [t for b in c if isinstance(b, dict) and isinstance(t := b.get("text"), str)
                         and t.startswith("<system-reminder>")]
            else:
                continue
        else:
            continue
        for txt in reversed(texts):
            on = txt.rfind(PLAN_MODE_ON)
            off = txt.rfind(PLAN_MODE_OFF, max(on, 0)) if on >= 0 or len(txt) < 2000 else -1
            if on > off:
                where = "a system message" if role == "system" else "a system reminder"
                return f"Claude Code plan mode is on (its plan-mode marker in {where}, not exited since)"
            if off >= 0:
                return None
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


def background(body: dict, background_models: tuple[str, ...], claude_code: bool) -> str | None:
    """Claude Code's utility calls: title generation, WebFetch summaries, tool-less small-model calls. The
    small-model rule needs Claude Code's signals (``claude_code``: billing header or claude-cli user agent): an
    SDK call or a batch item naming a Haiku model without tools is an ordinary request, routed by its text."""
    sys_ = system_texts(body.get("system"))
    if any(s.startswith(TITLE_PROMPT) for s in sys_[2:3]) or any(TITLE_PROMPT in s[:200] for s in sys_[:3]):
        return "title generation request"
    tools = body.get("tools") or []
    if tools:
        return None
    m = last_user_message(body.get("messages") or [])
    if m is not None and last_text_block(m).lstrip().startswith(WEBFETCH_PREFIX):
        return "WebFetch page summary"
    if not claude_code:
        return None
    model = str(body.get("model", "")).lower()
    for marker in background_models:
        if marker and marker.lower() in model:
            return f"tool-less Claude Code request to a small model ({body.get('model')})"
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


def think(body: dict, human_text: str, claude_code: bool, budget_threshold: int, turn: list | None = None) -> str | None:
    """Explicit extended thinking. Claude Code's default thinking on every main turn does not count;
    its ``ultrathink`` keyword does — in this turn's human text, or in a role:system message of this turn
    (``turn``: the messages from the latest human text on). An earlier turn's flag never counts."""
    if "ultrathink" in human_text.lower():
        return "the user wrote 'ultrathink'"
    for m in turn or ():
        if isinstance(m, dict) and m.get("role") == "system" and ULTRATHINK_SYSTEM in message_plain_text(m):
            return "Claude Code flagged 'ultrathink' for this turn"
    if claude_code:
        return None
    th = body.get("thinking")
    if isinstance(th, dict) and th.get("type") == "enabled":
        budget = th.get("budget_tokens")
        if isinstance(budget, int) and budget >= max(budget_threshold, 1):
            return f"extended thinking requested (budget_tokens={budget})"
    return None
