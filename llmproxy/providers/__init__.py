"""Providers: a registry from config kind to implementation. ``build()`` decides, per configured
provider, whether the real thing serves it or the simulator stands in (and says why)."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import aiohttp

from llmproxy.config import Config, ProviderConfig
from llmproxy.providers.base import Call, ChatProvider, Provider, Reply, RetryCopy, top_level_patch

__all__ = ["Call", "ChatProvider", "KINDS", "Provider", "Reply", "RetryCopy", "build", "probe_local", "top_level_patch"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


#: every provider kind -> "module:class". The names the config accepts are ``settings.PROVIDER_KINDS``;
#: adding a kind = one module, one line here and its name there (tests/test_provider_kinds.py ties the two).
KINDS: dict[str, str] = {
    "anthropic": "llmproxy.providers.anthropic:AnthropicProvider",
    "openai": "llmproxy.providers.openai:OpenAIProvider",
    "simulator": "llmproxy.providers.simulator:SimulatorProvider",
}


def kind_class(kind: str) -> type:
    import importlib

    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def is_local(p: ProviderConfig) -> bool:
    return (urlsplit(p.base_url).hostname or "") in LOCAL_HOSTS


async def probe_local(cfg: Config, timeout: float = 0.3) -> dict[str, bool]:
    """Whether each keyless local provider (Ollama, vLLM, LM Studio) accepts a TCP connection."""
    async def one(p: ProviderConfig) -> bool:
        parts = urlsplit(p.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
        except (TimeoutError, OSError):
            return False
        w.close()
        return True

    locals_ = [p for p in cfg.providers.values() if p.kind != "simulator" and not p.api_key_env and is_local(p)]
    results = await asyncio.gather(*(one(p) for p in locals_))
    return {p.name: ok for p, ok in zip(locals_, results, strict=True)}


def simulation_reason(p: ProviderConfig, simulate_all: bool, local_up: dict[str, bool]) -> str | None:
    if p.kind == "simulator":
        return "this provider is the simulator"
    if simulate_all:
        return "--simulate was given"
    if p.kind not in KINDS:
        return f"the {p.kind} provider kind is not available"
    if p.api_key_env and not os.environ.get(p.api_key_env) and not p.forward_client_key:
        return f"{p.api_key_env} is not set"
    if p.name in local_up and not local_up[p.name]:
        return f"nothing answers at {p.base_url}"
    return None


def build(cfg: Config, session: aiohttp.ClientSession, *, simulate_all: bool = False,
          local_up: dict[str, bool] | None = None, sim_speed: float = 1.0) -> dict[str, Provider]:
    simulator = kind_class("simulator")
    out: dict[str, Provider] = {}
    for name, p in cfg.providers.items():
        reason = simulation_reason(p, simulate_all, local_up or {})
        if reason is None:
            out[name] = kind_class(p.kind)(p, session)
        else:
            out[name] = simulator(p, None if p.kind == "simulator" else reason, speed=sim_speed)
    return out
