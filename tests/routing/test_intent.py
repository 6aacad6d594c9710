"""Typo tolerance (edit distance 1 for words of 5+ letters), the small-task guard, and the learned intent signal."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmproxy import config, routing
from llmproxy.routing import typos
from tests.routing import shapes as S

CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)
KG = PS["intelligent"].kg


def decide(text: str, profile: str = "intelligent"):
    return routing.decide(S.main_turn(text), PS[profile], CFG, PS)


# ------------------------------------------------------------------------------------------------ typos

@pytest.mark.parametrize("text,concept,term,typo", [
    ("thnik about whether the retry belongs in the client", "thinking", "think about", "think"),
    ("diagnsoe the crash in the importer", "debugging", "diagnose", "diagnose"),
    ("investigaet why the job stalls", "debugging", "investigate why", "investigate"),
    ("we need an architecure for the billing events", "design", "architecture", "architecture"),
    ("list the tradoffs of both queues", "tradeoffs", "tradeoffs", "tradeoffs"),
    ("troubleshot the flaky deploy", "debugging", "troubleshoot", "troubleshoot"),
    ("roadmpa for the v2 launch", "planning", "roadmap", "roadmap"),
])
def test_typos_of_terms_match_and_say_so(text, concept, term, typo):
    d = decide(text)
    assert d.concept == concept, d.reasons
    m = next(m for m in d.matches if m.concept == concept and not m.suppressed)
    assert (m.term, m.typo) == (term, typo) and m.surface and m.surface != m.term
    assert f"as {m.surface!r}" in d.reasons[0] and f"typo of {typo!r}" in d.reasons[0]


@pytest.mark.parametrize("text", [
    "the weight of each shard",  # weight is a word, not a typo of weigh
    "the planets align",  # nor planets one of plantes
    "plam the sprint",  # 4-letter words are not guessed at (plan)
    "a dsign token",  # nor is a 5-letter term misspelt down to 4 letters
])
def test_real_words_and_short_words_are_not_corrected(text):
    assert decide(text).scenario == "default"


ROUTING_WORDS = sorted({w for c in KG.concepts.values() if not c.absorber for t in c.terms for w in [t]
                        if w.isascii() and w.isalpha() and " " not in w})
LONG = [w for w in ROUTING_WORDS if len(w) >= 5]
SHORT = [w for w in ROUTING_WORDS if len(w) == 4]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@st.composite
def one_edit(draw, words, kinds=("sub", "ins", "del", "swap")):
    w = draw(st.sampled_from(words))
    kind = draw(st.sampled_from(kinds))
    i = draw(st.integers(0, len(w) - 1))
    ch = draw(st.sampled_from(LETTERS))
    if kind == "sub":
        out = w[:i] + ch + w[i + 1:]
    elif kind == "ins":
        out = w[:i] + ch + w[i:]
    elif kind == "del":
        out = w[:i] + w[i + 1:]
    else:
        i = min(i, len(w) - 2)
        out = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    return w, out


@settings(max_examples=300, deadline=None)
@given(one_edit(LONG))
def test_any_single_edit_of_a_long_term_still_matches(pair):
    term, edited = pair
    assume(len(edited) >= typos.MIN_LEN and edited not in KG.typos.real)
    # unambiguous: no other term word is one edit away too (entirf: entwirf or entire)
    assume(edited == term or [v for v in KG.typos.vocab if typos.one_edit(edited, v)] == [term])
    best, matches = KG.match(edited)
    assert any(not m.suppressed and m.start == 0 and m.end == len(edited) for m in matches), (term, edited, matches)


@settings(max_examples=200, deadline=None)
@given(one_edit(SHORT, ("sub", "swap")))
def test_four_letter_terms_do_not_fuzzy_match(pair):
    _term, edited = pair
    _best, matches = KG.match(edited)
    assert all(not m.typo for m in matches), matches


def test_words_examined_are_bounded():
    text = "zzzzz " * (typos.MAX_WORDS + 10) + "diagnsoe the crash"
    fixed, _pos, fixes = typos.correct(text, KG.typos)
    assert fixes == [] and fixed == text  # the typo sits past the words examined


# ------------------------------------------------------------------------------------------ small tasks

@pytest.mark.parametrize("text", [
    "enable debug logging for the payments client",
    "turn on the debug toolbar in settings",
    "rename the debug helper to trace_helper",
    "bump the design package to 3.2",
    "kannst du das debug-logging im worker einschalten?",
    "schalte den debug-modus im dev-profil ein",
    "zet de debug optie aan voor de tests",
    "activa el modo debug en el entorno de staging",
    "ativa o debug no docker-compose de dev",
    "abilita il debug per il modulo ordini",
    "active le debug dans la config du worker",
    "把 worker 的 debug 开关打开",
    "デバッグログを有効にして",
    "включи debug для воркера",
])
def test_small_edit_with_a_trigger_word_in_its_object_stays_default(text):
    d = decide(text)
    assert d.scenario == "default", d.reasons
    assert any("small edit" in r for r in d.reasons)


@pytest.mark.parametrize("text,concept", [
    ("add logging and debug why the worker stalls", "debugging"),
    ("enable the cache, then figure out why it leaks", "debugging"),
    ("rename the module and rethink the architecture of the importer", "design"),
    ("set up a plan for the migration", "planning"),
    ("debug the login flow", "debugging"),
    ("why does enabling debug logging make the worker crash?", "debugging"),
])
def test_requests_around_small_edits_still_escalate(text, concept):
    assert decide(text).concept == concept
