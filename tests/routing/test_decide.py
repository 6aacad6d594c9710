"""decide() over every Claude Code request shape and over ordinary prompts (table-driven)."""

from __future__ import annotations

import pytest

from llmproxy import config, routing
from llmproxy.errors import InvalidRequest
from tests.routing import shapes as S


@pytest.fixture(scope="module")
def router():
    cfg, problems = config.load(strict=False)
    assert problems == []
    return cfg, routing.compile_profiles(cfg)


def decide(router, body, profile="intelligent", headers=None, endpoint="messages"):
    cfg, ps = router
    return routing.decide(body, ps[profile], cfg, ps, headers=headers or {}, endpoint=endpoint)


def sub(prompt):
    return S.subagent_request(prompt)


CASES = [
    # (id, body, headers, profile, expected scenario, expected concept)
    ("print-simple", S.main_turn("say hi"), None, "intelligent", "default", None),
    ("main-plan", S.main_turn("plan a refactor of the router module"), None, "intelligent", "keyword", "planning"),
    ("tool-followup-keeps-route", S.tool_followup("help me plan out the migration"), None, "intelligent", "keyword", "planning"),
    ("tool-followup-plain", S.tool_followup("list the files please"), None, "intelligent", "default", None),
    ("title-never-escalates", S.title_request("plan a refactor of the router"), None, "intelligent", "background", None),
    ("title-on-haiku", S.title_request("debug the crash", model="claude-haiku-4-5"), None, "fast", "background", None),
    ("webfetch-summary", S.webfetch_summary(), None, "intelligent", "background", None),
    ("subagent-header", sub("Investigate the router. Plan a design.")[0], sub("x")[1], "intelligent", "subagent", None),
    ("subagent-marker-only", sub("look around")[0], None, "fast", "subagent", None),
    ("compaction", S.compaction_request(), None, "intelligent", "compact", None),
    ("compaction-with-args", S.compaction_request("\n\nAdditional Instructions:\nfocus on the plan"), None,
     "cheap", "compact", None),
    ("web-search", S.web_search_request("aiohttp latest release"), None, "intelligent", "web_search", None),
    ("image-in-tool-result", S.image_in_tool_result("what colour is a.png"), None, "intelligent", "image", None),
    ("slash-wrappers-skipped", S.slash_command_turn("continue with step one"), None, "intelligent", "default", None),
    ("slash-wrappers-real-text", S.slash_command_turn("now debug the failing test"), None, "intelligent", "keyword", "debugging"),
    ("post-compaction-summary-skipped", S.post_compaction_turn("carry on"), None, "intelligent", "default", None),
    ("ultrathink-in-text", S.main_turn("ultrathink about cycle detection"), None, "intelligent", "think", None),
    ("ultrathink-system-msg", S.main_turn("ultrathink: cycles", trailing_system=
     'The user included the keyword "ultrathink", requesting deeper reasoning on this turn.'), None, "fast", "think", None),
    ("adaptive-thinking-is-not-think", S.main_turn("rename foo to bar"), None, "intelligent", "default", None),
    ("mid-conversation-system-msg", S.main_turn("fix the typo in README", trailing_system=
     "Available agent types: planner, designer, debugger. Think before you plan."), None, "intelligent", "default", None),
    ("think-hard", S.main_turn("think hard: compare with Kahn's algorithm"), None, "intelligent", "keyword", "thinking"),
    ("balanced-architecture", S.main_turn("review the architecture of the cache"), None, "balanced", "keyword", "architecture"),
    ("balanced-plain-plan", S.main_turn("plan the sprint"), None, "balanced", "default", None),
    ("override-provider-model", {**S.main_turn("plan it"), "model": "deepseek,deepseek-chat"}, None, "intelligent",
     "override", None),
    ("override-header", S.main_turn("plan it"), {"x-llmproxy-model": "anthropic,claude-opus-4-8"}, "cheap", "override", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_claude_code_shapes(router, case):
    _, body, headers, profile, scenario, concept = case
    d = decide(router, body, profile, headers)
    assert d.scenario == scenario, d.reasons
    assert d.concept == concept
    assert d.chain and d.reasons


@pytest.mark.parametrize("section", ["\nYou are an interactive agent. Plan, think and design carefully.", "foo"])
def test_context_count_tokens_is_default(router, section):
    d = decide(router, S.count_tokens_section(section), endpoint="count_tokens")
    assert d.scenario == "default"


PROMPTS = [
    # (text, profile, concept or None)
    ("help me plan out the release", "intelligent", "planning"),
    ("weigh the pros and cons of sqlite vs postgres", "intelligent", "tradeoffs"),
    ("what's the root cause of this flaky test?", "intelligent", "debugging"),
    ("design an API for uploads", "intelligent", "design"),
    ("prove the loop invariant holds", "intelligent", "proofs"),
    ("can you do a deep dive into the allocator", "intelligent", "deep-dive"),
    ("Think Carefully about the edge cases", "intelligent", "thinking"),
    ("PLAN this", "intelligent", "planning"),
    # traps: none of these may escalate
    ("rename the variable", "intelligent", None),
    ("fix the typo in the docs", "intelligent", None),
    ("improve the explanation in the README", "intelligent", None),
    ("add the planet names to the list", "intelligent", None),
    ("the airplane icon is misaligned", "intelligent", None),
    ("open planner_config.yaml and bump the version", "intelligent", None),
    ("update plan.md with the new date", "intelligent", None),
    ("i think the test is fine, just run it", "intelligent", None),
    ("do you think this compiles?", "intelligent", None),
    ("we're in plan mode, keep going", "intelligent", None),
    ("investigate the router module", "intelligent", None),
    ("the designer asked for blue", "intelligent", None),
    ("", "intelligent", None),
]


@pytest.mark.parametrize("text,profile,concept", PROMPTS)
def test_ordinary_prompts(router, text, profile, concept):
    d = decide(router, S.main_turn(text), profile)
    assert d.concept == concept, (d.matches, d.reasons)
    assert d.scenario == ("keyword" if concept else "default")


def test_highest_priority_wins_then_earliest(router):
    d = decide(router, S.main_turn("debug this, then plan the fix"))
    assert d.concept == "planning"  # priority 70 beats debugging's 60
    d = decide(router, S.main_turn("plan the design"))
    assert d.concept == "planning"  # tie at 70: earliest match wins
    assert [m.term for m in d.matches][:2] == ["plan", "design"]


def test_proofs_concept_routes_to_its_own_chain(router):
    d = decide(router, S.main_turn("prove this terminates"))
    assert str(d.chain[0]) == "openrouter/deepseek/deepseek-r1-0528"
    assert str(d.chain[1]) == "anthropic/claude-opus-4-8"
    assert str(d.chain[-1]).startswith("openrouter/anthropic")  # the profile's fallbacks follow


def test_long_context_by_threshold_and_window(router):
    big = S.main_turn("summarise " + "lorem ipsum dolor " * 20000)
    assert decide(router, big, "intelligent").scenario == "long_context"
    assert decide(router, big, "cheap").scenario == "long_context"
    small = S.main_turn("summarise this")
    assert decide(router, small, "cheap").scenario == "default"


def test_image_payload_does_not_count_as_long_context(router):
    body = S.main_turn("what is in this picture")
    body["messages"][0]["content"].insert(0, {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "A" * 400_000}})
    d = decide(router, body, "intelligent")
    assert d.scenario == "image" and d.estimated_tokens < 60_000


def test_explicit_thinking_from_sdk_clients(router):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 20000, "thinking": {"type": "enabled", "budget_tokens": 16000},
            "messages": [{"role": "user", "content": "what is 2+2"}]}
    assert decide(router, body, "intelligent").scenario == "think"
    assert decide(router, body, "balanced").scenario == "think"  # threshold 16000
    body["thinking"]["budget_tokens"] = 2000
    assert decide(router, body, "balanced").scenario == "default"
    # the same thinking field on a Claude Code request is its default, not a request
    cc = S.main_turn("what is 2+2", model="claude-haiku-4-5")
    cc["thinking"] = {"type": "enabled", "budget_tokens": 31999}
    assert decide(router, cc, "intelligent").scenario == "default"


def test_override_errors_list_what_exists(router):
    with pytest.raises(InvalidRequest, match="unknown provider 'nope'.*anthropic"):
        decide(router, {**S.main_turn("x"), "model": "nope,model"})
    with pytest.raises(InvalidRequest, match="unknown model 'gpt-9'.*deepseek-chat"):
        decide(router, {**S.main_turn("x"), "model": "deepseek,gpt-9"})
    with pytest.raises(InvalidRequest, match="valid profiles"):
        decide(router, {**S.main_turn("x"), "model": "profile:nope"})


def test_profile_override_switches_profile(router):
    d = decide(router, {**S.main_turn("plan it"), "model": "profile:intelligent"}, "cheap")
    assert d.profile == "intelligent" and d.scenario == "keyword"
    assert "override" in d.reasons[0]


def test_unknown_shapes_fall_to_default(router):
    weird = {"model": "x", "max_tokens": 1, "messages": [
        {"role": "user", "content": [{"type": "future_block", "data": 1}]}, {"role": "assistant", "content": "ok"}],
             "system": 42, "tools": "not-a-list"}
    assert decide(router, weird).scenario == "default"
