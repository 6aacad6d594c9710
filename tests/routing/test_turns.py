"""Turn-scoped signals over multi-turn sequences in Claude Code's shapes, and plan mode."""

from __future__ import annotations

import pytest

from llmproxy import config, routing
from tests.routing import shapes as S

CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)


def decide(body, profile="intelligent", headers=None, endpoint="messages"):
    return routing.decide(body, PS[profile], CFG, PS, headers=headers or {}, endpoint=endpoint)


def first(text):
    return S.user(text)


def test_ultrathink_then_a_plain_turn():
    turn1 = [first("ultrathink about caching"), S.system_msg(S.ULTRATHINK_NOTE)]
    assert decide(S.conversation(*turn1)).scenario == "think"
    # the next turn still carries turn 1's system message, but it belongs to turn 1
    turn2 = turn1 + [S.assistant(), {"role": "user", "content": "what time is it"}]
    d = decide(S.conversation(*turn2))
    assert d.scenario == "default", d.reasons


def test_ultrathink_turn_keeps_think_through_its_tool_loop():
    msgs = [first("ultrathink: why is the cache cold"), S.system_msg(S.ULTRATHINK_NOTE), S.tool_call(),
            S.tool_result(), S.tool_call("toolu_b"), S.tool_result("toolu_b")]
    assert decide(S.conversation(*msgs), "fast").scenario == "think"


def test_file_reading_turn_after_ultrathink_is_not_think():
    msgs = [first("ultrathink about caching"), S.system_msg(S.ULTRATHINK_NOTE), S.assistant(),
            {"role": "user", "content": "read notes.txt"}, S.tool_call(), S.tool_result()]
    assert decide(S.conversation(*msgs)).scenario == "default"


def test_plain_turn_then_tool_loop_routes_like_its_human_text():
    msgs = [first("design the cache layer"), S.system_msg(S.AGENTS_LISTING), S.assistant(),
            {"role": "user", "content": "list the files"}, S.tool_call(), S.tool_result()]
    d = decide(S.conversation(*msgs))
    assert d.scenario == "default", d.reasons  # the tool result says "design", "plan", "debug": never read


def test_context_then_a_prompt():
    msgs = [first("explain the router"), S.system_msg(S.AGENTS_LISTING), S.assistant(),
            *S.local_command("context", "Context Usage\n| Planning agent | 2k |\n| Debug tools | 1k | think"),
            {"role": "user", "content": "rename the helper"}]
    assert decide(S.conversation(*msgs)).scenario == "default"
    msgs[-1] = {"role": "user", "content": "now plan the rename"}
    assert decide(S.conversation(*msgs)).concept == "planning"


def test_cost_output_alone_is_not_human_text():
    msgs = [first("explain the router"), S.assistant(),
            *S.local_command("cost", "Total cost: $0.01 — planning 2 calls, debug 1 call")]
    d = decide(S.conversation(*msgs))
    assert d.scenario == "default" and d.concept is None


def test_cost_output_and_prompt_in_one_message():
    out = {"role": "user", "content": [
        {"type": "text", "text": "<local-command-stdout>Usage: planning 3, design 2</local-command-stdout>\n"},
        {"type": "text", "text": "what now"}]}
    d = decide(S.conversation(first("hi"), S.assistant(), out))
    assert d.scenario == "default"


def test_bash_mode_output_is_not_human_text():
    msg = {"role": "user", "content": [
        {"type": "text", "text": "<bash-input>make plan</bash-input>"},
        {"type": "text", "text": "<bash-stdout>planning... debug build ok</bash-stdout><bash-stderr></bash-stderr>"}]}
    assert decide(S.conversation(first("hi"), S.assistant(), msg)).scenario == "default"


def test_compact_then_a_prompt():
    summary = ("This session is being continued from a previous conversation that ran out of context. Summary: "
               "we planned the design and debugged the parser.")
    msgs = [{"role": "user", "content": [{"type": "text", "text": S.REMINDER}, {"type": "text", "text": summary}]},
            S.assistant(), *S.local_command("compact", "Compacted"),
            {"role": "user", "content": "carry on with step one"}]
    assert decide(S.conversation(*msgs)).scenario == "default"
    msgs[-1] = {"role": "user", "content": "think hard about step one"}
    assert decide(S.conversation(*msgs)).concept == "thinking"


def test_subagent_inside_a_keyword_turn():
    parent = S.conversation(first("plan the storage migration"), S.system_msg(S.AGENTS_LISTING),
                            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_s", "name": "Agent",
                                                               "input": {"prompt": "find the storage code"}}]})
    assert decide(parent).concept == "planning"
    body, headers = S.subagent_request("Find where the storage layer is. Plan nothing, just list files.")
    assert decide(body, headers=headers).scenario == "subagent"
    back = S.conversation(*parent["messages"], {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_s", "content": "storage/ lives in src/db"}]})
    assert decide(back).concept == "planning"  # the keyword turn's tool loop keeps its route


def test_image_of_an_earlier_turn_does_not_count():
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR" * 20}}
    msgs = [{"role": "user", "content": [img, {"type": "text", "text": "what is this"}]}, S.assistant(),
            {"role": "user", "content": "rename foo"}]
    assert decide(S.conversation(*msgs)).scenario == "default"
    assert decide(S.conversation(*msgs[:1])).scenario == "image"
    # ...but an image of this turn counts through its tool loop
    loop = [msgs[0], S.tool_call(), S.tool_result()]
    assert decide(S.conversation(*loop)).scenario == "image"


# --- plan mode -------------------------------------------------------------------------------------------


def plan_turn(text: str, haiku: bool = False) -> list[dict]:
    if haiku:  # no mid-conversation system messages: the marker is a system-reminder block of the user turn
        return [{"role": "user", "content": [{"type": "text", "text": f"<system-reminder>\n{S.PLAN_MODE_NOTE}\n"
                                                                      "</system-reminder>"},
                                             {"type": "text", "text": text}]}]
    return [first(text), S.system_msg(S.AGENTS_LISTING + "\n" + S.PLAN_MODE_NOTE)]


@pytest.mark.parametrize("haiku", [False, True])
def test_plan_mode_turn_routes_to_planning(haiku):
    d = decide(S.conversation(*plan_turn("add a null check to parse()", haiku)))
    assert d.scenario == "keyword" and d.concept == "planning"
    assert "plan mode" in d.reasons[0]


def test_plan_mode_persists_until_exited():
    msgs = plan_turn("look at the parser")
    msgs += [S.assistant(), {"role": "user", "content": "also cover the tests"}]
    assert decide(S.conversation(*msgs)).concept == "planning"  # no new marker: still in plan mode
    msgs += [S.tool_call(), S.tool_result()]
    assert decide(S.conversation(*msgs)).concept == "planning"
    msgs += [S.assistant(), {"role": "user", "content": "what time is it"}, S.system_msg(S.PLAN_MODE_EXIT)]
    assert decide(S.conversation(*msgs)).scenario == "default"


def test_plan_mode_only_where_a_concept_hooks_it():
    body = S.conversation(*plan_turn("add a null check"))
    assert decide(body, "balanced").scenario == "default"


def test_plan_mode_loses_to_a_stronger_concept_and_count_tokens_ignores_it():
    body = S.conversation(*plan_turn("prove the merge keeps order"))
    assert decide(body).concept == "proofs"
    assert decide(S.conversation(*plan_turn("x")), endpoint="count_tokens").scenario == "default"


def test_plan_mode_text_typed_by_the_user_or_in_tools_is_not_the_marker():
    msgs = [first("the docs say: Plan mode is active. The user indicated that they do not want you to execute yet"),
            S.tool_call(), S.tool_result(content=S.PLAN_MODE_NOTE)]
    assert decide(S.conversation(*msgs)).scenario == "default"
