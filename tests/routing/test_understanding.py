"""Masking, negation/hedging, names and values, derived forms, CJK, and the why-not explanation."""

from __future__ import annotations

import pytest

from llmproxy import config, routing
from llmproxy.routing.mask import mask
from llmproxy.routing.whynot import why_not

CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)
KG = PS["intelligent"].kg


@pytest.mark.parametrize("text,kind", [
    ("fix `plan()` here", "code"), ("```\ndesign = 1\n```\nformat it", "code"),
    ('commit as "redesign the header"', "quoted text"), ("see https://x.org/design/plan", "url"),
    ("edit docs/design/intro.md", "path"), ("run it with --debug", "flag"), ("set DEBUG=1", "assignment"),
    ("CI: Error: planning stage failed. rerun", "log line"), ("把标题「设计方针」改掉", "quoted text"),
])
def test_masked_spans(text, kind):
    masked, spans = mask(text)
    assert len(masked) == len(text) and any(k == kind for _, _, k in spans)
    best, matches = KG.match(text)
    assert best is None and all(m.suppressed for m in matches)


@pytest.mark.parametrize("text,rule", [
    ("not a design question, just move it", "negated"),
    ("I don't think we need a whole plan", "negated"),
    ("no need to debug it, fix line 4", "negated"),
    ("kein großer Plan nötig", "negated"),
    ("设计不需要，直接改名", "negated"),
    ("add a plan column", "name or value"),
    ("Plan B stays", "proper name"),
    ("set the log level to debug", "log-level"),
    ("run terraform plan", "name or value"),
    ("don't overplan it", "hedge"),
    ("you're over-designing this", "hedge"),
])
def test_suppression_rules_are_named(text, rule):
    best, matches = KG.match(text)
    assert best is None
    assert any(m.suppressed and rule in m.suppressed for m in matches), matches


@pytest.mark.parametrize("text,concept,surface", [
    ("rethink the retry policy", "design", ""),
    ("we should redesign this", "design", "redesign"),
    ("rearchitect the importer", "design", "rearchitect"),
    ("replan the sprint around it", "planning", "replan"),
    ("keep debugging the loader", "debugging", ""),
    ("don't just patch it — work out why it fails", "debugging", ""),
    ("no quick fix; figure out why it leaks", "debugging", ""),
    ("分析一下这个死锁的根本原因", "debugging", ""),
    ("トレードオフを検討して", "tradeoffs", ""),
    ("plane die Migration auf Postgres", "planning", ""),
    ("diseña una arquitectura para colas", "design", ""),
    ("analisa a causa raiz do timeout", "debugging", ""),
])
def test_fires_and_names_the_term(text, concept, surface):
    best, matches = KG.match(text)
    assert best is not None and best.name == concept, matches
    m = next(m for m in matches if m.concept == concept and not m.suppressed)
    assert m.surface == surface


def test_decision_reasons_name_the_suppressing_rule():
    from tests.routing import shapes as S
    d = routing.decide(S.main_turn('commit "plan v2", then debug the flaky login'), PS["intelligent"], CFG, PS)
    assert d.concept == "debugging"
    assert any("'plan' (planning) suppressed: inside quoted text" in r for r in d.reasons)
    assert d.to_dict()["matches"][0]["suppressed"] == "inside quoted text"


@pytest.mark.parametrize("concept,text,reason", [
    ("planning", "plan the work", "fires"),
    ("debugging", "debug this, then plan the fix", "lower priority"),
    ("planning", "add a plan column", "suppressed"),
    ("planning", 'commit "plan it"', "masked"),
    ("planning", "open planet.txt", "masked"),
    ("planning", "the planets align", "boundary"),
    ("thinking", "i think we should think about it", "fires"),
    ("tradeoffs", "what is faster", "no term"),
    ("nope", "x", "unknown concept"),
])
def test_why_not(concept, text, reason):
    w = why_not(KG, concept, text)
    assert w.reason == reason, str(w)
    assert w.fired == (reason == "fires")
    assert concept in str(w)


def test_why_not_absorbed():
    w = why_not(PS["balanced"].kg, "architecture", "i think so")
    assert w.reason == "no term"
    kg = PS["intelligent"].kg
    w = why_not(kg, "design", "the design system page")
    assert w.reason == "absorbed" and "casual" in w.detail
