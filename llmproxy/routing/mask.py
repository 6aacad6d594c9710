"""Mask what is not the user's own request before keyword matching: fenced and inline code, quoted strings
(commit messages, UI labels, headings), pasted log/error lines, URLs and paths, command-line flags and
``KEY=value`` assignments.

``mask(text)`` returns the text with those spans blanked to spaces (same length, so match offsets still point
into the original) and the spans with their kind, so a decision can say "'plan' is inside quoted text".
"""

from __future__ import annotations

import bisect
import re

# Every pattern runs in time linear in the text (client text is untrusted: a pasted log must not stall the loop).
# Two rules keep them so. (1) No quantifier can give back what a later element might want: where the next
# element cannot match what the quantifier consumed, it is possessive (``*+``, ``++``) or atomic (``(?>…)``).
# (2) A failed attempt at one position must not be repeated at the next: a pattern that scans a run of
# characters (``a.a.a…``, ``-----``) starts only where the run starts (a lookbehind), then skips inside the run
# to the first position the original ``\b…`` rule allows (an atomic lazy skip); the span is group ``m``.
# All starts in one run reach the same run end, so the first allowed one decides for all of them.
_EXT = "md|py|ts|tsx|js|json|ya?ml|toml|txt|log|png|svg|go|rs|java|rb|sh|sql|cfg|ini"
_AFTER_EXT = "|".join(rf"(?<=\.{e})" for e in "md py ts tsx js json yml yaml toml txt log png svg go rs java rb sh "
                      "sql cfg ini".split())
# a log line's text runs to the end of its sentence or line: the first position followed by " — ", " - ",
# ". " (or , ;), or by blanks up to a line end. Each unit below consumes a stretch holding none of those
# positions, so the loop stops exactly at the first one (a lazy ``[^\n]*?`` with that lookahead is quadratic
# on runs of blanks).
_LOG_TEXT = (r"(?:[^\s.,;]++|[.,;](?!\s)|[^\S\n]++(?![\n—–-]|\Z)|[^\S\n]++(?=[—–-](?!\s))"
             r"|[^\S\n]+(?=[^\S\n][—–-]\s))*+")

# (kind of span in the words a reason uses, characters one of which must be present, pattern)
_PATTERNS: list[tuple[str, str, re.Pattern[str]]] = [
    ("code", "`", re.compile(r"```.*?(?:```|\Z)|`[^`\n]++`", re.S)),
    ("code", "(", re.compile(r"(?<![\w.])(?>[\w.]*?\b(?=[A-Za-z_]))"
                             r"(?P<m>[A-Za-z_][\w.]++\([^()\n]{0,40}+\))")),
    ("url", ":", re.compile(r"(?<![a-z0-9+.-])(?>[a-z0-9+.-]*?\b(?=[a-z]))(?P<m>[a-z][a-z0-9+.-]*+://\S+)", re.I)),
    # a pasted log/error line: a level or error marker, up to the end of that sentence or line
    ("log line", ":", re.compile(
        r"(?:^|(?<=[\s:(\[]))(?:(?>\d{4}-\d\d-\d\d[T ][\d:.]+\S*\s*)|\d{4}-\d\d-\d\d[T ][\d:.]++(?:\S*?(?<!\w))?)?"
        r"(?:ERROR|WARN(?:ING)?|INFO|DEBUG|TRACE|FATAL|CRITICAL|FAILED|Traceback|"
        r"[A-Z]\w*(?:Error|Exception)|[Ee]rror|[Ww]arning|[Ff]atal|[Pp]anic)"
        r"(?::|\s+\d{4}-\d\d-\d\d|\s+\w+:)" + _LOG_TEXT, re.M)),
    ("log line", "\n", re.compile(r"^[^\S\n]*+(?:at |File \"|\^|[\w./-]+\.\w+:\d+|\[\d|\d{4}-\d\d-\d\d)[^\n]*+$",
                                  re.M)),
    ("quoted text", "\"", re.compile(r"\"[^\"\n]{1,200}+\"")),
    ("quoted text", "'", re.compile(r"(?<![\w'])'[^'\n]{1,200}+'(?!\w)")),
    ("path", "/", re.compile(r"(?:(?<![\w/])(?=[~/])|(?<![\w.@-])(?=[\w.@-])(?:(?<=/)\w*+[.@-]|(?<!/)))"
                             r"(?P<m>(?:~|\.{1,2})?/?(?:[\w.@-]++/)++[\w.@-]*+)")),
    ("path", ".", re.compile(r"(?:(?<![\w-])|(?=-)(?:" + _AFTER_EXT + r"))(?>[\w-]*?\b)"
                             r"(?P<m>[\w-]++\.(?:" + _EXT + r")\b)")),
    ("flag", "-", re.compile(r"(?<![\w-])--?[a-zA-Z][\w-]*+(?:=\S*+)?")),
    ("assignment", "=", re.compile(r"(?<![\w.])(?>[\w.]*?\b(?=[A-Za-z_]))(?P<m>[A-Za-z_][\w.]*+\s*+=\s*+\S+)")),
]


# Quotes with distinct opening and closing marks (“…”, „…“, «…», 「…」, 『…』, ‘…’): the text from an opening mark
# to the next closing mark on its line, 1-200 characters. Read forwards, every opening mark in a run of them
# (“““…) scans up to 200 characters; read backwards from each closing mark, the scan stops at the previous
# closing mark, so each character is read at most twice. These run on the reversed text, one per kind of quote
# (greedy: the farthest opening mark within 200 characters is the leftmost one, as a forward scan finds it).
_REVERSED_QUOTES: list[tuple[str, re.Pattern[str]]] = [
    (opening, re.compile(f"{close}[^{inner}\\n]{{1,200}}{opening}"))
    for opening, close, inner in (("“", "”", "”"), ("„", "[“”]", "“”"), ("«", "»", "»"), ("「", "」", "」"),
                                  ("『", "』", "』"), ("‘", "’", "’"))
]


class Spans(list):
    """The spans of one ``mask()``, sorted; ``kind_at`` answers "which span holds [start, end)" by bisection
    (keyword matching asks it once per term occurrence: a scan of every span each time was quadratic)."""

    _index: tuple[list[int], list[int]] | None = None

    def kind_at(self, start: int, end: int) -> str | None:
        """The kind of the first span (in sorted order) that contains [start, end), or None."""
        if self._index is None:
            starts, reach, top = [], [], -1
            for s, e, _ in self:
                top = max(top, e)
                starts.append(s)
                reach.append(top)  # the farthest end of any span up to here: never decreases
            self._index = starts, reach
        starts, reach = self._index
        # the first span reaching ``end`` is the first that can contain it; it must also start by ``start``
        i = bisect.bisect_left(reach, end)
        if i < len(self) and starts[i] <= start:
            return self[i][2]
        return None


def _blank(segment: str) -> str:
    return "\n".join(" " * len(line) for line in segment.split("\n"))


def mask(text: str) -> tuple[str, Spans]:
    """(masked text of the same length, [(start, end, kind)] sorted)."""
    spans = Spans()
    present = set(text)
    for kind, need, pat in _PATTERNS:
        if present.isdisjoint(need):
            continue
        group = "m" if "m" in pat.groupindex else 0
        for m in pat.finditer(text):
            s, e = m.span(group)
            if e > s and not text[s:e].isspace():
                spans.append((s, e, kind))
    if not present.isdisjoint("“„«「『‘"):
        backwards, n = text[::-1], len(text)
        for opening, pat in _REVERSED_QUOTES:
            if opening in present:
                spans.extend((n - m.end(), n - m.start(), "quoted text") for m in pat.finditer(backwards))
    if not spans:
        return text, spans
    spans.sort()
    out, pos = [], 0
    for s, e, _ in spans:
        if e <= pos:
            continue
        s = max(s, pos)
        out.append(text[pos:s])
        out.append(_blank(text[s:e]))
        pos = e
    out.append(text[pos:])
    return "".join(out), spans


def span_kind(spans: list[tuple[int, int, str]], start: int, end: int) -> str | None:
    if isinstance(spans, Spans):
        return spans.kind_at(start, end)
    for s, e, kind in spans:
        if s <= start and end <= e:
            return kind
    return None
