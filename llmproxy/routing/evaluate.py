"""Score the keyword routing of bundled profiles on a labelled prompt set (``tests/routing/prompts.jsonl``).

Each prompt is one JSON object: ``id``, ``split`` (``tune`` or ``heldout``), ``profile``, ``label`` (the
concept that should fire, or ``none``), ``lang``, ``kind`` (``trap``, ``intent`` or ``plain``), ``class`` and
``text``. Each text is sent through ``decide()`` as the human text of a Claude Code-shaped main turn, so the
whole path (turn scoping, masking, negation, the automaton) is measured, not the matcher alone.

Two measures: *escalation* (did the request leave the default model for a keyword concept at all — the
bar) and *per concept* (did exactly the labelled concept win).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from llmproxy.config import Config
from llmproxy.routing.decide import CompiledProfile, decide

NONE = "none"
INTENT = "intent"  # escalated by the learned signal alone (no concept): counts as an escalation, never as a concept


@dataclass(frozen=True)
class Result:
    row: dict
    got: str  # winning concept or "none"
    term: str | None
    reasons: tuple[str, ...]

    @property
    def expected(self) -> str:
        return self.row["label"]

    @property
    def ok(self) -> bool:
        return self.got == self.expected


def load(path: str | Path) -> list[dict]:
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            row.setdefault("line", n)
            rows.append(row)
    return rows


def claude_code_turn(text: str) -> dict:
    """A first-turn main request in Claude Code's shape: a date reminder, then the human text."""
    return {"model": "claude-opus-4-8", "max_tokens": 64000, "stream": True, "thinking": {"type": "adaptive"},
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc; cc_entrypoint=cli;"},
                       {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}],
            "tools": [{"name": "Bash", "description": "Run a command.", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nToday's date is 2026-01-01.\n</system-reminder>\n"},
                {"type": "text", "text": text}]}]}


def run(rows: Iterable[dict], cfg: Config, profiles: Mapping[str, CompiledProfile]) -> list[Result]:
    out = []
    for row in rows:
        body = claude_code_turn(row["text"])
        d = decide(body, profiles[row["profile"]], cfg, profiles, raw_len=len(row["text"]) + 600)
        got = (d.concept or (INTENT if d.signal.startswith("intent:") else NONE)) if d.scenario == "keyword" else NONE
        term = next((m.term for m in d.matches if m.concept == d.concept), None) if d.concept else None
        out.append(Result(row, got, term, tuple(d.reasons)))
    return out


def pr(tp: int, fp: int, fn: int) -> tuple[float, float]:
    """(precision, recall); 1.0 when the denominator is empty (nothing claimed / nothing to find)."""
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def escalation(results: Iterable[Result]) -> dict:
    """Binary: escalated (any concept) vs labelled to escalate."""
    tp = fp = fn = tn = 0
    for r in results:
        want, got = r.expected != NONE, r.got != NONE
        tp += want and got
        fp += got and not want
        fn += want and not got
        tn += not want and not got
    p, rc = pr(tp, fp, fn)
    return {"precision": p, "recall": rc, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "n": tp + fp + fn + tn}


def per_concept(results: list[Result]) -> dict[tuple[str, str], dict]:
    """(profile, concept) -> exact-concept precision/recall and support."""
    keys = sorted({(r.row["profile"], c) for r in results for c in (r.expected, r.got) if c not in (NONE, INTENT)})
    table = {}
    for prof, concept in keys:
        rs = [r for r in results if r.row["profile"] == prof]
        tp = sum(r.got == concept and r.expected == concept for r in rs)
        fp = sum(r.got == concept and r.expected != concept for r in rs)
        fn = sum(r.expected == concept and r.got != concept for r in rs)
        p, rc = pr(tp, fp, fn)
        table[(prof, concept)] = {"precision": p, "recall": rc, "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}
    return table


def report(results: list[Result], title: str) -> str:
    lines = [f"== {title}: {len(results)} prompts "
             f"({sum(r.row.get('kind') == 'trap' for r in results)} traps, "
             f"{sum(r.row['lang'] != 'en' for r in results)} not in English)"]
    lines.append(f"{'profile/concept':<28} {'prec':>5} {'rec':>5} {'supp':>5}")
    for (prof, concept), m in per_concept(results).items():
        lines.append(f"{prof + '/' + concept:<28} {m['precision']:5.2f} {m['recall']:5.2f} {m['support']:5d}")
    groups = [("intelligent, all", [r for r in results if r.row["profile"] == "intelligent"]),
              ("intelligent, non-English", [r for r in results if r.row["profile"] == "intelligent"
                                            and r.row["lang"] != "en"]),
              ("intelligent, traps", [r for r in results if r.row["profile"] == "intelligent"
                                      and r.row.get("kind") == "trap"]),
              ("all profiles", results)]
    for name, rs in groups:
        e = escalation(rs)
        lines.append(f"escalation [{name}]: precision {e['precision']:.3f} recall {e['recall']:.3f} "
                     f"(tp {e['tp']} fp {e['fp']} fn {e['fn']} tn {e['tn']})")
    acc = sum(r.ok for r in results) / len(results) if results else 1.0
    lines.append(f"exact concept accuracy: {acc:.3f} (escalated by the learned signal alone, no concept: "
                 f"{sum(r.got == INTENT for r in results)})")
    wrong = [r for r in results if not r.ok]
    if wrong:
        lines.append(f"confusions ({len(wrong)}):")
        for r in wrong:
            why = f" via {r.term!r}" if r.term else ""
            lines.append(f"  {r.row['id']} [{r.row['profile']}] want {r.expected} got {r.got}{why}: "
                         f"{r.row['text'][:90]!r}")
    return "\n".join(lines)
