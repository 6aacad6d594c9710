"""Routing in linear time: no client text can hold the event loop (issue 20, finding 1).

At ac1dd04 the mask patterns backtracked quadratically (``a.a.a…`` under the URL pattern, runs of ``.``/``-``/``@``
under the path pattern, runs of blanks under the log-line pattern) or cubically (blank lines under the stack-frame
pattern): seconds at 20 KB, minutes at the sizes that still reach keyword matching. Each check below times the
work in this process with ``time.perf_counter`` (outside any event loop) on a ladder of sizes up to 200 KB and
stops at the first rung over the bound, so the old patterns fail within seconds instead of running for minutes.
The bound is generous: the linear patterns take milliseconds to tens of milliseconds per rung.
"""

from __future__ import annotations

import dataclasses
import time

import orjson
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from llmproxy import config, routing
from llmproxy.routing import mask as masking
from llmproxy.routing.decide import MAX_KEYWORD_HITS
from llmproxy.routing.kg import KnowledgeGraph
from llmproxy.routing.text import KEYWORD_WINDOW

CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)
BOUND = 1.0  # seconds per rung
LADDER = (1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 200_000)  # doubling: a slow rung stops it soon


def _fill(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


# named worst cases: a run of one unit, maybe followed by the character that lets the run almost match
GENERATORS = {
    "dots": lambda n: _fill(".", n), "dashes": lambda n: _fill("-", n), "ats": lambda n: _fill("@", n),
    "slashes": lambda n: _fill("/", n), "blanks": lambda n: _fill(" ", n), "newlines": lambda n: _fill("\n", n),
    "blank lines": lambda n: _fill(" \n", n), "a.a.a": lambda n: _fill("a.", n), "x=x=": lambda n: _fill("x=", n),
    "foo(foo(": lambda n: _fill("foo(", n), "a-a-a": lambda n: _fill("a-", n), "a@a@": lambda n: _fill("a@", n),
    "dashes then a slash": lambda n: _fill("-", n - 2) + " /",
    "dotted name then (": lambda n: _fill("a.", n - 1) + "(",
    "dotted name then ://": lambda n: _fill("a.", n - 3) + "://",
    "scheme characters": lambda n: "a" + _fill("+", n - 1),
    "error then blanks": lambda n: "ERROR: x" + _fill(" ", n - 9) + "y",
    "error lines of blanks": lambda n: _fill("ERROR: x" + " " * 200 + "y\n", n),
    "timestamp then a word": lambda n: " 2024-01-01T1" + _fill("A", n - 13),
    "timestamp then digits and a word": lambda n: " 2024-01-01T" + _fill("1", n // 2) + _fill("A", n - n // 2 - 12),
    "name then blanks": lambda n: "a" + _fill(" ", n - 1),
    "opening quotes": lambda n: _fill("“", n - 1) + "”", "opening guillemets": lambda n: _fill("«", n),
    "opening single quotes": lambda n: _fill("‘a", n),
    "backticks": lambda n: _fill("`a", n), "fences": lambda n: _fill("`", n),
    "every trigger": lambda n: _fill("a.-@/ :(=`'\"“«\n", n),
}

UNITS = [".", "-", "@", "/", " ", "\n", " \n", "\t", "a.", "a-", "a@", "a/", "x=", "x = ", "foo(", "a.a(", "(", ")",
         "a", "A", "_", "1", "“", "”", "„", "«", "»", "「", "‘", "’", '"', "'", "`", "```", ":", "://", "http",
         "ERROR: x", "Error", "ValueError", "WARN ", " - ", " — ", ". ", ", ", "2024-01-01T1", "2024-01-01 ", "at ",
         'File "', "^", "[1", ".md", ".py", "--", "~/", "=", "a.b:12"]
# a text of long runs of a unit, each maybe followed once by a unit that completes or breaks it
pieces = st.lists(st.tuples(st.sampled_from(UNITS), st.integers(1, 4), st.sampled_from(UNITS + [""])),
                  min_size=1, max_size=4)


def _text(spec: list[tuple[str, int, str]], n: int) -> str:
    total = sum(w for _, w, _ in spec)
    return "".join(_fill(unit, n * w // total) + once for unit, w, once in spec)


def _worst_rung(work, make) -> tuple[int, float]:
    """Run ``work(make(n))`` up the ladder; (size, seconds) of the first rung over the bound, else the last."""
    for n in LADDER:
        text = make(n)
        t0 = time.perf_counter()
        work(text)
        took = time.perf_counter() - t0
        if took > BOUND:
            break
    return len(text), took


def _finditer(pat):
    return lambda text: sum(1 for _ in pat.finditer(text))


def _reversed(pat):
    return lambda text: sum(1 for _ in pat.finditer(text[::-1]))


PATTERNS = [pytest.param(_finditer(pat), id=f"{i}-{kind}") for i, (kind, _, pat) in enumerate(masking._PATTERNS)]
PATTERNS += [pytest.param(_reversed(pat), id=f"quote-{opening}") for opening, pat in masking._REVERSED_QUOTES]


@pytest.mark.parametrize("work", PATTERNS)
@example(spec=[("a.", 1, "(")])  # code call, URL, path, assignment at ac1dd04: each start rescans the run
@example(spec=[("a-", 1, " ")])  # file name with an extension
@example(spec=[("-", 1, " /")])  # path: a rule of dashes with a / further on
@example(spec=[("ERROR: x", 1, ""), (" ", 4, "y")])  # log line: a lazy scan with \s*$ over blanks
@example(spec=[("x", 1, ""), ("\n", 4, "x")])  # stack-frame line: cubic over blank lines
@example(spec=[("x", 1, " 2024-01-01T1"), ("1", 2, ""), ("A", 2, "")])  # timestamp: cubic over a long token
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.generate])  # no shrinking: a slow example is re-run many times
@given(spec=pieces)
def test_each_mask_pattern_is_linear_on_adversarial_runs(work, spec):
    n, took = _worst_rung(work, lambda size: _text(spec, size))
    assert took <= BOUND, f"{took:.2f} s on {n} characters of {spec}"


#: mask() runs a pattern only when its trigger character is in the text: give it every one
TRIGGERS = " :/(=`'\"“‘«\n"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_mask_is_linear_on_named_worst_cases(name):
    n, took = _worst_rung(masking.mask, lambda size: GENERATORS[name](size - len(TRIGGERS)) + TRIGGERS)
    assert took <= BOUND, f"mask() took {took:.2f} s on {n} characters of {name!r}"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(UNITS + ["plan", "think", "é", "中", "\r"]), max_size=60).map("".join))
def test_mask_keeps_the_length_and_only_blanks(text):
    masked, spans = masking.mask(text)
    assert len(masked) == len(text)
    for before, after in zip(text, masked, strict=True):
        assert after == before or (after == " " and before != "\n")
    assert all(0 <= s < e <= len(text) for s, e, _ in spans)
    assert list(spans) == sorted(spans)


def _body(text: str) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 512, "messages": [{"role": "user", "content": text}]}


def _largest_routed(profile: str, make) -> str:
    """The largest text of ``make`` that still reaches keyword matching in ``profile`` (below long_context)."""
    def reaches(n: int) -> bool:
        raw_len = len(orjson.dumps(_body(make(n))))  # the scenario checks before keywords read only the size
        return routing.decide(_body("x"), PS[profile], CFG, PS, raw_len=raw_len).scenario != "long_context"

    lo, hi = 1_000, 2_000_000
    assert reaches(lo) and not reaches(hi)
    while hi - lo > 64:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if reaches(mid) else (lo, mid)
    return make(lo)


GENERATORS |= {  # what keyword matching then weighs: many term occurrences, each in a long sentence
    "terms in one long sentence": lambda n: _fill("plan " + "x" * 58 + " ", n),
    "terms and masks": lambda n: _fill("design `x` debug 'y' ", n),
}
ROUTED = ["a.a.a", "dashes then a slash", "error lines of blanks", "blank lines", "timestamp then a word",
          "every trigger", "opening quotes", "dotted name then (", "terms in one long sentence", "terms and masks"]


@pytest.mark.parametrize("name", ROUTED)
@pytest.mark.parametrize("profile", sorted(PS))
def test_routing_the_largest_keyword_matched_text_is_bounded(profile, name):
    ask = "\nplease plan the migration of the storage layer"  # after the run; "x" before it keeps it from strip()
    text = _largest_routed(profile, lambda n: "x" + GENERATORS[name](n - len(ask) - 1) + ask)
    body = _body(text)
    raw_len = len(orjson.dumps(body))
    t0 = time.perf_counter()
    d = routing.decide(body, PS[profile], CFG, PS, raw_len=raw_len)
    took = time.perf_counter() - t0
    assert d.scenario != "long_context", "the text must be one keyword matching reads"
    assert took <= BOUND, f"decide() took {took:.2f} s on {len(text)} characters of {name!r} in {profile!r}"
    if len(d.text) > KEYWORD_WINDOW:
        assert any(" the last " in r for r in d.reasons), d.reasons  # the part read, or the budget in it


def test_keywords_read_the_end_of_a_long_text():
    body = _body("Please plan the migration of the storage layer.\n" + _fill("lorem ipsum dolor\n", 200_000)
                 + "\nWhat does this log say?")
    d = routing.decide(body, PS["intelligent"], CFG, PS)
    assert "keywords read the last " in " ".join(d.reasons)
    assert d.concept != "planning" and all(m.start >= len(d.text) - KEYWORD_WINDOW for m in d.matches)
    body = _body(_fill("lorem ipsum dolor\n", 200_000) + "\nPlease plan the migration of the storage layer.")
    d = routing.decide(body, PS["intelligent"], CFG, PS)
    assert d.concept == "planning"
    m = next(m for m in d.matches if m.concept == "planning")
    assert d.text[m.start:m.end].lower() == m.term, "match offsets point into the whole human text"


def test_a_cut_inside_a_fenced_block_starts_after_it():
    code = "```\n" + _fill("x = 1\n", 100_000) + "```\n"
    d = routing.decide(_body(code + "please plan the migration"), PS["intelligent"], CFG, PS)
    assert d.concept == "planning", d.reasons


def test_past_the_budget_routing_takes_the_default_and_says_so():
    text = _fill("plan ", 5 * (MAX_KEYWORD_HITS + 10))
    d = routing.decide(_body(text), PS["intelligent"], CFG, PS)
    assert d.scenario == "default" and d.chain[0] == PS["intelligent"].config.default[0]
    assert d.reasons[0].startswith("routing budget: ") and f"(limit {MAX_KEYWORD_HITS})" in d.reasons[0]
    d = routing.decide(_body(_fill("plan ", 5 * (MAX_KEYWORD_HITS - 10))), PS["intelligent"], CFG, PS)
    assert not d.reasons[0].startswith("routing budget")


def test_a_profile_without_a_knowledge_graph_is_routed_by_its_default():
    bare = dataclasses.replace(PS["fast"], kg=KnowledgeGraph())  # a profile with no kg directory
    d = routing.decide(_body("please plan the migration"), bare, CFG, PS)
    assert d.scenario == "default" and d.chain[0] == PS["fast"].config.default[0]
