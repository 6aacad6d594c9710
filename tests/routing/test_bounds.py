"""Keyword routing's bounds are options: ``[routing] window_chars`` and ``match_budget`` (issue 20's leftover).

Table-driven through the pure ``decide()`` (the bounds come in with the config it is given), then through the
config reader: a bad value is a problem naming the option, and a config file's values reach ``Router.decide``
the way the server's Router gets them. tests/security/test_routing_linear.py keeps checking the defaults."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from llmproxy import config, paths, routing
from llmproxy.config import RoutingConfig
from llmproxy.routing.decide import MAX_KEYWORD_HITS
from llmproxy.routing.text import KEYWORD_WINDOW

CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)

ASK_FIRST = "Please plan the migration of the storage layer.\n" + "lorem ipsum dolor\n" * 4_000  # 72 KB after it
ASK_LAST = "lorem ipsum dolor\n" * 4_000 + "Please plan the migration of the storage layer."
PLANS_100 = "plan " * 100  # 100 occurrences of a term of the planning concept
PLANS_600 = "plan " * 600


def _body(text: str) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 512, "messages": [{"role": "user", "content": text}]}


#: the intelligent profile's knowledge graph without its learned signal (which reads the whole text, not the
#: window), so that what keyword matching reads alone decides
KEYWORDS_ONLY = dataclasses.replace(PS["intelligent"], intent=None)


def _decide(text: str, bounds: RoutingConfig) -> routing.Decision:
    return routing.decide(_body(text), KEYWORDS_ONLY, dataclasses.replace(CFG, routing=bounds), PS)


DEFAULT = RoutingConfig()
BUDGET = "routing budget: {n} occurrences of keyword terms in the text (limit {limit}); keywords not matched " \
         "(routing.match_budget)"

PLANNED = ("keyword", "planning", "concept 'planning' matched 'plan'")

# (id, bounds, text, (scenario, concept, reason) with these bounds, the same with the defaults): every row is a
# text the option changes the decision of. A reason is the first one when it is a budget's, else a piece of one.
CASES = [
    ("a-wider-window-finds-an-ask-at-the-start", RoutingConfig(window_chars=128 * 1024), ASK_FIRST, PLANNED,
     ("default", None, "(routing.window_chars 32768)")),
    ("a-narrower-window-misses-what-the-default-finds", RoutingConfig(window_chars=1024),
     "Please plan the migration.\n" + "lorem ipsum dolor\n" * 100,
     ("default", None, "keywords read the last 1007 of 1826 characters of the text (routing.window_chars 1024)"),
     PLANNED),
    ("a-smaller-budget-trips-earlier", RoutingConfig(match_budget=50), PLANS_100,
     ("default", None, BUDGET.format(n=100, limit=50)), PLANNED),
    ("a-larger-budget-lets-more-through", RoutingConfig(match_budget=1000), PLANS_600, PLANNED,
     ("default", None, BUDGET.format(n=600, limit=512))),
]


def _check(d: routing.Decision, scenario: str, concept: str | None, reason: str) -> None:
    assert (d.scenario, d.concept) == (scenario, concept), d.reasons
    if reason.startswith("routing budget"):
        assert d.reasons == [reason]
    else:
        assert any(reason in r for r in d.reasons), d.reasons


@pytest.mark.parametrize("bounds,text,given,default", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide_reads_the_bounds_it_is_given(bounds, text, given, default):
    _check(_decide(text, bounds), *given)
    _check(_decide(text, DEFAULT), *default)


def test_the_defaults_are_the_bounds_issue_20_set_and_the_bundled_config_says_so():
    assert (DEFAULT.window_chars, DEFAULT.match_budget) == (KEYWORD_WINDOW, MAX_KEYWORD_HITS) == (32 * 1024, 512)
    bundled = tomllib.loads(paths.default_config_file().read_text())["routing"]
    assert bundled == {"window_chars": 32 * 1024, "match_budget": 512}
    assert CFG.routing == DEFAULT


# ------------------------------------------------------------------------------------- the config reader

# (id, [routing] table body, the problem expected)
PROBLEMS = [
    ("window-below", "window_chars = 100\n",
     "routing.window_chars: must be at least 1024 (characters keyword matching reads)"),
    ("window-above", "window_chars = 1048576\n",
     "routing.window_chars: must be at most 262144 (characters keyword matching reads)"),
    ("window-type", 'window_chars = "64k"\n', "routing.window_chars: expected int, got str"),
    ("budget-below", "match_budget = 0\n",
     "routing.match_budget: must be at least 16 (term occurrences keyword matching weighs)"),
    ("budget-above", "match_budget = 100000\n",
     "routing.match_budget: must be at most 10000 (term occurrences keyword matching weighs)"),
    ("budget-type", "match_budget = 51.5\n", "routing.match_budget: expected int, got float"),
    ("unknown-key", "window_bytes = 65536\n", "routing.window_bytes: unknown key"),
]


@pytest.mark.parametrize("table,expected", [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS])
def test_a_bad_bound_is_a_config_problem_naming_the_option(home, table, expected):
    (home / "config.toml").write_text("[routing]\n" + table)
    cfg, problems = config.load(strict=False)
    assert problems == [f"{home / 'config.toml'}: {expected}"]
    assert cfg.routing == DEFAULT  # a bad value leaves the default in force
    with pytest.raises(config.ConfigError, match=expected.split(":")[0]):
        config.load()


def test_the_bounds_of_a_config_file_reach_the_router(home):
    (home / "config.toml").write_text("[routing]\nwindow_chars = 131072\nmatch_budget = 50\n")
    cfg, problems = config.load(strict=False)
    assert problems == [] and cfg.routing == RoutingConfig(window_chars=131072, match_budget=50)
    router = routing.Router.build(cfg)
    d = router.decide(_body(ASK_FIRST), "intelligent")
    assert (d.scenario, d.concept) == ("keyword", "planning"), d.reasons
    d = router.decide(_body(PLANS_100), "intelligent")
    assert d.scenario == "default" and d.reasons == [BUDGET.format(n=100, limit=50)]
