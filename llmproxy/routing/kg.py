"""The keyword knowledge graph: Terraphim-style concept files compiled into one Aho-Corasick automaton.

A profile names a directory of markdown files. Each file is one concept, named by its file stem. Lines of
the form ``key:: value`` carry data: ``synonyms:: a, b, c`` (may repeat) lists the concept's terms (the
stem itself, with - and _ read as spaces, is a term too), ``route:: provider, model`` (may repeat; order =
fallback chain), ``scenario:: NAME`` (use the profile's target for that scenario) and ``priority:: 0-100``
(default 50). Unknown keys are ignored, so a Terraphim KG directory can be reused. A concept with neither
route nor scenario is an *absorber*: it consumes its phrase so nothing inside it can fire ("i think").

Matching is case-insensitive, only at word boundaries, leftmost-longest and non-overlapping; among the
concepts that route, the highest priority wins and ties go to the earliest match. This is the only
module that imports pyahocorasick; we use ``iter()`` and choose matches ourselves, since ``iter_long()``
has known wrong results in pyahocorasick 2.x.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick

from llmproxy.config import SCENARIOS, Target
from llmproxy.routing.context import suppression
from llmproxy.routing.mask import mask, span_kind
from llmproxy.routing.smalltask import small_task
from llmproxy.routing.typos import TypoIndex, build_index, correct


class KGError(Exception):
    """A knowledge-graph file that cannot be used; ``problems`` holds every one found in it, a line each."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


# request signals a concept can hook (``hook:: plan_mode``): the concept fires when the request carries it
HOOKS = ("plan_mode",)


@dataclass(frozen=True)
class Concept:
    name: str
    source: str
    terms: tuple[str, ...]
    routes: tuple[Target, ...] = ()
    scenario: str | None = None
    priority: int = 50
    hooks: tuple[str, ...] = ()  # request signals that fire this concept without a term (plan_mode)

    @property
    def absorber(self) -> bool:
        return not self.routes and not self.scenario


@dataclass(frozen=True)
class Match:
    term: str
    concept: str
    start: int
    end: int
    surface: str = ""  # the text as written when it differs from the term (a derived form: "rethinking")
    suppressed: str | None = None  # the rule that kept this match from firing
    typo: str = ""  # the term word a misspelt word of the text was read as ("thnik" -> "think")


# derived forms: a prefix before a term's first word, an inflection after its last word
PREFIXES = ("re-", "re", "over-", "over")
SUFFIXES = ("s", "es", "ed", "d", "ing")
HEDGE_PREFIXES = ("over",)  # "overthink", "over-engineer": too much of it, not a request for it


@dataclass
class KnowledgeGraph:
    concepts: dict[str, Concept] = field(default_factory=dict)
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # (term, kept concept, dropped)
    hooks: dict[str, Concept] = field(default_factory=dict)  # request signal (e.g. plan_mode) -> concept
    _automaton: object | None = None
    typos: TypoIndex = field(default_factory=TypoIndex)

    @property
    def term_count(self) -> int:
        return sum(len(c.terms) for c in self.concepts.values())

    def candidates(self, low: str) -> list[tuple[int, int, str, str, str]]:
        """Every boundary-respecting occurrence in ``low``: (start, end, term, concept, how it was written)."""
        n = len(low)
        out = []
        if self._automaton is None:  # a profile without a knowledge graph
            return out
        for last, (term, concept) in self._automaton.iter(low):  # type: ignore[attr-defined]
            start, end = last - len(term) + 1, last + 1
            form = ""
            if start > 0 and not _is_cjk(term[0]) and _is_word(low[start - 1]):
                pre = next((p for p in PREFIXES if low.startswith(p, start - len(p))
                            and (start - len(p) == 0 or not _is_word(low[start - len(p) - 1]))), None)
                if pre is None:
                    continue
                start -= len(pre)
                form = pre
            elif start > 0 and low[start - 1] == "-" and low[max(0, start - 3):start] == "re-" and (
                    start == 3 or not _is_word(low[start - 4])):
                start -= 3
                form = "re-"
            elif start > 0 and low[start - 1] == "-" and low[max(0, start - 5):start] == "over-" and (
                    start == 5 or not _is_word(low[start - 6])):
                start -= 5
                form = "over-"
            if end < n and not _is_cjk(term[-1]):
                if _is_word(low[end]):
                    end = _inflected_end(low, end, term)
                    if end < 0:
                        continue
                    form = form or "+"
                elif low[end] == "." and end + 1 < n and low[end + 1].isalnum():
                    continue  # a file name (plan.md), not a request
            out.append((start, end, term, concept, form))
        return out

    def match(self, text: str) -> tuple[Concept | None, list[Match]]:
        """(winning routing concept or None, all selected matches in text order, suppressed ones included)."""
        if self._automaton is None or not text:
            return None, []
        masked, spans = mask(text)
        low = masked.lower()
        cands = [(s, -(e - s), bool(form) + bool(fix), term, concept, e, form, fix)
                 for s, e, term, concept, form, fix in self._typo_candidates(low)]
        cands.sort()
        chosen: list[Match] = []
        last_end = -1
        for start, _neg, _derived, term, concept, end, form, fix in cands:
            if start < last_end:
                continue
            last_end = end
            c = self.concepts[concept]
            surface = text[start:end] if form or fix else ""
            why = None
            if not c.absorber:
                if form.rstrip("-") in HEDGE_PREFIXES:
                    why = f"{form!r} prefix reads as too much of it (hedge)"
                else:
                    why = suppression(low, masked, start, end)
                if why is None and " " not in term:
                    why = small_task(low, start, end)
            chosen.append(Match(term, concept, start, end, surface, why, fix))
        if spans:
            chosen += self._masked_matches(text, spans, chosen)
            chosen.sort(key=lambda m: m.start)
        best: Concept | None = None
        for m in chosen:
            c = self.concepts[m.concept]
            if not c.absorber and m.suppressed is None and (best is None or c.priority > best.priority):
                best = c
        return best, chosen

    def _typo_candidates(self, low: str) -> list[tuple[int, int, str, str, str, str]]:
        """``candidates`` with misspelt words read as the term words they are one edit from; a match that covers
        a corrected word carries that word (positions are mapped back into ``low``)."""
        fixed, pos, fixes = correct(low, self.typos)
        if pos is None:
            return [(s, e, term, concept, form, "") for s, e, term, concept, form in self.candidates(low)]
        out = []
        for s, e, term, concept, form in self.candidates(fixed):
            s0, e0 = pos[s], pos[e - 1] + 1
            fix = next((w for a, b, w in fixes if a < e0 and s0 < b), "")
            out.append((s0, e0, term, concept, form, fix))
        return out

    def _masked_matches(self, text: str, spans: list, chosen: list[Match]) -> list[Match]:
        """Routing terms hidden by the mask, reported with the mask that hid them. ``chosen`` is in text order
        and its matches do not overlap, so one pointer walks it beside the candidates (linear, not one scan of
        ``chosen`` per candidate)."""
        out: list[Match] = []
        taken = [(m.start, m.end) for m in chosen]
        j, last_end = 0, -1
        for s, e, term, concept, _form in sorted(self.candidates(text.lower()), key=lambda c: (c[0], c[0] - c[1])):
            while j < len(taken) and taken[j][1] <= s:
                j += 1
            if s < last_end or self.concepts[concept].absorber or (j < len(taken) and taken[j][0] < e):
                continue
            kind = span_kind(spans, s, e)
            if kind:
                last_end = e
                out.append(Match(term, concept, s, e, "", f"inside {kind}"))
        return out


def _inflected_end(low: str, end: int, term: str) -> int:
    """End of ``term`` + an inflection at ``end`` (plans, planned, planning, designed, debugging, diagnosing),
    or -1 when the word goes on otherwise (planet, planner, designer)."""
    n = len(low)
    base_last = term[-1]
    for suf in SUFFIXES:
        for stem_extra in ("", base_last):  # consonant doubling: plan-n-ed, debug-g-ing
            if stem_extra and (suf in ("s", "d") or not base_last.isalpha() or base_last in "aeiouwxy"):
                continue
            piece = stem_extra + suf
            e = end + len(piece)
            if low.startswith(piece, end) and (e >= n or not _is_word(low[e])):
                return e
    return -1


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF66 <= o <= 0xFF9F
            or 0xAC00 <= o <= 0xD7A3)  # Hangul syllables: Korean attaches endings to the word (설계해줘)


def parse_concept(path: Path) -> Concept:
    """Read one concept file; raises KGError naming file and line for malformed data lines."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KGError(f"{path}: cannot read: {exc}") from None
    name = path.stem
    terms: list[str] = [name.replace("-", " ").replace("_", " ").lower()]
    routes: list[Target] = []
    scenario: str | None = None
    priority = 50
    hooks: list[str] = []
    problems: list[str] = []
    for lineno, line in enumerate(lines, 1):
        key, sep, value = line.strip().partition("::")
        if not sep:
            continue
        key = key.strip().lstrip("-* ").lower()
        value = value.strip()
        where = f"{path}:{lineno}"
        if key == "synonyms":
            terms += [t.strip().lower() for t in value.split(",") if t.strip()]
        elif key == "route":
            try:
                routes.append(Target.parse(value))
            except ValueError as exc:
                problems.append(f"{where}: route:: {exc}")
        elif key == "scenario":
            if value not in SCENARIOS:
                problems.append(f"{where}: scenario:: unknown scenario {value!r} (known: {', '.join(SCENARIOS)})")
            else:
                scenario = value
        elif key == "hook":
            for h in (x.strip() for x in value.split(",")):
                if h in HOOKS:
                    hooks.append(h)
                else:
                    problems.append(f"{where}: hook:: unknown signal {h!r} (known: {', '.join(HOOKS)})")
        elif key == "priority":
            try:
                priority = int(value)
            except ValueError:
                problems.append(f"{where}: priority:: expected a whole number 0-100, got {value!r}")
                continue
            if not 0 <= priority <= 100:
                problems.append(f"{where}: priority:: must be between 0 and 100, got {priority}")
    if problems:  # every problem of the file at once: one fix-and-rerun cycle, not one per problem
        raise KGError("\n".join(problems), problems)
    seen: dict[str, None] = {}
    for t in terms:
        seen.setdefault(" ".join(t.split()), None)
    return Concept(name=name, source=str(path), terms=tuple(seen), routes=tuple(routes), scenario=scenario,
                   priority=priority, hooks=tuple(hooks))


def build(concepts: list[Concept]) -> KnowledgeGraph:
    kg = KnowledgeGraph()
    owner: dict[str, str] = {}
    auto = ahocorasick.Automaton()
    for c in concepts:
        kg.concepts[c.name] = c
        for h in c.hooks:
            kg.hooks.setdefault(h, c)
        for term in c.terms:
            if term in owner:
                kg.duplicates.append((term, owner[term], c.name))
                continue
            owner[term] = c.name
            auto.add_word(term, (term, c.name))
    if owner:
        auto.make_automaton()
        kg._automaton = auto
        kg.typos = build_index(sorted(t for t, c in owner.items() if not kg.concepts[c].absorber))
    return kg


def load_dir(directory: str | Path) -> KnowledgeGraph:
    d = Path(directory)
    if not d.is_dir():
        raise KGError(f"{d}: knowledge-graph directory not found")
    return build([parse_concept(p) for p in sorted(d.glob("*.md"))])
