"""Property tests: what keyword routing sees cannot be changed by system reminders, tool definitions or the
system prompt — only by the human's own words."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from llmproxy import config, routing
from llmproxy.routing.text import latest_human_text
from tests.routing import shapes as S

CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)
WORDS = ["plan", "think", "design", "debug", "rename", "typo", "explanation", "planet", "root cause", "the", "fix",
         "pros and cons", "i think", "ultrathink", "deep dive", "a", "module", "prove", "weigh the options", "."]
prompt = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
noise = st.lists(st.sampled_from(WORDS), min_size=1, max_size=30).map(" ".join)


def key(d):
    return d.scenario, d.concept, d.chain


@settings(max_examples=150, deadline=None)
@given(prompt, noise, st.integers(0, 3), st.sampled_from(sorted(PS)))
def test_system_reminders_never_change_the_decision(text, extra, n, profile):
    body = S.main_turn(text)
    before = routing.decide(body, PS[profile], CFG, PS)
    noisy = copy.deepcopy(body)
    for _ in range(n):
        noisy["messages"][0]["content"].insert(0, {"type": "text", "text": f"<system-reminder>{extra}</system-reminder>"})
    after = routing.decide(noisy, PS[profile], CFG, PS, raw_len=len(str(body)))
    assert key(before)[:2] == key(after)[:2]


@settings(max_examples=150, deadline=None)
@given(prompt, noise, st.integers(1, 5), st.sampled_from(sorted(PS)))
def test_tool_definitions_and_system_prompt_never_change_the_decision(text, desc, n, profile):
    body = S.main_turn(text)
    before = routing.decide(body, PS[profile], CFG, PS)
    more = copy.deepcopy(body)
    more["tools"] = more["tools"] + [S.tool(f"T{i}", desc) for i in range(n)]
    more["system"] = more["system"] + [{"type": "text", "text": desc}]
    after = routing.decide(more, PS[profile], CFG, PS, raw_len=len(str(body)))
    assert key(before) == key(after)


@given(prompt)
def test_tool_result_follow_up_routes_like_its_human_turn(text):
    first = routing.decide(S.main_turn(text), PS["intelligent"], CFG, PS)
    loop = routing.decide(S.tool_followup(text), PS["intelligent"], CFG, PS)
    assert key(first) == key(loop)


@given(prompt)
def test_human_text_is_exactly_the_prompt(text):
    body = S.main_turn(text, reminders=3)
    assert latest_human_text(body["messages"])[0] == text.strip()
