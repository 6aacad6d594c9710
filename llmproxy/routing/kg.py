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


class KGError(Exception):
    pass


@dataclass(frozen=True)
class Concept:
    name: str
    source: str
    terms: tuple[str, ...]
    routes: tuple[Target, ...] = ()
    scenario: str | None = None
    priority: int = 50

    @property
    def absorber(self) -> bool:
        return not self.routes and not self.scenario


@dataclass(frozen=True)
class Match:
    term: str
    concept: str
    start: int
    end: int


@dataclass
class KnowledgeGraph:
    concepts: dict[str, Concept] = field(default_factory=dict)
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # (term, kept concept, dropped)
    _automaton: object | None = None

    @property
    def term_count(self) -> int:
        return sum(len(c.terms) for c in self.concepts.values())

    def match(self, text: str) -> tuple[Concept | None, list[Match]]:
        """(winning routing concept or None, all selected matches in text order)."""
        if self._automaton is None or not text:
            return None, []
        low = text.lower()
        n = len(low)
        cands = []
        for end, (term, concept) in self._automaton.iter(low):  # type: ignore[attr-defined]
            start = end - len(term) + 1
            if start > 0 and _is_word(low[start - 1]):
                continue
            after = end + 1
            if after < n and (_is_word(low[after]) or (low[after] == "." and after + 1 < n and low[after + 1].isalnum())):
                continue
            cands.append((start, -len(term), term, concept))
        cands.sort()
        chosen: list[Match] = []
        last_end = -1
        for start, neg_len, term, concept in cands:
            if start >= last_end:
                chosen.append(Match(term, concept, start, start - neg_len))
                last_end = start - neg_len
        best: Concept | None = None
        for m in chosen:
            c = self.concepts[m.concept]
            if not c.absorber and (best is None or c.priority > best.priority):
                best = c
        return best, chosen


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


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
                raise KGError(f"{where}: route:: {exc}") from None
        elif key == "scenario":
            if value not in SCENARIOS:
                raise KGError(f"{where}: scenario:: unknown scenario {value!r} (known: {', '.join(SCENARIOS)})")
            scenario = value
        elif key == "priority":
            try:
                priority = int(value)
            except ValueError:
                raise KGError(f"{where}: priority:: expected a whole number 0-100, got {value!r}") from None
            if not 0 <= priority <= 100:
                raise KGError(f"{where}: priority:: must be between 0 and 100, got {priority}")
    seen: dict[str, None] = {}
    for t in terms:
        seen.setdefault(" ".join(t.split()), None)
    return Concept(name=name, source=str(path), terms=tuple(seen), routes=tuple(routes), scenario=scenario,
                   priority=priority)


def build(concepts: list[Concept]) -> KnowledgeGraph:
    kg = KnowledgeGraph()
    owner: dict[str, str] = {}
    auto = ahocorasick.Automaton()
    for c in concepts:
        kg.concepts[c.name] = c
        for term in c.terms:
            if term in owner:
                kg.duplicates.append((term, owner[term], c.name))
                continue
            owner[term] = c.name
            auto.add_word(term, (term, c.name))
    if owner:
        auto.make_automaton()
        kg._automaton = auto
    return kg


def load_dir(directory: str | Path) -> KnowledgeGraph:
    d = Path(directory)
    if not d.is_dir():
        raise KGError(f"{d}: knowledge-graph directory not found")
    return build([parse_concept(p) for p in sorted(d.glob("*.md"))])
