"""Fixtures for the fault matrix: a fault upstream (both kinds), a healthy backup, and the proxy in-process
with short timeouts, so a hung upstream costs half a second, not the default minute."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import pytest_asyncio

from tests.faults.upstream import FaultUpstream, closed_url

#: every timeout short: the suite must prove we do not wait the defaults, fast
SHORT = {"connect_timeout": 0.5, "ttfb_timeout": 0.5, "idle_timeout": 0.5, "total_timeout": 5.0,
         "max_retries": 1, "retry_budget": 1.0, "breaker_failures": 3, "breaker_cooldown": 0.3}
FAULTY, BACKUP = "faulty/m1", "backup/m2"
KEYS = {"FAULT_KEY": "sk-fault-secret-0123456789", "BACKUP_KEY": "sk-ant-backup-secret-987654321"}


async def start_proxy(home: Path, fault_url: str, backup_url: str, kind: str = "anthropic", fallback: bool = True,
                      *, refuse: bool = False, server: dict | None = None, model: dict | None = None,
                      **overrides):
    """The proxy (this event loop) routing every request to ``faulty,m1`` (of ``kind``), then to
    ``backup,m2`` (a healthy Anthropic-kind upstream) when ``fallback``. Returns (TestServer, url, state).
    ``LLMPROXY_HOME`` must already point at ``home``."""
    import tomli_w
    from aiohttp.test_utils import TestServer

    from llmproxy.server.process.app import create_app, load_runtime
    from llmproxy.server.state import Options, State

    base = closed_url() if refuse else fault_url
    if kind == "openai":
        base += "/v1"
    pdir = home / "profiles"
    pdir.mkdir(exist_ok=True)
    (pdir / "faults.toml").write_text(textwrap.dedent(f"""
        description = "fault matrix"
        default = "faulty,m1"
        fallbacks = {'["backup,m2"]' if fallback else '[]'}
        """))
    cfg = {
        "server": {"default_profile": "faults", "simulator_speed": 0, "ping_interval": 0.2, **(server or {})},
        "providers": {
            "faulty": {"kind": kind, "base_url": base, "api_key_env": "FAULT_KEY", **SHORT, **overrides,
                       "models": {"m1": {"context_window": 200000, "max_output": 8192, **(model or {})}}},
            "backup": {"kind": "anthropic", "base_url": backup_url, "api_key_env": "BACKUP_KEY",
                       **SHORT, "models": {"m2": {"context_window": 200000, "max_output": 8192}}},
        },
    }
    (home / "config.toml").write_text(tomli_w.dumps(cfg))
    opts = Options()
    state = State(runtime=load_runtime(opts), options=opts)
    srv = TestServer(create_app(state), host="127.0.0.1", handler_cancellation=True)
    await srv.start_server()
    return srv, str(srv.make_url("")).rstrip("/"), state


@pytest.fixture
async def fault_upstream():
    up = await FaultUpstream("fault").start()
    yield up
    await up.close()


@pytest.fixture
async def backup_upstream():
    up = await FaultUpstream("backup").start()
    yield up
    await up.close()


@pytest.fixture
async def fault_proxy(home, monkeypatch, fault_upstream, backup_upstream):
    """``start(kind, fallback, refuse=False, server=None, model=None, **provider_overrides) -> (url, state)``
    (``model``: catalog options of ``faulty,m1``), one proxy
    per call. Same-target backoff is shortened (the retry tests check the real schedule)."""
    from llmproxy.server.request import dispatch

    monkeypatch.setattr(dispatch, "BACKOFF_BASE", 0.02)
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    servers = []

    async def start(kind: str = "anthropic", fallback: bool = True, **kw):
        srv, url, state = await start_proxy(home, fault_upstream.url, backup_upstream.url, kind, fallback, **kw)
        servers.append(srv)
        return url, state

    yield start
    for s in servers:
        await s.close()


class Matrix:
    """Shared by the whole matrix module: one fault upstream, one backup, and one proxy per (kind,
    fallback, refuse), started on first use. ``reset()`` before each case."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.fault = FaultUpstream("fault")
        self.backup = FaultUpstream("backup")
        self.proxies: dict[tuple, tuple] = {}

    async def proxy(self, kind: str, fallback: bool, refuse: bool = False) -> tuple[str, object]:
        key = (kind, fallback, refuse)
        if key not in self.proxies:
            self.home.joinpath(f"{kind}-{fallback}-{refuse}").mkdir()
            # each proxy its own home (so its own request log); env read at start-up only
            import os
            os.environ["LLMPROXY_HOME"] = str(self.home / f"{kind}-{fallback}-{refuse}")
            self.proxies[key] = await start_proxy(Path(os.environ["LLMPROXY_HOME"]), self.fault.url,
                                                  self.backup.url, kind, fallback, refuse=refuse)
        srv, url, state = self.proxies[key]
        state.breakers.circuits.clear()
        return url, state

    def reset(self) -> None:
        self.fault.mode, self.fault.script, self.fault.hits = "ok", [], 0
        self.backup.mode, self.backup.script, self.backup.hits = "ok", [], 0


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def matrix(tmp_path_factory):
    from llmproxy.server.request import dispatch

    mp = pytest.MonkeyPatch()
    mp.setattr(dispatch, "BACKOFF_BASE", 0.02)
    for k, v in KEYS.items():
        mp.setenv(k, v)
    for var in ("ANTHROPIC_API_KEY", "LLMPROXY_API_KEYS"):
        mp.delenv(var, raising=False)
    mp.setenv("LLMPROXY_HOME", str(tmp_path_factory.mktemp("faults")))
    m = Matrix(tmp_path_factory.mktemp("matrix"))
    await m.fault.start()
    await m.backup.start()
    try:
        yield m
    finally:
        for srv, _, _ in m.proxies.values():
            await srv.close()
        await m.fault.close()
        await m.backup.close()
        mp.undo()
