"""Mask what is not the user's own request before keyword matching: fenced and inline code, quoted strings
(commit messages, UI labels, headings), pasted log/error lines, URLs and paths, command-line flags and
``KEY=value`` assignments.

``mask(text)`` returns the text with those spans blanked to spaces (same length, so match offsets still point
into the original) and the spans with their kind, so a decision can say "'plan' is inside quoted text".
"""

from __future__ import annotations

import re

# (kind of span in the words a reason uses, characters one of which must be present, pattern)
_PATTERNS: list[tuple[str, str, re.Pattern[str]]] = [
    ("code", "`", re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)),
    ("code", "(", re.compile(r"\b[A-Za-z_][\w.]+\([^()\n]{0,40}\)")),
    ("url", ":", re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)),
    # a pasted log/error line: a level or error marker, up to the end of that sentence or line
    ("log line", ":", re.compile(
        r"(?:^|(?<=[\s:(\[]))(?:\d{4}-\d\d-\d\d[T ][\d:.]+\S*\s*)?"
        r"(?:ERROR|WARN(?:ING)?|INFO|DEBUG|TRACE|FATAL|CRITICAL|FAILED|Traceback|"
        r"[A-Z]\w*(?:Error|Exception)|[Ee]rror|[Ww]arning|[Ff]atal|[Pp]anic)"
        r"(?::|\s+\d{4}-\d\d-\d\d|\s+\w+:)[^\n]*?(?=\s[—–]\s|\s-\s|[.,;]\s|\s*$|\n)", re.M)),
    ("log line", "\n", re.compile(r"^\s*(?:at |File \"|\s*\^|[\w./-]+\.\w+:\d+|\[\d|\d{4}-\d\d-\d\d)[^\n]*$", re.M)),
    ("quoted text", "\"“„«「『‘", re.compile(r"\"[^\"\n]{1,200}\"|“[^”\n]{1,200}”|„[^“”\n]{1,200}[“”]|«[^»\n]{1,200}»|"
                                           r"「[^」\n]{1,200}」|『[^』\n]{1,200}』|‘[^’\n]{1,200}’")),
    ("quoted text", "'", re.compile(r"(?<![\w'])'[^'\n]{1,200}'(?!\w)")),
    ("path", "/", re.compile(r"(?<![\w/])(?:~|\.{1,2})?/?(?:[\w.@-]+/)+[\w.@-]*")),
    ("path", ".", re.compile(r"\b[\w-]+\.(?:md|py|ts|tsx|js|json|ya?ml|toml|txt|log|png|svg|go|rs|java|rb|sh|sql|cfg|ini)\b")),
    ("flag", "-", re.compile(r"(?<![\w-])--?[a-zA-Z][\w-]*(?:=\S*)?")),
    ("assignment", "=", re.compile(r"\b[A-Za-z_][\w.]*\s*=\s*\S+")),
]


def mask(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    """(masked text of the same length, [(start, end, kind)])."""
    spans: list[tuple[int, int, str]] = []
    present = set(text)
    for kind, need, pat in _PATTERNS:
        if present.isdisjoint(need):
            continue
        for m in pat.finditer(text):
            s, e = m.span()
            if e > s and not text[s:e].isspace():
                spans.append((s, e, kind))
    if not spans:
        return text, spans
    spans.sort()
    out, pos = [], 0
    for s, e, _ in spans:
        if e <= pos:
            continue
        s = max(s, pos)
        out.append(text[pos:s])
        out.append("".join("\n" if ch == "\n" else " " for ch in text[s:e]))
        pos = e
    out.append(text[pos:])
    return "".join(out), spans


def span_kind(spans: list[tuple[int, int, str]], start: int, end: int) -> str | None:
    for s, e, kind in spans:
        if s <= start and end <= e:
            return kind
    return None
