"""What keyword routing sees: the latest *human* text of a request, and nothing else.

Claude Code's system prompt, tool descriptions and ``<system-reminder>`` blocks say "plan" and "think"
everywhere, so they must never be matched. We walk back from the end of ``messages`` to the last user
message that carries human text: tool results, ``role: "system"`` messages, system reminders and
slash-command wrappers are skipped. A tool-result follow-up therefore routes like the human turn that
started the tool loop, with no server-side state.
"""

from __future__ import annotations

# tags whose whole span (tag and content) is not this turn's human text: reminders, and the wrappers of a
# slash command that already ran (its args were instructions to that command, e.g. /compact's focus)
_DROP_TAGS = ("system-reminder", "command-name", "command-message", "command-args", "local-command-stdout",
              "local-command-stderr", "local-command-caveat")
# text blocks Claude Code writes itself into user turns
_MACHINE_PREFIXES = ("This session is being continued from a previous conversation",)


def _strip_tags(text: str) -> str:
    if "<" not in text:
        return text
    for tag in _DROP_TAGS:
        open_, close = f"<{tag}>", f"</{tag}>"
        while True:
            i = text.find(open_)
            if i < 0:
                break
            j = text.find(close, i)
            text = text[:i] + (text[j + len(close):] if j >= 0 else "")
    return text


def message_texts(message: dict) -> list[str]:
    """The human text blocks of one user message (wrappers removed, empty ones dropped)."""
    content = message.get("content")
    if isinstance(content, str):
        blocks = [content]
    elif isinstance(content, list):
        blocks = [b["text"] for b in content
                  if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)]
    else:
        return []
    out = []
    for text in blocks:
        if text.startswith(_MACHINE_PREFIXES):
            continue
        t = _strip_tags(text)
        if t.strip():
            out.append(t.strip())
    return out


def latest_human_text(messages: list) -> tuple[str, int | None]:
    """(text, index of the message it came from); ("", None) when no message carries human text."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        texts = message_texts(m)
        if texts:
            return "\n".join(texts), i
    return "", None


def last_user_message(messages: list) -> dict | None:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "user":
            return m
    return None


def last_text_block(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        for block in reversed(content):
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                return block["text"]
    return ""


def system_texts(system) -> list[str]:
    if isinstance(system, str):
        return [system]
    if isinstance(system, list):
        return [b.get("text", "") for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)]
    return []
