"""Explain a miss: ``why_not(kg, concept, text)`` says which term of ``concept`` came closest to firing on
``text`` and why it did not — it fired after all, it lost on priority, a context rule suppressed it, it was
absorbed by a longer match, it sat inside a word (boundary) or inside masked text, or no term occurs at all
(then the most similar term and words are named). Pure; backs ``llmproxy route-test --why-not CONCEPT "text"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from llmproxy.routing.kg import KnowledgeGraph, Match
from llmproxy.routing.mask import mask, span_kind


@dataclass(frozen=True)
class WhyNot:
    concept: str
    fired: bool
    term: str | None  # the closest term of the concept
    reason: str  # one of: fires, lower priority, suppressed, absorbed, boundary, masked, no term
    detail: str

    def __str__(self) -> str:
        """``planning fires — matched 'plan' at 0``; ``planning does not fire (no term) — no term of …``."""
        head = f"{self.concept} fires" if self.fired else f"{self.concept} does not fire ({self.reason})"
        return f"{head} — {self.detail}"


def why_not(kg: KnowledgeGraph, concept: str, text: str) -> WhyNot:
    c = kg.concepts.get(concept)
    if c is None:
        return WhyNot(concept, False, None, "unknown concept",
                      f"the profile's KG has no concept {concept!r} (it has: {', '.join(sorted(kg.concepts))})")
    best, matches = kg.match(text)
    mine = [m for m in matches if m.concept == concept]
    live = [m for m in mine if m.suppressed is None]
    if live:
        m = live[0]
        if best is not None and best.name == concept:
            return WhyNot(concept, True, m.term, "fires", f"matched {_at(text, m)}")
        assert best is not None
        return WhyNot(concept, False, m.term, "lower priority",
                      f"matched {_at(text, m)}, but {best.name!r} (priority {best.priority}) outranks it "
                      f"(priority {c.priority}; equal priority goes to the earlier match)")
    if mine:
        m = mine[0]
        kind = "masked" if m.suppressed and m.suppressed.startswith("inside ") else "suppressed"
        return WhyNot(concept, False, m.term, kind, f"{_at(text, m)} " + (m.suppressed if kind == "masked" else
                                                                          f"is suppressed: {m.suppressed}"))
    low = text.lower()
    # occurrences the boundary rules or a longer match took away
    masked, spans = mask(text)
    for term in sorted(c.terms, key=len, reverse=True):
        i = low.find(term)
        if i < 0:
            continue
        j = i + len(term)
        kind = span_kind(spans, i, j)
        if kind:
            return WhyNot(concept, False, term, "masked", f"{text[i:j]!r} at {i} is inside {kind}")
        over = next((m for m in matches if m.start < j and i < m.end), None)
        if over is not None:
            return WhyNot(concept, False, term, "absorbed",
                          f"{text[i:j]!r} at {i} lies inside the longer/earlier match {over.term!r} of "
                          f"{over.concept!r}" + (" (an absorber)" if kg.concepts[over.concept].absorber else ""))
        s, e = i, j
        while s > 0 and (low[s - 1].isalnum() or low[s - 1] == "_"):
            s -= 1
        while e < len(low) and (low[e].isalnum() or low[e] in "_."):
            e += 1
        return WhyNot(concept, False, term, "boundary",
                      f"{term!r} occurs only inside {text[s:e]!r} (terms match whole words; a term followed by "
                      f"'.' and a letter is a file name)")
    term, words, ratio = _closest(c.terms, low)
    return WhyNot(concept, False, term, "no term",
                  f"no term of {concept!r} occurs; closest is {term!r} ~ {words!r} (similarity {ratio:.2f})"
                  if term else f"no term of {concept!r} occurs")


def _at(text: str, m: Match) -> str:
    return f"{text[m.start:m.end]!r} at {m.start}"


def _closest(terms: tuple[str, ...], low: str) -> tuple[str | None, str, float]:
    words = low.split()
    best: tuple[str | None, str, float] = (None, "", 0.0)
    for term in terms:
        n = max(1, len(term.split()))
        for k in range(max(1, len(words) - n + 1)):
            window = " ".join(words[k:k + n])
            r = SequenceMatcher(None, term, window).ratio()
            if r > best[2]:
                best = (term, window, r)
    return best
