"""``background`` by model name needs Claude Code's signals (billing header or claude-cli user agent): an SDK call
or a batch item naming a Haiku model without tools is routed by its text like any other request (table-driven)."""

from __future__ import annotations

import pytest

from llmproxy import config, routing
from tests.routing import shapes as S

CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)
HAIKU = "claude-haiku-4-5"


def sdk(text: str, model: str = HAIKU, **extra) -> dict:
    """The official SDK's shape: no system prompt, no tools, one user message."""
    return {"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": text}], **extra}


def cc_toolless(text: str, model: str = HAIKU) -> dict:
    """A Claude Code utility call: billing header in the system prompt, no tools."""
    return {**S.main_turn(text, model=model, tools=[]), "thinking": {"type": "disabled"}}


CLI_UA = {"user-agent": "claude-cli/2.1.197 (external, cli)"}

CASES = [
    # (id, body, headers, profile, scenario, concept)
    ("sdk-haiku-plan-routes-by-text", sdk("plan the migration of the storage layer to postgres"), {},
     "intelligent", "keyword", "planning"),
    ("sdk-haiku-plain-is-default", sdk("say hi"), {}, "intelligent", "default", None),
    ("sdk-haiku-on-fast-is-default", sdk("say hi"), {}, "fast", "default", None),
    ("sdk-haiku-with-system-prompt", sdk("debug the crash in the loader", system="You are terse."), {},
     "intelligent", "keyword", "debugging"),
    ("batch-item-haiku-design", sdk("design the API for uploads"), {}, "intelligent", "keyword", "design"),
    ("sdk-haiku-other-user-agent", sdk("prove the loop terminates"), {"user-agent": "Anthropic/Python 0.69.0"},
     "intelligent", "keyword", "proofs"),
    ("cc-billing-haiku-toolless", cc_toolless("plan the migration"), {}, "intelligent", "background", None),
    ("cc-user-agent-haiku-toolless", sdk("plan the migration"), CLI_UA, "intelligent", "background", None),
    ("cc-haiku-with-tools-is-a-main-turn", S.main_turn("plan the migration", model=HAIKU), {},
     "intelligent", "keyword", "planning"),
    ("cc-opus-toolless-not-background", cc_toolless("plan the migration", model="claude-opus-4-8"), {},
     "intelligent", "keyword", "planning"),
    ("title-still-background", S.title_request("plan a refactor"), {}, "intelligent", "background", None),
    ("webfetch-still-background", S.webfetch_summary(), {}, "intelligent", "background", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_background_needs_claude_code(case):
    _, body, headers, profile, scenario, concept = case
    d = routing.decide(body, PS[profile], CFG, PS, headers=headers)
    assert (d.scenario, d.concept) == (scenario, concept), d.reasons


def test_the_reason_names_claude_code():
    d = routing.decide(sdk("x"), PS["intelligent"], CFG, PS, headers=CLI_UA)
    assert d.reasons == [f"tool-less Claude Code request to a small model ({HAIKU})"]
