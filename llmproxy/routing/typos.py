"""Typo tolerance for knowledge-graph terms: a word of the text that is one edit (a substitution, insertion,
deletion or adjacent transposition) away from a word of a term, both of 5+ letters, reads as that word.

A SymSpell-like index is built at compile time: every word of every term (5+ letters, not CJK) and each of its
one-letter deletions maps to the term words. At match time a text word is looked up by itself and by its own
deletions — one dict lookup per letter — then, if it ends in -ing/-ed, by its stem the same way, and a
candidate is confirmed by an exact edit-distance-1 check. Real words one edit from a term word (weight/weigh,
planets/plantes) are never corrected. Cost is bounded: only words of 5+ letters, at most
``MAX_WORDS`` of them per text, and nothing at all when every word is known.

``correct(low, index)`` returns the text with its typos replaced and a map from each position of the corrected
text to the position in ``low`` it came from (None when nothing was corrected), so matches found on the
corrected text point into the original.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MIN_LEN = 5  # shorter words are too close to other words (plan/plane/clan) to guess at
MAX_WORDS = 48  # text words examined per request (a pasted document must not cost more than a prompt)
_WORD = re.compile(r"[^\W\d_]{5,}")
_SUFFIXES = ("ing", "ed")

# Real words one edit away from a term word are never "corrected" (weight is not a typo of weigh, planets not of
# plantes): the generated list in data/typo_real_words.txt (scripts/real_words.py) and these.
HAND_REAL_WORDS = frozenset(
    "weight weights weighted weighing weighs crush crushes plant plants planet planets planes planed plane proofs "
    "prover provers proven audio audits auditor trace traces tracer racing former designer designs resign resigns "
    "resigned designate reason reasons season seasons treason hanger hangar hanged hinges fails flake flaky "
    "flanked ponders powder wonder deeply depth depths thinks though thought through thorough threw think "
    "roadmaps debugger debuggers architects crashy other worth whether either".split())
REAL_WORDS_FILE = Path(__file__).resolve().parents[1] / "data" / "typo_real_words.txt"


def real_words() -> frozenset[str]:
    try:
        lines = REAL_WORDS_FILE.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    return HAND_REAL_WORDS | frozenset(w for line in lines if not line.startswith("#") for w in line.split())


@dataclass
class TypoIndex:
    vocab: frozenset[str] = frozenset()  # term words of 5+ letters, as written in terms
    real: frozenset[str] = frozenset()  # real words one edit from a term word: never corrected
    # a word or one of its one-letter deletions -> the vocab word (most keys have one: a str, no tuple to allocate)
    deletes: dict[str, str | tuple[str, ...]] = field(default_factory=dict)

    def lookup(self, word: str) -> str | None:
        """The term word one edit from ``word`` (or from its stem, the suffix kept: "diagnsoed" -> "diagnosed"),
        else None. When several are one edit away, the first in sorted order (deterministic)."""
        if word in self.vocab or word in self.real:
            return None
        fix = self._lookup(word)
        if fix is None:
            for suf in _SUFFIXES:
                stem = word[:-len(suf)]
                if word.endswith(suf) and len(stem) >= MIN_LEN and stem not in self.vocab and (fix := self._lookup(stem)):
                    return fix + suf
        return fix

    def _lookup(self, word: str) -> str | None:
        found: list[str] = []
        for key in (word, *(word[:i] + word[i + 1:] for i in range(len(word)))):
            hit = self.deletes.get(key, ())
            for v in (hit,) if isinstance(hit, str) else hit:
                if v not in found and one_edit(word, v):
                    found.append(v)
        return min(found) if found else None


def _is_plain(word: str) -> bool:
    return len(word) >= MIN_LEN and word.isalpha() and all(ord(ch) < 0x2E80 for ch in word)


def build_index(terms: list[str]) -> TypoIndex:
    vocab: set[str] = set()
    for term in terms:
        words = term.split()
        vocab.update(w for w in words if _is_plain(w))
    deletes: dict[str, list[str]] = {}
    for v in sorted(vocab):
        for key in {v, *(v[:i] + v[i + 1:] for i in range(len(v)))}:
            deletes.setdefault(key, []).append(v)
    return TypoIndex(frozenset(vocab), real_words(), {k: vs[0] if len(vs) == 1 else tuple(vs)
                                                      for k, vs in deletes.items()})


def one_edit(a: str, b: str) -> bool:
    """Damerau (optimal string alignment) distance exactly 1."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):  # one insertion
        return a[i:] == b[i + 1:]
    if a[i + 1:] == b[i + 1:]:  # one substitution
        return True
    return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]  # transposition


def correct(low: str, index: TypoIndex) -> tuple[str, list[int] | None, list[tuple[int, int, str]]]:
    """(corrected text, position map or None, [(start, end, corrected word)] in ``low``'s positions)."""
    if not index.deletes:
        return low, None, []
    fixes: list[tuple[int, int, str]] = []
    for n, m in enumerate(_WORD.finditer(low)):
        if n >= MAX_WORDS:
            break
        word = m.group(0)
        if len(word) > 40:  # far longer than any term word; its deletions would cost len(word)**2
            continue
        if not word.isascii() and any(ord(ch) >= 0x2E80 for ch in word):
            continue
        fix = index.lookup(word)
        if fix is not None:
            fixes.append((m.start(), m.end(), fix))
    if not fixes:
        return low, None, []
    parts: list[str] = []
    pos: list[int] = []
    last = 0
    for s, e, fix in fixes:
        parts.append(low[last:s])
        pos.extend(range(last, s))
        parts.append(fix)
        pos.extend([min(s + k, e - 1) for k in range(len(fix) - 1)] + [e - 1])  # the fix's end is the word's
        last = e
    parts.append(low[last:])
    pos.extend(range(last, len(low) + 1))  # one past the end maps to the end
    return "".join(parts), pos, fixes
