"""Typo tolerance (edit distance 1 for words of 5+ letters), the small-task guard, and the learned intent signal."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmproxy import config, routing
from llmproxy.routing import intent, typos
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


# ------------------------------------------------------------------------------------- the learned signal

MODEL = PS["intelligent"].intent


def test_the_model_ships_in_the_package_and_loads():
    import importlib.resources
    import tomllib
    from fnmatch import fnmatch
    from pathlib import Path

    res = importlib.resources.files("llmproxy").joinpath("data/intent_model.json")
    assert res.is_file()
    model = intent.loads(res.read_text(encoding="utf-8"))
    assert len(model.weights) == 1 << model.bits and model.trained_on
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["llmproxy"]
    assert any(fnmatch("data/intent_model.json", p) for p in patterns)
    assert any(fnmatch("data/typo_real_words.txt", p) for p in patterns)
    assert MODEL is not None and PS["fast"].intent is None  # only the profile that sets a threshold loads it


def test_scores_do_not_depend_on_the_process_hash_seed():
    import subprocess
    import sys
    code = ("from llmproxy.routing import intent; m = intent.load(); "
            "print(repr(m.score('why would the retry fire twice after a timeout on the gateway')))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout for seed in ("1", "2")}
    assert len(outs) == 1
    assert float(outs.pop()) == MODEL.score("why would the retry fire twice after a timeout on the gateway")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=3000))
def test_score_bounds_and_reading(text):
    r = MODEL.read(text)
    assert 0.0 <= r.score <= 1.0 and r.words >= 0 and len(r.top) <= 3
    assert r == MODEL.read(text)  # deterministic
    assert len(intent.prepare(text)) <= intent.MAX_CHARS + 1


def constant(score: float) -> intent.IntentModel:
    """A model whose every reading is ``score`` (no weights, only the bias)."""
    from array import array
    return intent.IntentModel(4, math.log(score / (1 - score)), 1.0, array("b", bytes(16)), "constant")


GRAPH_LONG = "please debug the flaky login test in the auth package today"  # 11 words, graph: debugging
GRAPH_SHORT = "debug the login"
PLAIN_LONG = "the numbers in the weekly report look off for some users again"  # 12 words, no graph term
PLAIN_SHORT = "numbers look off"


@pytest.mark.parametrize("text,score,scenario,concept,signal", [
    (GRAPH_LONG, 0.50, "keyword", "debugging", "keyword:debugging"),  # the graph decides, no veto
    (GRAPH_LONG, 0.10, "keyword", "debugging", "keyword:debugging"),  # at the veto: not below it
    (GRAPH_LONG, 0.05, "default", None, "keyword:debugging vetoed by intent 0.05"),  # small task: vetoed
    (GRAPH_SHORT, 0.05, "keyword", "debugging", "keyword:debugging"),  # too short to veto
    (PLAIN_LONG, 0.95, "keyword", None, "intent:0.95"),  # the learned signal alone
    (PLAIN_LONG, 0.90, "default", None, ""),  # below the threshold
    (PLAIN_SHORT, 0.99, "default", None, ""),  # too short to escalate on its own
])
def test_the_combination_rule(text, score, scenario, concept, signal):
    from dataclasses import replace
    base = PS["intelligent"]
    prof = replace(base, config=replace(base.config, intent_threshold=0.92, intent_veto=0.10), intent=constant(score))
    d = routing.decide(S.main_turn(text), prof, CFG, PS)
    assert (d.scenario, d.concept, d.signal) == (scenario, concept, signal), d.reasons
    assert d.intent == pytest.approx(score)
    assert any(f"{score:.2f}" in r for r in d.reasons)
    if signal:
        assert f"signal={signal}" in d.header() and d.to_dict()["signal"] == signal


def test_route_reasons_name_the_score_and_top_features():
    d = decide("so the weekly report sometimes counts sunday's orders twice for users in sydney, what is going on")
    assert d.intent is not None and d.signal
    line = next(r for r in d.reasons if "intent" in r)
    assert f"{d.intent:.2f}" in line and "top features" in line


def test_profiles_without_a_threshold_never_read_the_model():
    d = decide(PLAIN_LONG, "fast")
    assert d.intent is None and d.signal == "" and "intent" not in d.to_dict()


@pytest.mark.parametrize("text,rule", [
    ("I don't think this needs any architecture work at all, just inline the helper", "negated"),
    ("please add a plan column to the invoices table and backfill it from the old data", "name or value"),
    ("enable debug logging for the payments client in the staging environment today", "small edit"),
])
def test_a_context_rule_of_the_graph_wins_over_the_learned_signal(text, rule):
    from dataclasses import replace
    base = PS["intelligent"]
    prof = replace(base, config=replace(base.config, intent_threshold=0.92, intent_veto=0.10), intent=constant(0.99))
    d = routing.decide(S.main_turn(text), prof, CFG, PS)
    assert (d.scenario, d.signal) == ("default", ""), d.reasons
    assert any("does not escalate: the graph suppressed" in r and rule in r for r in d.reasons), d.reasons


def test_a_masked_trigger_does_not_stop_the_learned_signal():
    from dataclasses import replace
    base = PS["intelligent"]
    prof = replace(base, config=replace(base.config, intent_threshold=0.92, intent_veto=0.10), intent=constant(0.99))
    d = routing.decide(S.main_turn('we keep getting "deadlock detected" in the nightly import, where would that come '
                                   'from'), prof, CFG, PS)
    assert d.signal == "intent:0.99", d.reasons
