from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tests.fakes.anthropic import FakeAnthropic

UPSTREAM_KEY = "sk-ant-upstream-secret-0123456789"
PROXY_KEY = "proxy-key-abcdef123456"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("LLMPROXY_HOME", str(h))
    for var in ("ANTHROPIC_API_KEY", "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY", "GROQ_API_KEY", "CEREBRAS_API_KEY",
                "OPENAI_API_KEY", "LLMPROXY_API_KEYS"):
        monkeypatch.delenv(var, raising=False)
    return h


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_fake(fake) -> TestServer:
    server = TestServer(fake.app(), host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    return server


def write_config(home: Path, text: str) -> Path:
    path = home / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


TEST_PROFILE = """
description = "test profile"
default = "anthropic,claude-sonnet-4-5"
fallbacks = ["backup,claude-sonnet-4-5"]

[scenarios]
background = ["anthropic,claude-haiku-4-5"]
"""


@pytest.fixture
async def fake_anthropic():
    fake = FakeAnthropic()
    server = await start_fake(fake)
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


@pytest.fixture
async def fake_backup():
    fake = FakeAnthropic("backup")
    server = await start_fake(fake)
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


@pytest.fixture
async def fake_openai():
    from tests.fakes.openai import FakeOpenAI

    fake = FakeOpenAI()
    server = await start_fake(fake)
    fake.url = str(server.make_url("")).rstrip("/") + "/v1"
    yield fake
    await server.close()


#: test upstreams answer at once: short timeouts, and no same-target retries unless a test asks for them
FAST = {"idle_timeout": 5, "ttfb_timeout": 5, "max_retries": 0}

OAI_PROFILE = """
description = "routes to the fake OpenAI-compatible upstream"
default = "fakeoai,fake-model"
fallbacks = ["anthropic,claude-sonnet-4-5"]
"""


@pytest.fixture
async def proxy_factory(home, monkeypatch, fake_anthropic, fake_backup, fake_openai):
    """Start the proxy (same event loop) against the fake upstreams. Returns (base_url, state)."""
    from llmproxy.server.process.app import create_app, load_runtime
    from llmproxy.server.state import Options, State

    servers = []

    async def start(extra_config: str = "", *, env_key: bool = True, simulate: bool = False, verbose: int = 0):
        if env_key:
            monkeypatch.setenv("ANTHROPIC_API_KEY", UPSTREAM_KEY)
        monkeypatch.setenv("BACKUP_KEY", "sk-ant-backup-secret-987654321")
        pdir = home / "profiles"
        pdir.mkdir(exist_ok=True)
        (pdir / "test.toml").write_text(TEST_PROFILE)
        (pdir / "oai.toml").write_text(OAI_PROFILE)
        monkeypatch.setenv("FAKE_OAI_KEY", "sk-fakeoai-secret-13579")
        import tomllib

        import tomli_w

        from llmproxy.config import _merge

        base = {
            "server": {"default_profile": "test", "simulator_speed": 0, "ping_interval": 0.2},
            "providers": {
                "anthropic": {"base_url": fake_anthropic.url, **FAST},
                "backup": {"kind": "anthropic", "base_url": fake_backup.url, "api_key_env": "BACKUP_KEY",
                           **FAST, "models": {"claude-sonnet-4-5": {"context_window": 200000}}},
                "fakeoai": {"kind": "openai", "base_url": fake_openai.url, "api_key_env": "FAKE_OAI_KEY",
                            **FAST, "quirks": {"reasoning": "reasoning_content",
                                                          "reasoning_in_history": True, "max_tokens_cap": 8192},
                            "models": {"fake-model": {"context_window": 128000, "max_output": 16000,
                                                      "thinking": True, "input_price": 1.0, "output_price": 2.0}}},
            },
        }
        merged = _merge(base, tomllib.loads(textwrap.dedent(extra_config)))
        (home / "config.toml").write_text(tomli_w.dumps(merged))
        opts = Options(simulate=simulate, verbose=verbose)
        state = State(runtime=load_runtime(opts), options=opts)
        server = TestServer(create_app(state), host="127.0.0.1", handler_cancellation=True)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/"), state

    yield start
    for s in servers:
        await s.close()  # runs the cleanup contexts (client session, request log)


@pytest.fixture
async def proxy(proxy_factory):
    url, state = await proxy_factory()
    yield url, state


def read_log(home: Path) -> list[dict]:
    import json

    path = home / "logs" / "requests.jsonl"
    if not path.exists():
        return []
    text = path.read_text()
    if not text.endswith("\n"):  # a line a running daemon is still writing: not a record yet
        text = text[:text.rfind("\n") + 1]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def wait_log(home: Path, n: int, timeout: float = 3.0) -> list[dict]:
    import asyncio

    for _ in range(int(timeout / 0.02)):
        recs = read_log(home)
        if len(recs) >= n:
            return recs
        await asyncio.sleep(0.02)
    return read_log(home)


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
