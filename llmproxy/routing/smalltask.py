"""The small-task guard: a one-word trigger inside the object of a small imperative edit is a name or value, not
a request for the work it names — "enable debug logging for the client", "set the log level to debug", "add the
planner config to the chart", "zet de debug vlag aan", "kannst du das debug-logging einschalten?",
"把 debug 开关打开", "デバッグログを有効にして".

``small_task(low, start, end)`` returns the rule in words, or None. ``low`` is the masked, lower-cased text. The
sentence holding the match must be short, open with an edit verb (after a polite opener: "please", "can you",
"kannst du", "peux-tu" …) — or, in German, Dutch, Chinese, Japanese and Korean, carry the edit verb at its
end — ask no question (why, how, what …), and the term must not be a verb of its own (after "and", "to", "then").
"""

from __future__ import annotations

import re

MAX_WORDS = 16  # a longer sentence is not a small edit
_SENTENCE_END = re.compile(r"[.!?;\n。！？；]\s|[\n。！？；]")
_VERBS = frozenset(
    # en
    "rename set enable disable turn toggle switch add remove delete drop bump change update copy move export "
    "swap replace merge wrap put insert append uncomment comment "
    # de, nl
    "benenne setze setz aktiviere deaktiviere schalte füge entferne lösche ändere kopiere verschiebe "
    "zet hernoem voeg verwijder "
    # fr, es, pt, it
    "renomme active activez désactive ajoute supprime change mets modifie "
    "renombra activa desactiva añade agrega elimina borra cambia pon "
    "renomeia renomeie ativa ative desativa adiciona adicione remova muda mude troca troque "
    "abilita disabilita aggiungi rinomina imposta "
    # ru
    "включи выключи добавь переименуй удали поменяй измени".split())
_VERBS_AT_END = ("einschalten", "ausschalten", "aktivieren", "deaktivieren", "umbenennen", "hinzufügen", "setzen",
                 "ändern", "entfernen", "löschen", " aan", " uit", "打开", "开启", "启用", "关掉", "关闭", "改成",
                 "改为", "重命名", "加上", "有効にして", "無効にして", "変えて", "追加して", "켜줘", "꺼줘", "바꿔줘",
                 "추가해줘")
_OPENERS = ("please", "pls", "can you", "could you", "would you", "kannst du", "könntest du", "bitte", "peux-tu",
            "tu peux", "pourrais-tu", "puedes", "podrías", "pode", "você pode", "podes", "puoi", "kun je",
            "можешь", "请", "帮我", "麻烦")
_NOT_OBJECT = frozenset("and to then so und um dann et pour puis y para e per и чтобы".split())
_NEW_CLAUSE = (" and ", " then ", " und ", " dann ", " et ", " puis ", " y ", " e ", " и ", ",", "，", "、")
_PHRASAL = ("up", "into", "out")  # "set up a plan", "turn it into", "figure out": not small edits
_QUESTIONS = re.compile(
    r"\b(?:why|how|what|which|whether|warum|wieso|wie|was|pourquoi|comment|quoi|por qué|cómo|qué|por que|como|"
    r"o que|perché|почему|как|что)\b|为什么|怎么|如何|なぜ|どう|왜|어떻게")


def small_task(low: str, start: int, end: int) -> str | None:
    s = max((m.end() for m in _SENTENCE_END.finditer(low, max(0, start - 200), start)), default=0)
    m = _SENTENCE_END.search(low, end, end + 400)
    e = m.start() if m else len(low)
    if e - s > 400:  # no small edit; reading a long sentence whole for each match was quadratic
        return None
    sentence = low[s:e].strip()
    words = sentence.split()
    if not words or len(words) > MAX_WORDS or _QUESTIONS.search(sentence):
        return None
    before = low[s:start].split()
    if before and before[-1] in _NOT_OBJECT:
        return None
    head = sentence
    for opener in _OPENERS:
        if head.startswith(opener):
            head = head[len(opener):].lstrip(" ,")
            break
    head_words = head.split()
    verb = head_words[0] if head_words else ""
    at = low.find(verb, s) if verb in _VERBS else -1
    if 0 <= at < start and (len(head_words) < 2 or head_words[1] not in _PHRASAL) and not any(
            w in low[at:start] for w in _NEW_CLAUSE):
        return f"a small edit ({verb!r} …) with the term in its object"
    tail = sentence.rstrip(" ?!.")
    for v in _VERBS_AT_END:
        if tail.endswith(v) and not any(w in low[end:e] for w in _NEW_CLAUSE):
            return f"a small edit (… {v.strip()!r}) with the term in its object"
    return None
