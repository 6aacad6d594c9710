"""Context rules that suppress a matched term which is not a request for that kind of work: negation and
hedging ("no need to overthink", "not a design question", "I don't think we need a plan"), and a word used as
a name or value (a ``plan`` column, "Plan B", a log level ``debug``, Flask's debug mode, ``terraform plan``).

``suppression(low, text, start, end)`` returns the rule, in words, or None. ``low`` is the masked, lower-cased
text the automaton ran on; ``text`` the masked text with its original case. Negation is scoped to the clause
(a comma, dash, colon, "but" or a sentence end closes it; "don't just …" is a contrast, not a negation), so "don't just patch it — work out why" still fires.
"""

from __future__ import annotations

import re

_CLAUSE_CHARS = frozenset(",;.!?:\n—–()[]，。；！？、：")
_CLAUSE_WORDS = (" but ", " instead ", " rather ", " aber ", " sondern ", " mais ", " pero ", " mas ", " sino ", " - ")
_NEGATORS = frozenset("not no don't dont doesn't doesnt isn't isnt aren't arent never without needn't nothing kein "
                      "keine keinen keiner keinem nicht nie pas sans jamais sin nada nunca não nao sem".split())
_CONTRAST = frozenset("just only simply merely nur seulement solo sólo só apenas".split())
_CJK_NEG_BEFORE = ("不用", "不要", "不必", "无需", "不需要", "没必要", "别", "無需")
_CJK_NEG_AFTER = ("不需要", "不用", "不必", "不要", "は不要", "は必要ない", "はいらない", "いらない", "必要ない",
                  "しないで", "不要")
_NAMING_AFTER = frozenset(
    "column columns field fields tab tabs banner label card flag flags option param parameter property attribute "
    "variable var value level mode build builds statement statements heading title folder directory dir component "
    "class method function button diagram diagrams tier price pricing page id key name setting settings env table "
    "endpoint logger log logs message section icon enum constant record row limit costs cost token tokens "
    "spalte feld colonne champ columna campo coluna".split())
_NAMING_BEFORE = frozenset("column colonne columna coluna spalte field champ campo feld terraform tf pulumi free pro "
                           "enterprise premium paid starter business monthly annual yearly subscription".split())
_LEVEL_WORDS = ("level", "loglevel", "log-level", "niveau", "nivel", "nível", "ログレベル", "日志级别", "日志等级")
_CJK_NAMING_AFTER = ("字段", "列", "表", "标题", "按钮", "フィールド", "カラム", "列名", "見出し", "ボタン", "フラグ", "参数")
_WORD = re.compile(r"[\w'-]+")
_CAP_THEN_WORD = re.compile(r"\s+([A-Z][\w-]*)\s+([\w-]+)")


def _clause_before(low: str, start: int) -> str:
    head = low[max(0, start - 80):start]
    i = len(head) - 1
    while i >= 0 and head[i] not in _CLAUSE_CHARS:
        i -= 1
    head = head[i + 1:]
    for w in _CLAUSE_WORDS:
        j = head.rfind(w)
        if j >= 0:
            head = head[j + len(w):]
    return head


def suppression(low: str, text: str, start: int, end: int) -> str | None:
    """Why the match at [start, end) is not a request for its concept, or None."""
    clause = _clause_before(low, start)
    words = clause.replace("’", "'").split()[-7:]
    for k, w in enumerate(words):
        w = w.strip("\"'")
        if w in _NEGATORS and not (k + 1 < len(words) and words[k + 1] in _CONTRAST):
            return f"negated ({w!r} before it in the same clause)"
    near = low[max(0, start - 6):start]
    if not near.isascii():
        for neg in _CJK_NEG_BEFORE:
            if neg in near:
                return f"negated ({neg!r} before it)"
    after_raw = low[end:end + 8]
    after = after_raw.lstrip()
    cjk_after = not after[:3].isascii()
    if cjk_after:
        for neg in _CJK_NEG_AFTER:
            if after.startswith(neg) or after[1:].startswith(neg):
                return f"negated ({neg!r} after it)"
    nxt = _WORD.match(after)
    if nxt and nxt.group(0) in _NAMING_AFTER and after_raw[:1] in (" ", "\t"):
        return f"a name or value (followed by {nxt.group(0)!r})"
    for noun in _CJK_NAMING_AFTER if cjk_after else ():
        if after.startswith(noun):
            return f"a name or value (followed by {noun!r})"
    if words and words[-1] in _NAMING_BEFORE:
        return f"a name or value (after {words[-1]!r})"
    if len(words) >= 2 and words[-2] in _NAMING_BEFORE and words[-1] in ("the", "a", "der", "die", "la", "le", "a", "o"):
        return f"a name or value (after {words[-2]!r})"
    before = low[max(0, start - 24):start]
    for w in _LEVEL_WORDS:
        if w in before:
            return f"a log-level value (after {w!r})"
    if text[start:start + 1].isupper() and re.match(r"\s+(?:[A-Z]|\d+)\b(?![.'-]?\w)", text[end:end + 5]):
        return f"a proper name ({text[start:end + 2].strip()!r})"
    # "Flask's debug mode": naming noun one word further on, after a capitalised word ("Design System page")
    m2 = _CAP_THEN_WORD.match(text, end, end + 40) if text[end + 1:end + 2].isupper() else None
    if m2 and m2.group(2).lower() in _NAMING_AFTER:
        return f"a name or value ({text[start:start + len(m2.group(0)) + (end - start)].strip()!r})"
    return None
