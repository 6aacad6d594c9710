"""Builders for requests shaped like Claude Code's (the shapes docs/routing.md describes), in our own words."""

from __future__ import annotations

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.abc; cc_entrypoint=cli;"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
ROLE = ("\nYou are an interactive agent that helps users with software engineering tasks. Think carefully, "
        "plan your work, design clean solutions and debug root causes. " * 20)
REMINDER = ("<system-reminder>\nAs you answer, you may use this context. Plan ahead and think step by step "
            "about the design.\n</system-reminder>")


def tool(name: str, desc: str = "A tool. Use it to plan, think and debug.") -> dict:
    return {"name": name, "description": desc,
            "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}


CC_TOOLS = [tool(n) for n in ("Agent", "Bash", "Edit", "Glob", "Grep", "Read", "Write", "WebFetch", "WebSearch",
                              "TodoWrite")]


def system(subagent: bool = False, role: str = ROLE) -> list[dict]:
    billing = BILLING + (" cc_is_subagent=true;" if subagent else "")
    return [{"type": "text", "text": billing}, {"type": "text", "text": IDENTITY},
            {"type": "text", "text": role, "cache_control": {"type": "ephemeral"}}]


def user(*texts: str, reminders: int = 1) -> dict:
    blocks = [{"type": "text", "text": REMINDER} for _ in range(reminders)]
    blocks += [{"type": "text", "text": t} for t in texts]
    blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    return {"role": "user", "content": blocks}


def main_turn(text: str, *, model: str = "claude-opus-4-8", reminders: int = 1, trailing_system: str | None = None,
              tools: list | None = None) -> dict:
    msgs = [user(text, reminders=reminders)]
    if trailing_system is not None:
        msgs.append({"role": "system", "content": trailing_system})
    return {"model": model, "max_tokens": 64000, "stream": True, "system": system(),
            "tools": CC_TOOLS if tools is None else tools, "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "metadata": {"user_id": '{"session_id":"s1"}'}, "messages": msgs}


def tool_followup(text: str) -> dict:
    body = main_turn(text)
    body["messages"] += [
        {"role": "assistant", "content": [{"type": "text", "text": "Running it."},
                                          {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                           "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "plan.md\ndesign.txt\ndebug.log"}]}]
    return body


def title_request(text: str, model: str = "claude-opus-4-8") -> dict:
    return {"model": model, "max_tokens": 32000, "stream": True, "tools": [], "thinking": {"type": "disabled"},
            "system": system(role="Generate a concise, sentence-case title (3-7 words) for this session."),
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object",
                                                                           "properties": {"title": {"type": "string"}}}}},
            "messages": [{"role": "user", "content": f"<session>\n{text}\n</session>\n\nWrite the title in the "
                                                     f"language of the session."}]}


def webfetch_summary(model: str = "claude-opus-4-8") -> dict:
    return {"model": model, "max_tokens": 4096, "tools": [], "system": system()[:2],
            "messages": [{"role": "user", "content": "\nWeb page content:\n---\nHow to plan a design.\n---\n"
                                                     "Summarise the page."}]}


def subagent_request(prompt: str, model: str = "claude-haiku-4-5-20251001") -> tuple[dict, dict]:
    body = {"model": model, "max_tokens": 32000, "stream": True, "temperature": 1,
            "system": system(subagent=True, role="You are a file search specialist."),
            "tools": CC_TOOLS[:6], "messages": [user(prompt)]}
    return body, {"x-claude-code-agent-id": "agent-123"}


COMPACT_PROMPT = ("CRITICAL: Respond with TEXT ONLY. Do NOT call any tools.\n\nYour task is to create a detailed "
                  "summary of the conversation so far, paying attention to plans and design decisions.")


def compaction_request(extra: str = "") -> dict:
    body = main_turn("plan the refactor of the parser")
    body["messages"] += [{"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
                         {"role": "user", "content": [{"type": "text", "text": COMPACT_PROMPT + extra}]}]
    return body


def web_search_request(query: str) -> dict:
    return {"model": "claude-opus-4-8", "max_tokens": 32000, "stream": True, "thinking": {"type": "disabled"},
            "system": system(role="You are an assistant for performing a web search tool use"),
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
            "tool_choice": {"type": "tool", "name": "web_search"},
            "messages": [{"role": "user", "content": f"Perform a web search for the query: {query}"}]}


def image_in_tool_result(text: str) -> dict:
    body = main_turn(text)
    body["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "Read",
                                           "input": {"file_path": "a.png"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo" * 50}}]}]}]
    return body


def count_tokens_context() -> dict:
    return {"model": "claude-opus-4-8", "tools": CC_TOOLS[:3],
            "messages": [{"role": "user", "content": "foo"}]}


def count_tokens_section(section: str) -> dict:
    return {"model": "claude-opus-4-8", "messages": [{"role": "user", "content": section}]}


def slash_command_turn(text: str) -> dict:
    body = main_turn("hello")
    body["messages"] += [
        {"role": "assistant", "content": [{"type": "text", "text": "Hi."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "<local-command-caveat>Caveat: do not plan or think about these.</local-command-caveat>"},
            {"type": "text", "text": "<command-name>/compact</command-name>\n<command-message>compact</command-message>\n"
                                     "<command-args>plan the design</command-args>"},
            {"type": "text", "text": "<local-command-stdout>Compacted; now debug and plan</local-command-stdout>"},
            {"type": "text", "text": text}]}]
    return body


def post_compaction_turn(text: str) -> dict:
    body = main_turn("x")
    body["messages"][0]["content"].insert(1, {"type": "text", "text":
        "This session is being continued from a previous conversation that ran out of context. Summary: "
        "the user wanted to plan and design and debug the parser."})
    body["messages"][0]["content"][-1] = {"type": "text", "text": text}
    return body


# --- multi-turn sequences (Claude Code 2.1.197 shapes, our own words) -------------------------------------

AGENTS_LISTING = "Available agent types for the Agent tool:\n- Plan: designs plans and thinks about architecture.\n"
ULTRATHINK_NOTE = ('The user included the keyword "ultrathink", requesting deeper reasoning on this turn. Go deep.\n\n'
                   + AGENTS_LISTING)
# plan mode as recorded: the marker sentence opens a long instruction block (here shortened and reworded)
PLAN_MODE_NOTE = ("Plan mode is active. The user indicated that they do not want you to execute yet -- only read, "
                  "then write the plan file and ask for approval.\n\n## Plan Workflow\nExplore, design, review.")
PLAN_MODE_EXIT = "## Exited Plan Mode\n\nYou have exited plan mode. Edits and commands are allowed again."


def system_msg(text: str) -> dict:
    return {"role": "system", "content": text}


def assistant(text: str = "Done.") -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def tool_call(tool_id: str = "toolu_a", name: str = "Read") -> dict:
    return {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": name,
                                              "input": {"file_path": "notes.txt"}}]}


def tool_result(tool_id: str = "toolu_a", content: str = "design notes: plan to debug later") -> dict:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": content}]}


def conversation(*messages: dict, model: str = "claude-opus-4-8") -> dict:
    body = main_turn("x", model=model)
    body["messages"] = list(messages)
    return body


def local_command(name: str, stdout: str | None = None) -> list[dict]:
    """The user message(s) a slash command leaves behind: caveat + command wrapper, then its output."""
    msgs = [{"role": "user", "content": [
        {"type": "text", "text": "<local-command-caveat>Caveat: messages below came from local commands; do not "
                                 "respond to them.</local-command-caveat>\n"},
        {"type": "text", "text": f"<command-name>/{name}</command-name>\n   <command-message>{name}</command-message>\n"
                                 "   <command-args></command-args>"}]},
        assistant("No response requested.")]
    if stdout is not None:
        msgs.append({"role": "user", "content": [{"type": "text", "text": f"<local-command-stdout>{stdout}"
                                                                          "</local-command-stdout>\n"}]})
    return msgs
