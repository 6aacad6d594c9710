"""Claude Code itself, run with -p through the proxy (against the fake upstream, and the simulator)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import wait_log
from tests.helpers import claude_env, require_claude

pytestmark = pytest.mark.e2e


async def run_claude(claude: str, env: dict, cwd, *args: str, timeout: float = 120) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(claude, *args, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        raise
    return proc.returncode, out.decode(), err.decode()


async def test_claude_p_through_fake_upstream(proxy, fake_anthropic, tmp_path, home):
    claude = require_claude()
    url, _ = proxy
    env = claude_env(url + "/p/fast", tmp_path / "cc" / "config", tmp_path / "work")
    rc, out, err = await run_claude(claude, env, tmp_path / "work", "-p", "say hi")
    assert rc == 0, err
    assert "Hello from the fake upstream." in out
    probes = [r for r in fake_anthropic.requests if r["path"] == "/v1/messages"]
    assert probes, "Claude Code never reached the upstream"
    assert all(r["body"]["model"] in ("claude-sonnet-4-5", "claude-haiku-4-5") for r in probes)
    recs = await wait_log(home, 1)
    assert any(r.get("profile") == "fast" and r.get("status") == 200 for r in recs)


async def test_claude_p_through_simulator(proxy_factory, tmp_path):
    claude = require_claude()
    url, _ = await proxy_factory(simulate=True)
    env = claude_env(url + "/p/fast", tmp_path / "cc" / "config", tmp_path / "work")
    rc, out, err = await run_claude(claude, env, tmp_path / "work", "-p", "say hi")
    assert rc == 0, err
    assert "[llmproxy simulator] profile=fast" in out
    assert "You said: say hi" in out


async def test_claude_runs_a_tool_through_an_openai_upstream(proxy, fake_openai, tmp_path, home):
    claude = require_claude()
    url, _ = proxy
    env = claude_env(url + "/p/oai", tmp_path / "cc" / "config", tmp_path / "work")
    rc, out, err = await run_claude(claude, env, tmp_path / "work", "-p", "print the marker with bash",
                                    "--allowedTools", "Bash(echo:*)")
    assert rc == 0, err + out
    assert "The tool said: llmproxy-tool-ok" in out, out
    bodies = [r["body"] for r in fake_openai.requests]
    tool_msgs = [m for b in bodies for m in b["messages"] if m["role"] == "tool"]
    assert tool_msgs and "llmproxy-tool-ok" in tool_msgs[-1]["content"]
    call_id = next(m for b in bodies for m in b["messages"] if m.get("tool_calls"))["tool_calls"][0]["id"]
    assert tool_msgs[-1]["tool_call_id"] == call_id == "call_fake_0000"


@pytest.mark.parametrize("path,args", [("/p/intellignet", ()), ("", ("--model", "profile:nope"))],
                         ids=["mistyped-path", "model-profile"])
async def test_claude_prints_our_unknown_profile_message(proxy_factory, tmp_path, path, args):
    """A mistyped profile is a 400 invalid_request_error, so Claude Code prints our text (on a 404 it printed
    its own "There's an issue with the selected model … Run /model" instead)."""
    claude = require_claude()
    url, _ = await proxy_factory(simulate=True)
    env = claude_env(url + path, tmp_path / "cc" / "config", tmp_path / "work")
    rc, out, err = await run_claude(claude, env, tmp_path / "work", "-p", "say hi", *args, timeout=90)
    shown = out + err
    assert rc != 0, shown
    assert "unknown profile" in shown and "valid profiles" in shown, shown
    assert "nope" in shown or "intellignet" in shown, shown
    assert "Run /model" not in shown, shown
